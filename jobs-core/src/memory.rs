//! [`MemoryQueue`]: the embedded backend, with the semantics of DESIGN §3 in
//! one process and no server.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::error::Error;
use crate::job::{validate_queue_name, JobId, Priority};
use crate::queue::{
    AttemptInfo, BoxFuture, CancelResult, Counts, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue,
    JobStatus, LeaseState, LeasedJob, NewJob, Outcome, QueueCounts, QueuePolicy, QueueStats, Retention, Waiter,
};

/// Due scheduled jobs promoted per queue and fetch: a large backlog of due
/// jobs is moved in steps, never in one long pause.
const PROMOTE_BATCH: usize = 1000;
/// Expired leases reclaimed per queue and fetch.
const RECLAIM_BATCH: usize = 1000;
/// Finished records swept per fetch once past their retention.
const SWEEP_BATCH: usize = 1000;

/// The embedded backend: every job in this process's memory.
///
/// It keeps every rule the Redis backend keeps (priorities, delays, leases
/// with fencing tokens, retries, dead-letter set, retention, `unique_for`,
/// `max_jobs`, `priority_levels`), so it serves as the backend of unit tests
/// and of single-process applications. Jobs do not survive the process.
/// Cloning gives another handle to the same store.
///
/// ```
/// # use jobs_core::prelude::*;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
/// let queue = MemoryQueue::new();
/// let stats = queue.stats().await?;
/// assert!(stats.queues.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: watch::Sender<u64>,
    retention: Retention,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Record>,
    queues: HashMap<String, QueueState>,
    unique: HashMap<(String, Vec<u8>), (JobId, SystemTime)>,
    finished: VecDeque<(SystemTime, JobId)>,
    next_token: u64,
}

#[derive(Default)]
struct QueueState {
    ready: [VecDeque<JobId>; 4],
    scheduled: BTreeSet<(SystemTime, JobId)>,
    leased: BTreeSet<(SystemTime, JobId)>,
    dead: BTreeSet<(SystemTime, JobId)>,
    paused: bool,
    policy: QueuePolicy,
    processed: [u64; 4],
    failed: [u64; 4],
}

impl QueueState {
    fn waiting(&self) -> u64 {
        (self.ready.iter().map(VecDeque::len).sum::<usize>() + self.scheduled.len()) as u64
    }
}

struct Record {
    job: NewJob,
    status: JobStatus,
    attempts: u32,
    log: Vec<AttemptInfo>,
    token: u64,
    lease_until: Option<SystemTime>,
    run_at: Option<SystemTime>,
    cancel_requested: bool,
    result: Option<Vec<u8>>,
    finished_at: Option<SystemTime>,
    unique_key: Option<(String, Vec<u8>)>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryQueue {
    /// An empty store with the default [`Retention`].
    pub fn new() -> Self {
        Self::with_retention(Retention::default())
    }

    /// An empty store keeping finished jobs as `retention` says.
    pub fn with_retention(retention: Retention) -> Self {
        let (wake, _) = watch::channel(0);
        MemoryQueue { shared: Arc::new(Shared { state: Mutex::new(State::default()), wake, retention }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every
        // change completes before any call that could panic), so a poisoned
        // lock is still usable.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.shared.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        let now = SystemTime::now();
        let mut st = self.lock();
        // Check the whole batch before writing any of it.
        let mut adding: HashMap<&str, u64> = HashMap::new();
        for j in &jobs {
            validate_queue_name(j.queue())?;
            if let Some(q) = st.queues.get(j.queue()) {
                check_policy(j.queue(), &q.policy, j.priority)?;
                let n = adding.entry(j.queue()).or_default();
                *n += 1;
                if let Some(max) = q.policy.max_jobs {
                    if q.waiting() + *n > max {
                        return Err(Error::QueueFull { queue: j.queue().to_owned(), max_jobs: max });
                    }
                }
            }
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for j in jobs {
            let unique_key = j.unique_for.map(|_| (j.name.clone(), j.payload.clone()));
            if let (Some(window), Some(key)) = (j.unique_for, &unique_key) {
                if let Some((id, at)) = st.unique.get(key) {
                    let live = st.jobs.get(id).is_some_and(|r| !r.status.is_finished());
                    if live && now.duration_since(*at).unwrap_or_default() < window {
                        ids.push(id.clone());
                        continue;
                    }
                }
                st.unique.insert(key.clone(), (j.id.clone(), now));
            }
            let id = j.id.clone();
            let q = st.queues.entry(j.queue().to_owned()).or_default();
            let (status, run_at) = match j.run_at {
                Some(t) if t > now => {
                    q.scheduled.insert((t, id.clone()));
                    (JobStatus::Scheduled, Some(t))
                }
                _ => {
                    q.ready[j.priority.rank()].push_back(id.clone());
                    (JobStatus::Pending, None)
                }
            };
            let rec = Record {
                job: j,
                status,
                attempts: 0,
                log: Vec::new(),
                token: 0,
                lease_until: None,
                run_at,
                cancel_requested: false,
                result: None,
                finished_at: None,
                unique_key,
            };
            st.jobs.insert(id.clone(), rec);
            ids.push(id);
        }
        drop(st);
        self.wake();
        Ok(ids)
    }

    fn fetch_now(&self, req: &FetchRequest) -> Fetched {
        let now = SystemTime::now();
        let mut st = self.lock();
        let st = &mut *st;
        sweep(st, now, &self.shared.retention);
        let mut out = Fetched::default();
        for qname in &req.queues {
            let Some(q) = st.queues.get_mut(qname) else { continue };
            // Promote due scheduled and retrying jobs, oldest due first.
            for _ in 0..PROMOTE_BATCH {
                let Some((t, id)) = q.scheduled.first().cloned() else { break };
                if t > now {
                    break;
                }
                q.scheduled.pop_first();
                if let Some(r) = st.jobs.get_mut(&id) {
                    r.status = JobStatus::Pending;
                    r.run_at = None;
                    q.ready[r.job.priority.rank()].push_back(id);
                }
            }
            // Reclaim leases of workers that stopped heartbeating: the
            // attempt counts, and a job that keeps killing workers ends dead.
            for _ in 0..RECLAIM_BATCH {
                let Some((t, id)) = q.leased.first().cloned() else { break };
                if t > now {
                    break;
                }
                q.leased.pop_first();
                let Some(r) = st.jobs.get_mut(&id) else { continue };
                let error = "lease expired: the worker stopped responding (crashed, killed or stalled)".to_owned();
                if let Some(a) = r.log.last_mut() {
                    a.finished_at = Some(now);
                    a.error = Some(error);
                }
                r.lease_until = None;
                q.failed[r.job.priority.rank()] += 1;
                let max = r.job.max_retries.unwrap_or(req.default_max_retries);
                if r.cancel_requested {
                    finish_record(r, JobStatus::Cancelled, now, &mut st.finished);
                } else if r.attempts > max {
                    r.status = JobStatus::Dead;
                    r.finished_at = Some(now);
                    q.dead.insert((now, id));
                } else {
                    r.status = JobStatus::Pending;
                    q.ready[r.job.priority.rank()].push_back(id);
                }
            }
            if q.paused {
                continue;
            }
            for rank in 0..4 {
                while out.jobs.len() < req.max {
                    let Some(id) = q.ready[rank].pop_front() else { break };
                    let Some(r) = st.jobs.get_mut(&id) else { continue };
                    st.next_token += 1;
                    r.token = st.next_token;
                    r.attempts += 1;
                    r.status = JobStatus::Running;
                    let until = now + req.lease;
                    r.lease_until = Some(until);
                    r.log.push(AttemptInfo { attempt: r.attempts, started_at: now, finished_at: None, error: None });
                    q.leased.insert((until, id.clone()));
                    out.jobs.push(LeasedJob {
                        id,
                        name: r.job.name.clone(),
                        payload: r.job.payload.clone(),
                        priority: r.job.priority,
                        attempt: r.attempts,
                        max_retries: r.job.max_retries,
                        timeout: r.job.timeout,
                        enqueued_at: r.job.enqueued_at,
                        token: r.token,
                    });
                }
            }
        }
        for q in &req.queues {
            trim_dead(st, q, &self.shared.retention);
        }
        out.next_due = req
            .queues
            .iter()
            .filter_map(|n| st.queues.get(n))
            .flat_map(|q| [q.scheduled.first().map(|e| e.0), q.leased.first().map(|e| e.0)])
            .flatten()
            .min();
        out
    }

    fn finish_now(&self, batch: Vec<Finish>) -> Vec<FinishResult> {
        let now = SystemTime::now();
        let mut st = self.lock();
        let st = &mut *st;
        let mut woke = false;
        let mut dead_touched = Vec::new();
        let out = batch
            .into_iter()
            .map(|f| {
                let Some(r) = st.jobs.get_mut(&f.id) else { return FinishResult::Stale };
                if r.status != JobStatus::Running || r.token != f.token {
                    return FinishResult::Stale;
                }
                let q = st.queues.entry(f.id.queue().to_owned()).or_default();
                if let Some(until) = r.lease_until.take() {
                    q.leased.remove(&(until, f.id.clone()));
                }
                let rank = r.job.priority.rank();
                let end_attempt = |r: &mut Record, error: Option<String>| {
                    if let Some(a) = r.log.last_mut() {
                        a.finished_at = Some(now);
                        a.error = error;
                    }
                };
                let status = match f.outcome {
                    _ if r.cancel_requested => {
                        end_attempt(r, Some("cancelled".into()));
                        finish_record(r, JobStatus::Cancelled, now, &mut st.finished);
                        JobStatus::Cancelled
                    }
                    Outcome::Succeeded { result } => {
                        end_attempt(r, None);
                        r.result = result;
                        q.processed[rank] += 1;
                        finish_record(r, JobStatus::Succeeded, now, &mut st.finished);
                        JobStatus::Succeeded
                    }
                    Outcome::Retry { error, at } => {
                        end_attempt(r, Some(error));
                        q.failed[rank] += 1;
                        r.status = JobStatus::Retrying;
                        r.run_at = Some(at);
                        q.scheduled.insert((at, f.id.clone()));
                        woke = true;
                        JobStatus::Retrying
                    }
                    Outcome::Dead { error } => {
                        end_attempt(r, Some(error));
                        q.failed[rank] += 1;
                        r.status = JobStatus::Dead;
                        r.finished_at = Some(now);
                        q.dead.insert((now, f.id.clone()));
                        dead_touched.push(f.id.queue().to_owned());
                        JobStatus::Dead
                    }
                    Outcome::Release { at, reason: _ } => {
                        // Not an attempt: forget it was started.
                        r.log.pop();
                        r.attempts = r.attempts.saturating_sub(1);
                        woke = true;
                        match at {
                            Some(t) if t > now => {
                                r.status = JobStatus::Scheduled;
                                r.run_at = Some(t);
                                q.scheduled.insert((t, f.id.clone()));
                                JobStatus::Scheduled
                            }
                            _ => {
                                r.status = JobStatus::Pending;
                                q.ready[rank].push_front(f.id.clone());
                                JobStatus::Pending
                            }
                        }
                    }
                };
                FinishResult::Applied(status)
            })
            .collect();
        for q in dead_touched {
            trim_dead(st, &q, &self.shared.retention);
        }
        if woke {
            self.wake();
        }
        out
    }
}

fn check_policy(queue: &str, policy: &QueuePolicy, p: Priority) -> Result<(), Error> {
    if !policy.priority_levels.is_empty() && !policy.priority_levels.contains(&p) {
        return Err(Error::PriorityNotAccepted {
            queue: queue.to_owned(),
            priority: p,
            accepted: policy.priority_levels.clone(),
        });
    }
    Ok(())
}

fn finish_record(r: &mut Record, status: JobStatus, now: SystemTime, finished: &mut VecDeque<(SystemTime, JobId)>) {
    r.status = status;
    r.finished_at = Some(now);
    r.run_at = None;
    finished.push_back((now, r.job.id.clone()));
}

/// Drops the oldest dead jobs of a queue past the count bound.
fn trim_dead(st: &mut State, queue: &str, retention: &Retention) {
    let Some(q) = st.queues.get_mut(queue) else { return };
    while q.dead.len() > retention.dead_max {
        if let Some((_, id)) = q.dead.pop_first() {
            st.jobs.remove(&id);
        }
    }
}

/// Deletes finished records past their retention, and dead ones past their
/// age, a bounded number per call.
fn sweep(st: &mut State, now: SystemTime, retention: &Retention) {
    for _ in 0..SWEEP_BATCH {
        let Some((t, _)) = st.finished.front() else { break };
        if now.duration_since(*t).unwrap_or_default() < retention.succeeded {
            break;
        }
        let Some((_, id)) = st.finished.pop_front() else { break };
        // The record may have been retried or purged since.
        if st.jobs.get(&id).is_some_and(|r| matches!(r.status, JobStatus::Succeeded | JobStatus::Cancelled)) {
            forget(st, &id);
        }
    }
    let horizon = now.checked_sub(retention.dead_age);
    let mut expired = Vec::new();
    for q in st.queues.values_mut() {
        while let (Some((t, _)), Some(h)) = (q.dead.first(), horizon) {
            if *t > h || expired.len() >= SWEEP_BATCH {
                break;
            }
            if let Some((_, id)) = q.dead.pop_first() {
                expired.push(id);
            }
        }
    }
    for id in expired {
        forget(st, &id);
    }
}

/// Removes a record and its deduplication entry.
fn forget(st: &mut State, id: &JobId) {
    if let Some(r) = st.jobs.remove(id) {
        if let Some(k) = r.unique_key {
            if st.unique.get(&k).is_some_and(|(u, _)| u == id) {
                st.unique.remove(&k);
            }
        }
    }
}

fn info(r: &Record) -> JobInfo {
    JobInfo {
        id: r.job.id.clone(),
        name: r.job.name.clone(),
        queue: r.job.id.queue().to_owned(),
        priority: r.job.priority,
        status: r.status,
        payload: serde_json::from_slice(&r.job.payload)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&r.job.payload).into_owned())),
        attempts: r.attempts,
        max_retries: r.job.max_retries,
        attempt_log: r.log.clone(),
        enqueued_at: r.job.enqueued_at,
        run_at: r.run_at,
        finished_at: r.finished_at,
        result: r.result.as_deref().and_then(|b| serde_json::from_slice(b).ok()),
    }
}

struct MemoryWaiter {
    rx: watch::Receiver<u64>,
}

impl Waiter for MemoryWaiter {
    fn arm(&mut self) {
        self.rx.borrow_and_update();
    }

    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            // Err(timeout) and a closed channel both mean: look again.
            let _ = tokio::time::timeout(timeout, self.rx.changed()).await;
            Ok(())
        })
    }
}

impl JobQueue for MemoryQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        let r = self.enqueue_now(jobs);
        Box::pin(async move { r })
    }

    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        let r = self.fetch_now(req);
        Box::pin(async move { Ok(r) })
    }

    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        let r = self.finish_now(batch);
        Box::pin(async move { Ok(r) })
    }

    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        let now = SystemTime::now();
        let mut st = self.lock();
        let st = &mut *st;
        let out = leases
            .iter()
            .map(|(id, token)| {
                let Some(r) = st.jobs.get_mut(id) else { return LeaseState::Lost };
                if r.status != JobStatus::Running || r.token != *token {
                    return LeaseState::Lost;
                }
                let q = st.queues.entry(id.queue().to_owned()).or_default();
                if let Some(old) = r.lease_until.take() {
                    q.leased.remove(&(old, id.clone()));
                }
                let until = now + lease;
                r.lease_until = Some(until);
                q.leased.insert((until, id.clone()));
                if r.cancel_requested {
                    LeaseState::CancelRequested
                } else {
                    LeaseState::Held
                }
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn waiter(&self, _queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        Ok(Box::new(MemoryWaiter { rx: self.shared.wake.subscribe() }))
    }

    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        let r = self.lock().jobs.get(id).map(info);
        Box::pin(async move { Ok(r) })
    }

    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        let now = SystemTime::now();
        let mut st = self.lock();
        let st = &mut *st;
        let r = match st.jobs.get_mut(id) {
            None => Err(Error::NotFound(id.clone())),
            Some(r) => Ok(match r.status {
                JobStatus::Running => {
                    r.cancel_requested = true;
                    CancelResult::Requested
                }
                s if s.is_finished() => CancelResult::AlreadyFinished(s),
                _ => {
                    let q = st.queues.entry(id.queue().to_owned()).or_default();
                    if let Some(t) = r.run_at {
                        q.scheduled.remove(&(t, id.clone()));
                    }
                    let ready = &mut q.ready[r.job.priority.rank()];
                    if let Some(pos) = ready.iter().position(|x| x == id) {
                        ready.remove(pos);
                    }
                    finish_record(r, JobStatus::Cancelled, now, &mut st.finished);
                    CancelResult::Cancelled
                }
            }),
        };
        Box::pin(async move { r })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        let st = self.lock();
        let mut stats = QueueStats::default();
        for (name, q) in &st.queues {
            let mut qc = QueueCounts { paused: q.paused, ..Default::default() };
            for p in Priority::ALL {
                qc.by_priority.insert(
                    p,
                    Counts { processed: q.processed[p.rank()], failed: q.failed[p.rank()], ..Default::default() },
                );
            }
            stats.queues.insert(name.clone(), qc);
        }
        for r in st.jobs.values() {
            let Some(qc) = stats.queues.get_mut(r.job.id.queue()) else { continue };
            let Some(c) = qc.by_priority.get_mut(&r.job.priority) else { continue };
            match r.status {
                JobStatus::Pending => c.pending += 1,
                JobStatus::Scheduled => c.scheduled += 1,
                JobStatus::Running => c.running += 1,
                JobStatus::Retrying => c.retrying += 1,
                JobStatus::Dead => c.dead += 1,
                JobStatus::Succeeded | JobStatus::Cancelled => {}
            }
        }
        Box::pin(async move { Ok(stats) })
    }

    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        let st = self.lock();
        let out = st
            .queues
            .get(queue)
            .map(|q| q.dead.iter().rev().filter_map(|(_, id)| st.jobs.get(id)).take(limit).map(info).collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(out) })
    }

    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        let mut st = self.lock();
        let st = &mut *st;
        let r = match st.jobs.get_mut(id) {
            None => Err(Error::NotFound(id.clone())),
            Some(r) if r.status != JobStatus::Dead => {
                Err(Error::InvalidState { id: id.clone(), status: r.status, action: "retry a job that is not dead" })
            }
            Some(r) => {
                let q = st.queues.entry(id.queue().to_owned()).or_default();
                q.dead.retain(|(_, d)| d != id);
                r.status = JobStatus::Pending;
                r.attempts = 0;
                r.finished_at = None;
                q.ready[r.job.priority.rank()].push_back(id.clone());
                Ok(())
            }
        };
        if r.is_ok() {
            self.wake();
        }
        Box::pin(async move { r })
    }

    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        let mut st = self.lock();
        let dead = st.queues.get_mut(queue).map(|q| std::mem::take(&mut q.dead)).unwrap_or_default();
        let n = dead.len() as u64;
        for (_, id) in dead {
            forget(&mut st, &id);
        }
        Box::pin(async move { Ok(n) })
    }

    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).map(|()| {
            self.lock().queues.entry(queue.to_owned()).or_default().paused = true;
        });
        Box::pin(async move { r })
    }

    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).map(|()| {
            self.lock().queues.entry(queue.to_owned()).or_default().paused = false;
        });
        self.wake();
        Box::pin(async move { r })
    }

    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).map(|()| {
            self.lock().queues.entry(queue.to_owned()).or_default().policy = policy;
        });
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Outcome;

    fn raw(queue: &str, run_at: Option<SystemTime>) -> NewJob {
        NewJob {
            id: JobId::new(queue),
            name: "x".into(),
            payload: b"{}".to_vec(),
            priority: Priority::Normal,
            max_retries: Some(0),
            timeout: None,
            run_at,
            unique_for: None,
            enqueued_at: SystemTime::now(),
        }
    }

    fn req(queue: &str, max: usize) -> FetchRequest {
        FetchRequest { queues: vec![queue.into()], max, lease: Duration::from_secs(30), default_max_retries: 3 }
    }

    async fn run_one(q: &MemoryQueue, outcome: Outcome) -> JobId {
        q.enqueue_many(vec![raw("r", None)]).await.unwrap();
        let job = q.fetch(&req("r", 1)).await.unwrap().jobs.remove(0);
        q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
        job.id
    }

    #[tokio::test]
    async fn succeeded_jobs_are_dropped_after_retention() {
        let q = MemoryQueue::with_retention(Retention { succeeded: Duration::ZERO, ..Retention::default() });
        let id = run_one(&q, Outcome::Succeeded { result: Some(b"1".to_vec()) }).await;
        assert!(q.job(&id).await.unwrap().is_some(), "kept until the next sweep");
        q.fetch(&req("r", 1)).await.unwrap();
        assert!(q.job(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn dead_set_is_bounded_by_count_and_age() {
        let q = MemoryQueue::with_retention(Retention { dead_max: 2, ..Retention::default() });
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(run_one(&q, Outcome::Dead { error: "x".into() }).await);
        }
        let dead: Vec<_> = q.dead_jobs("r", 10).await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(dead, vec![ids[2].clone(), ids[1].clone()]);
        assert!(q.job(&ids[0]).await.unwrap().is_none());

        let q = MemoryQueue::with_retention(Retention { dead_age: Duration::ZERO, ..Retention::default() });
        let id = run_one(&q, Outcome::Dead { error: "x".into() }).await;
        q.fetch(&req("r", 1)).await.unwrap();
        assert!(q.job(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn due_jobs_are_promoted_in_bounded_batches() {
        let q = MemoryQueue::new();
        let past = SystemTime::now() - Duration::from_secs(1);
        let jobs: Vec<_> = (0..2500).map(|_| raw("p", Some(past + Duration::from_secs(2)))).collect();
        q.enqueue_many(jobs).await.unwrap();
        assert_eq!(q.stats().await.unwrap().queue("p").scheduled, 2500);
        // Make them due without waiting: move every record's time back.
        {
            let mut st = q.lock();
            let qs = st.queues.get_mut("p").unwrap();
            let items: Vec<_> = std::mem::take(&mut qs.scheduled).into_iter().map(|(_, id)| (past, id)).collect();
            qs.scheduled.extend(items);
        }
        let got = q.fetch(&req("p", 1)).await.unwrap();
        assert_eq!(got.jobs.len(), 1);
        let c = q.stats().await.unwrap().queue("p");
        assert_eq!((c.pending, c.scheduled, c.running), (PROMOTE_BATCH as u64 - 1, 1500, 1));
    }

    #[tokio::test]
    async fn a_waiter_armed_before_an_enqueue_wakes_at_once() {
        let q = MemoryQueue::new();
        let mut w = q.waiter(&["a".into()]).unwrap();
        w.arm();
        q.enqueue_many(vec![raw("a", None)]).await.unwrap();
        // Would block for an hour if the wake-up were lost.
        tokio::time::timeout(Duration::from_secs(5), w.wait(Duration::from_secs(3600)))
            .await
            .expect("woken")
            .unwrap();
    }
}
