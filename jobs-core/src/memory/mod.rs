//! [`MemoryQueue`]: the embedded backend, with the semantics every backend
//! keeps (the crate documentation's "Semantics" section) in one process and
//! no server.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

mod archive;
mod book;
mod breaker;
mod capabilities;
mod events;
mod flows;
mod hot;
mod idents;
mod progress;
mod ready;
mod retention;
#[cfg(test)]
mod tests;

use hot::enqueue_locked;

use crate::error::Error;
use crate::payload::PayloadFormat;
use crate::queue::{
    AttemptInfo, BoxFuture, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue, LeaseState, MinuteCounts,
    NewJob, PoolInfo, PoolPresence, ProgressUpdate, ProgressWrite, QueuePolicy, Retention, ScheduleState,
    ScheduleStore, Waiter, ATTEMPT_LOG_MAX,
};
use crate::vocab::{JobId, JobStatus};

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
    /// Bumped on every stored job and recorded attempt.
    #[cfg(feature = "test-util")]
    changed: watch::Sender<u64>,
    retention: Retention,
    /// The largest payload an enqueue accepts.
    max_payload: std::sync::atomic::AtomicUsize,
    /// Job events kept per queue.
    event_history: std::sync::atomic::AtomicUsize,
    hub: crate::events::EventHub,
    /// Bumped when flow members end or flows end (flow waiters).
    flows: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Record>,
    queues: HashMap<String, QueueState>,
    unique: HashMap<(String, Vec<u8>), (JobId, SystemTime)>,
    idents: idents::Idents,
    finished: Finished,
    next_token: u64,
    pools: HashMap<String, (PoolInfo, SystemTime)>,
    schedules: std::collections::BTreeMap<String, ScheduleState>,
    events: events::EventLogs,
    flows: book::FlowBook,
}

#[derive(Default)]
struct QueueState {
    ready: ready::Ready,
    /// Starts within the queue's `rate` window.
    starts: ready::Starts,
    scheduled: BTreeSet<(SystemTime, JobId)>,
    leased: BTreeSet<(SystemTime, JobId)>,
    dead: BTreeSet<(SystemTime, JobId)>,
    paused: bool,
    policy: QueuePolicy,
    processed: [u64; 4],
    failed: [u64; 4],
    /// Jobs ended expired, per rank (a counter, like `processed`).
    expired: [u64; 4],
    /// Fetches that a bound of the queue cut short while jobs waited (see
    /// `QueueCounts::limited` and `throttled`); the groups' own counts are in
    /// `ready`.
    limited: u64,
    throttled: u64,
    /// The queue's circuit breaker.
    breaker: breaker::BreakerRun,
    /// Per-minute history, newest last, at most [`HISTORY_MINUTES`].
    history: VecDeque<MinuteCounts>,
    /// Jobs the retention deleted, waiting for the archiver (when the
    /// policy archives).
    archive: archive::Backlog,
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
        (self.ready.len() + self.scheduled.len()) as u64
    }
}

/// Succeeded, cancelled and expired jobs per queue, oldest first: what the retention
/// sweep goes through, by age and by count ([`Retention::succeeded_max`]).
#[derive(Default)]
struct Finished {
    by_queue: HashMap<String, VecDeque<(SystemTime, JobId)>>,
    /// Ended jobs of workflows and batches not yet applied to their flow,
    /// with when a relay may take each (see `flows.rs`).
    flow_out: std::collections::BTreeMap<JobId, SystemTime>,
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

    /// Records the end of a flow member's job for the relay.
    fn flow_end(&mut self, r: &Record, now: SystemTime) {
        if r.job.headers.contains_key(crate::queue::FLOW_HEADER) {
            self.flow_out.insert(r.job.id.clone(), now);
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
    /// Times it snoozed.
    snoozes: u32,
    /// Past this, on the store's clock, a fetch ends it expired (while no
    /// attempt of it has counted).
    expires_at: Option<SystemTime>,
    /// The last progress an attempt reported.
    progress: Option<crate::queue::Progress>,
}

/// A monotonic clock that reads as wall-clock time: the `SystemTime` of its
/// creation plus the `Instant` time elapsed since, plus what
/// [`MemoryQueue::advance`] added. A manual clock moves only by `advance`.
#[derive(Debug)]
struct Clock {
    anchor: SystemTime,
    start: Instant,
    manual: bool,
    /// Nanoseconds added by `advance`.
    advanced: std::sync::atomic::AtomicU64,
}

impl Clock {
    fn new(anchor: SystemTime, manual: bool) -> Self {
        Clock { anchor, start: Instant::now(), manual, advanced: std::sync::atomic::AtomicU64::new(0) }
    }

    fn now(&self) -> SystemTime {
        let elapsed = if self.manual { Duration::ZERO } else { self.start.elapsed() };
        self.anchor + elapsed + Duration::from_nanos(self.advanced.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn advance(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ =
            self.advanced.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |v| {
                Some(v.saturating_add(ns))
            });
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

    /// An empty store whose clock stands still until [`MemoryQueue::advance`]
    /// moves it: delays, retries, leases and schedules then happen exactly
    /// when a test says, without waiting.
    ///
    /// ```
    /// # use jobs_core::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
    /// let queue = MemoryQueue::with_manual_clock();
    /// let before = queue.now().await?;
    /// queue.advance(std::time::Duration::from_secs(3600));
    /// assert_eq!(queue.now().await?.duration_since(before).unwrap().as_secs(), 3600);
    /// # Ok(()) }
    /// ```
    pub fn with_manual_clock() -> Self {
        Self::with_clock_mode(Retention::default(), SystemTime::now(), true)
    }

    /// Moves the store's clock forward by `d` (on any store; the only way a
    /// [`MemoryQueue::with_manual_clock`] store's clock moves), and wakes
    /// waiting workers so that jobs now due are taken.
    pub fn advance(&self, d: Duration) {
        self.shared.clock.advance(d);
        self.wake();
    }

    /// A receiver that changes whenever a job is stored or an attempt is
    /// recorded: for code that waits for the store to settle.
    #[cfg(feature = "test-util")]
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    fn changed(&self) {
        // Only the test kit waits on it: without it the hot path sends nothing.
        #[cfg(feature = "test-util")]
        self.shared.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A store whose clock starts at `anchor`.
    fn with_clock(retention: Retention, anchor: SystemTime) -> Self {
        Self::with_clock_mode(retention, anchor, false)
    }

    fn with_clock_mode(retention: Retention, anchor: SystemTime, manual: bool) -> Self {
        let (wake, _) = watch::channel(0);
        #[cfg(feature = "test-util")]
        let (changed, _) = watch::channel(0);
        MemoryQueue {
            shared: Arc::new(Shared {
                #[cfg(feature = "test-util")]
                changed,
                clock: Clock::new(anchor, manual),
                state: Mutex::new(State::default()),
                wake,
                retention,
                max_payload: std::sync::atomic::AtomicUsize::new(crate::queue::DEFAULT_MAX_PAYLOAD),
                event_history: std::sync::atomic::AtomicUsize::new(crate::events::DEFAULT_EVENT_HISTORY),
                hub: crate::events::EventHub::default(),
                flows: watch::channel(0).0,
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
        crate::queue::check_idents(&jobs)?;
        let now = self.clock();
        let ids = enqueue_locked(&mut self.lock(), jobs, now, self.event_history())?;
        self.wake();
        self.changed();
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
        payload: r.job.format.to_json(&r.job.payload),
        attempts: r.attempts,
        max_retries: r.job.max_retries,
        attempt_log: r.log.entries.clone(),
        attempts_omitted: r.log.omitted,
        enqueued_at: r.job.enqueued_at,
        run_at: r.run_at,
        finished_at: r.finished_at,
        result: r.result.as_deref().and_then(|b| serde_json::from_slice(b).ok()),
        headers: r.job.headers.clone(),
        snoozes: r.snoozes,
        expires_at: r.expires_at,
        progress: r.progress.clone(),
        caller_id: r.job.caller_id.as_ref().map(|c| c.id.clone()),
        key: r.job.key.as_ref().map(|k| k.key.clone()),
        group: r.job.group.as_ref().map(|g| g.key.clone()),
        handler_started: r.status == JobStatus::Running && r.started,
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
        self.changed();
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

    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
        let r = self.report_progress_now(update);
        Box::pin(async move { r })
    }

    fn waiter(&self, _queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        Ok(Box::new(MemoryWaiter { rx: self.shared.wake.subscribe() }))
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        let now = self.clock();
        Box::pin(async move { Ok(now) })
    }
    /// JSON: nothing leaves the process, so the size MessagePack saves buys
    /// nothing here.
    fn payload_format(&self) -> PayloadFormat {
        PayloadFormat::Json
    }
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        Some(Arc::new(self.clone()))
    }

    fn archive(&self) -> Option<Arc<dyn crate::queue::ArchiveBacklog>> {
        Some(Arc::new(self.clone()))
    }

    fn flow_store(&self) -> Option<Arc<dyn crate::queue::FlowStore>> {
        Some(Arc::new(self.clone()))
    }

    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        Some(Arc::new(self.clone()))
    }
}
