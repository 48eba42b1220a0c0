//! [`MemoryQueue`]: the embedded backend, with the semantics every backend
//! keeps (the crate documentation's "Semantics" section) in one process and
//! no server.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

mod hot;
#[cfg(test)]
mod tests;

use hot::{enqueue_locked, finish_record, forget};

use crate::error::Error;
use crate::job::{validate_queue_name, JobId, Priority};
use crate::queue::{
    AttemptInfo, BoxFuture, CancelResult, Counts, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue,
    JobStatus, LeaseState, MinuteCounts, NewJob, QueueCounts, QueuePolicy, QueueStats, Retention, ScheduleDef,
    ScheduleState, Waiter, WorkerInfo, ATTEMPT_LOG_MAX,
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
/// Its clock is monotonic: the wall clock is read once, when the store is
/// created, and time moves on from there by [`Instant`]. Leases, due times
/// of delayed and retrying jobs, retention and schedule ticks are measured
/// on it, so setting the host's clock forward or back moves none of them.
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
    clock: Clock,
    state: Mutex<State>,
    wake: watch::Sender<u64>,
    retention: Retention,
    /// The largest payload an enqueue accepts.
    max_payload: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Record>,
    queues: HashMap<String, QueueState>,
    unique: HashMap<(String, Vec<u8>), (JobId, SystemTime)>,
    finished: Finished,
    next_token: u64,
    workers: HashMap<String, (WorkerInfo, SystemTime)>,
    schedules: std::collections::BTreeMap<String, ScheduleState>,
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
    /// Per-minute history, newest last, at most [`HISTORY_MINUTES`].
    history: VecDeque<MinuteCounts>,
}

/// Minutes of throughput history kept per queue.
const HISTORY_MINUTES: usize = 60 * 24;

impl QueueState {
    /// Counts one ended attempt in the statistics and the minute history.
    fn count(&mut self, rank: usize, ok: bool, now: SystemTime) {
        if ok {
            self.processed[rank] += 1;
        } else {
            self.failed[rank] += 1;
        }
        let minute = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() / 60 * 60;
        if self.history.back().is_none_or(|m| m.minute != minute) {
            self.history.push_back(MinuteCounts { minute, ..Default::default() });
            if self.history.len() > HISTORY_MINUTES {
                self.history.pop_front();
            }
        }
        if let Some(m) = self.history.back_mut() {
            if ok {
                m.processed += 1;
            } else {
                m.failed += 1;
            }
        }
    }
}

impl QueueState {
    fn waiting(&self) -> u64 {
        (self.ready.iter().map(VecDeque::len).sum::<usize>() + self.scheduled.len()) as u64
    }
}

/// Succeeded and cancelled jobs per queue, oldest first: what the retention
/// sweep goes through, by age and by count ([`Retention::succeeded_max`]).
#[derive(Default)]
struct Finished {
    by_queue: HashMap<String, VecDeque<(SystemTime, JobId)>>,
}

impl Finished {
    /// Adds a job that just finished at `t`.
    fn push_back(&mut self, (t, id): (SystemTime, JobId)) {
        match self.by_queue.get_mut(id.queue()) {
            Some(q) => q.push_back((t, id)),
            None => {
                self.by_queue.insert(id.queue().to_owned(), VecDeque::from([(t, id)]));
            }
        }
    }

    /// The finished jobs of one queue, oldest first.
    fn of(&self, queue: &str) -> impl DoubleEndedIterator<Item = &(SystemTime, JobId)> {
        self.by_queue.get(queue).into_iter().flatten()
    }
}

/// A job's attempts as stored: at most [`ATTEMPT_LOG_MAX`] entries, the first
/// attempt and the most recent ones, with a count of those left out between
/// them, so that a job with thousands of retries stays small.
#[derive(Default)]
struct AttemptLog {
    entries: Vec<AttemptInfo>,
    omitted: u32,
}

impl AttemptLog {
    /// Appends an attempt; when full, the oldest but the first goes.
    fn push(&mut self, a: AttemptInfo) {
        // ATTEMPT_LOG_MAX is at least 2, so index 1 exists when full.
        if self.entries.len() >= ATTEMPT_LOG_MAX.max(2) {
            self.entries.remove(1);
            self.omitted = self.omitted.saturating_add(1);
        }
        self.entries.push(a);
    }

    /// Removes the newest attempt (one that does not count after all).
    fn pop(&mut self) -> Option<AttemptInfo> {
        self.entries.pop()
    }

    /// The newest attempt.
    fn last_mut(&mut self) -> Option<&mut AttemptInfo> {
        self.entries.last_mut()
    }
}

struct Record {
    job: NewJob,
    status: JobStatus,
    attempts: u32,
    log: AttemptLog,
    token: u64,
    lease_until: Option<SystemTime>,
    run_at: Option<SystemTime>,
    cancel_requested: bool,
    result: Option<Vec<u8>>,
    finished_at: Option<SystemTime>,
    unique_key: Option<(String, Vec<u8>)>,
    /// The running attempt's handler is known to have started.
    started: bool,
    /// Leases lost before the handler was known to start.
    crashes: u32,
}

/// A monotonic clock that reads as wall-clock time: the `SystemTime` of its
/// creation plus the `Instant` time elapsed since.
#[derive(Debug, Clone, Copy)]
struct Clock {
    anchor: SystemTime,
    start: Instant,
}

impl Clock {
    fn new(anchor: SystemTime) -> Self {
        Clock { anchor, start: Instant::now() }
    }

    fn now(&self) -> SystemTime {
        self.anchor + self.start.elapsed()
    }
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
        Self::with_clock(retention, SystemTime::now())
    }

    /// A store whose clock starts at `anchor`.
    fn with_clock(retention: Retention, anchor: SystemTime) -> Self {
        let (wake, _) = watch::channel(0);
        MemoryQueue {
            shared: Arc::new(Shared {
                clock: Clock::new(anchor),
                state: Mutex::new(State::default()),
                wake,
                retention,
                max_payload: std::sync::atomic::AtomicUsize::new(crate::queue::DEFAULT_MAX_PAYLOAD),
            }),
        }
    }

    /// Sets the largest serialized payload an enqueue accepts (default
    /// 512 KiB), for every handle on this store.
    pub fn set_max_payload(&self, bytes: usize) {
        self.shared.max_payload.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn max_payload(&self) -> usize {
        self.shared.max_payload.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store's clock (see the type's documentation).
    fn clock(&self) -> SystemTime {
        self.shared.clock.now()
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
        crate::queue::check_payload_sizes(&jobs, self.max_payload())?;
        crate::queue::check_times(&jobs)?;
        let now = self.clock();
        let ids = enqueue_locked(&mut self.lock(), jobs, now)?;
        self.wake();
        Ok(ids)
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
        attempt_log: r.log.entries.clone(),
        attempts_omitted: r.log.omitted,
        enqueued_at: r.job.enqueued_at,
        run_at: r.run_at,
        finished_at: r.finished_at,
        result: r.result.as_deref().and_then(|b| serde_json::from_slice(b).ok()),
        headers: r.job.headers.clone(),
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
        let now = self.clock();
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
        let now = self.clock();
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
                r.crashes = 0;
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

    fn report_worker(&self, info: WorkerInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let now = self.clock();
        let info = WorkerInfo { last_seen: now, ..info };
        let mut st = self.lock();
        // Pools that died without removing themselves go with the next
        // heartbeat of any pool, listed or not.
        st.workers.retain(|_, (_, until)| *until > now);
        st.workers.insert(info.id.clone(), (info, now + ttl));
        Box::pin(async { Ok(()) })
    }

    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.lock().workers.remove(id);
        Box::pin(async { Ok(()) })
    }

    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        let st = self.lock();
        let out = match st.queues.get(queue) {
            None => Vec::new(),
            Some(q) => {
                let ids: Box<dyn Iterator<Item = &JobId>> = match status {
                    JobStatus::Pending => Box::new(q.ready.iter().flatten()),
                    JobStatus::Scheduled | JobStatus::Retrying => Box::new(q.scheduled.iter().map(|(_, id)| id)),
                    JobStatus::Running => Box::new(q.leased.iter().map(|(_, id)| id)),
                    JobStatus::Dead => Box::new(q.dead.iter().rev().map(|(_, id)| id)),
                    JobStatus::Succeeded | JobStatus::Cancelled => {
                        Box::new(st.finished.of(queue).rev().map(|(_, id)| id))
                    }
                };
                ids.filter_map(|id| st.jobs.get(id))
                    .filter(|r| r.status == status)
                    .skip(offset)
                    .take(limit)
                    .map(info)
                    .collect()
            }
        };
        Box::pin(async move { Ok(out) })
    }

    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        let now = self.clock().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() / 60 * 60;
        let st = self.lock();
        let history = st.queues.get(queue).map(|q| &q.history);
        let out = (0..minutes as u64)
            .rev()
            .map(|back| {
                let minute = now.saturating_sub(back * 60);
                history
                    .and_then(|h| h.iter().rev().find(|m| m.minute == minute).copied())
                    .unwrap_or(MinuteCounts { minute, ..Default::default() })
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        let mut st = self.lock();
        match st.schedules.get_mut(&def.name) {
            Some(existing) => {
                let created_at = existing.def.created_at;
                existing.def = ScheduleDef { created_at, ..def };
            }
            None => {
                let state = ScheduleState { def, paused: false, last_tick: None, last_run: None, last_job: None };
                st.schedules.insert(state.def.name.clone(), state);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        let out = self.lock().schedules.values().cloned().collect();
        Box::pin(async move { Ok(out) })
    }

    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let removed = self.lock().schedules.remove(name).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        let r = match self.lock().schedules.get_mut(name) {
            Some(s) => {
                s.paused = paused;
                Ok(())
            }
            None => Err(Error::ScheduleNotFound(name.to_owned())),
        };
        Box::pin(async move { r })
    }

    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        let now = self.clock();
        let r = (|| {
            let mut st = self.lock();
            let state = st.schedules.get(name).ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
            if state.last_tick.is_some_and(|t| t >= tick) {
                return Ok(None);
            }
            // Enqueue first: a refused enqueue leaves the tick unhandled.
            let id = match job {
                Some(j) => {
                    crate::queue::check_times(std::slice::from_ref(&j))?;
                    Some(enqueue_locked(&mut st, vec![j], now)?.remove(0))
                }
                None => None,
            };
            let state = st.schedules.get_mut(name).ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
            state.last_tick = Some(tick);
            if let Some(id) = &id {
                state.last_run = Some(now);
                state.last_job = Some(id.clone());
            }
            Ok(id)
        })();
        if matches!(r, Ok(Some(_))) {
            self.wake();
        }
        Box::pin(async move { r })
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>, Error>> {
        let now = self.clock();
        let mut st = self.lock();
        st.workers.retain(|_, (_, until)| *until > now);
        let mut out: Vec<WorkerInfo> = st.workers.values().map(|(w, _)| w.clone()).collect();
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.id.cmp(&b.id)));
        Box::pin(async move { Ok(out) })
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        let now = self.clock();
        Box::pin(async move { Ok(now) })
    }
}
