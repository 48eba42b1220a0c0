//! The storage port: [`JobQueue`], what it stores and what it reports.
//!
//! The port is shaped for a server backend at full speed: every hot-path call
//! works on a batch (fetch many leased jobs, finish many, extend many leases),
//! so a Redis implementation makes one script call per batch. It is object
//! safe: `Arc<dyn JobQueue>` ([`SharedQueue`]) holds any backend chosen at run
//! time, and implements `JobQueue` itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::job::{JobId, Priority};

/// A boxed future, as the port's methods return (object safety).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A job as a producer hands it to a backend: validated and serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Its id (which names its queue).
    pub id: JobId,
    /// The job name that selects the handler.
    pub name: String,
    /// The serialized payload (JSON).
    pub payload: Vec<u8>,
    /// Its priority.
    pub priority: Priority,
    /// Retries after the first attempt; `None`: the pool's default.
    pub max_retries: Option<u32>,
    /// Per-attempt timeout; `None`: the pool's default (none).
    pub timeout: Option<Duration>,
    /// Not before this time (delayed or scheduled); `None`: now.
    pub run_at: Option<SystemTime>,
    /// Deduplication window (see `JobOptions::unique_for`).
    pub unique_for: Option<Duration>,
    /// When the producer enqueued it.
    pub enqueued_at: SystemTime,
    /// Metadata carried with the job, such as the enqueuing code's trace
    /// context (see [`crate::TracePropagator`]). Usually empty or one entry.
    pub headers: Headers,
}

/// Job metadata: string keys and values, kept in order.
pub type Headers = BTreeMap<String, String>;

/// The payload size backends accept by default: 512 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 512 * 1024;

/// Refuses a batch in which any payload is larger than `limit` bytes; a
/// backend calls it before writing anything.
pub fn check_payload_sizes(jobs: &[NewJob], limit: usize) -> Result<(), Error> {
    match jobs.iter().find(|j| j.payload.len() > limit) {
        Some(j) => Err(Error::PayloadTooLarge { size: j.payload.len(), limit }),
        None => Ok(()),
    }
}

impl NewJob {
    /// The queue it goes to.
    pub fn queue(&self) -> &str {
        self.id.queue()
    }
}

/// The lifecycle state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to be taken.
    Pending,
    /// Waiting for its time (delayed, scheduled).
    Scheduled,
    /// Leased by a worker.
    Running,
    /// Failed, waiting for its next attempt.
    Retrying,
    /// Finished successfully.
    Succeeded,
    /// Out of attempts or failed permanently: in the dead-letter set.
    Dead,
    /// Cancelled before or while it ran.
    Cancelled,
}

impl JobStatus {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Succeeded, dead or cancelled: nothing more will happen to it unless an
    /// operator retries a dead job.
    pub const fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt of a job, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptInfo {
    /// 1-based.
    pub attempt: u32,
    /// When a worker took it.
    pub started_at: SystemTime,
    /// When it ended (absent while running).
    pub finished_at: Option<SystemTime>,
    /// Why it failed (absent on success).
    pub error: Option<String>,
}

/// Everything known about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Its id.
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Its priority.
    pub priority: Priority,
    /// Where it is in its lifecycle.
    pub status: JobStatus,
    /// The payload as JSON.
    pub payload: serde_json::Value,
    /// Attempts started so far (a job handed back at shutdown does not count).
    pub attempts: u32,
    /// Retries after the first attempt, when set on the job.
    pub max_retries: Option<u32>,
    /// Every attempt with its error, oldest first.
    pub attempt_log: Vec<AttemptInfo>,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
    /// When it is due (scheduled, delayed or retrying).
    pub run_at: Option<SystemTime>,
    /// When it finished (succeeded, dead, cancelled).
    pub finished_at: Option<SystemTime>,
    /// The job function's `Ok` value as JSON, when it returned one.
    pub result: Option<serde_json::Value>,
    /// The metadata the producer attached (trace context).
    #[serde(default)]
    pub headers: Headers,
}

impl JobInfo {
    /// The last attempt's error, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.attempt_log.iter().rev().find_map(|a| a.error.as_deref())
    }
}

/// Counts for one queue and priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Waiting to be taken now.
    pub pending: u64,
    /// Waiting for their time.
    pub scheduled: u64,
    /// Leased by a worker.
    pub running: u64,
    /// Waiting for a retry.
    pub retrying: u64,
    /// In the dead-letter set.
    pub dead: u64,
    /// Finished successfully (since the backend's counters started).
    pub processed: u64,
    /// Failed attempts (since the backend's counters started).
    pub failed: u64,
}

impl Counts {
    /// Adds another set of counts to this one.
    pub fn add(&mut self, o: &Counts) {
        self.pending += o.pending;
        self.scheduled += o.scheduled;
        self.running += o.running;
        self.retrying += o.retrying;
        self.dead += o.dead;
        self.processed += o.processed;
        self.failed += o.failed;
    }
}

/// The counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Per priority.
    pub by_priority: BTreeMap<Priority, Counts>,
    /// Whether workers are held off the queue.
    pub paused: bool,
}

impl QueueCounts {
    /// All priorities added up.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.by_priority.values() {
            t.add(c);
        }
        t
    }
}

/// Counts of every queue the backend knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Per queue name.
    pub queues: BTreeMap<String, QueueCounts>,
}

impl QueueStats {
    /// One queue's counts, all priorities added up (zero when unknown).
    pub fn queue(&self, name: &str) -> Counts {
        self.queues.get(name).map(QueueCounts::total).unwrap_or_default()
    }

    /// One queue and priority.
    pub fn get(&self, name: &str, p: Priority) -> Counts {
        self.queues.get(name).and_then(|q| q.by_priority.get(&p)).copied().unwrap_or_default()
    }
}

/// Limits of one queue (configuration `queues:` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePolicy {
    /// Refuse enqueues past this many pending and scheduled jobs (retries are
    /// never refused).
    pub max_jobs: Option<u64>,
    /// Accept only these priorities; empty: all.
    pub priority_levels: Vec<Priority>,
}

/// How long finished jobs are kept. Nothing grows without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded and cancelled jobs (and their results). Default 24 h.
    pub succeeded: Duration,
    /// Dead jobs, by age. Default 7 days.
    pub dead_age: Duration,
    /// Dead jobs per queue, by count (oldest dropped first). Default 10,000.
    pub dead_max: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            succeeded: Duration::from_secs(24 * 3600),
            dead_age: Duration::from_secs(7 * 24 * 3600),
            dead_max: 10_000,
        }
    }
}

/// A fetch: up to `max` jobs from `queues`, leased for `lease`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The queues in the order to take them: a backend takes from the first
    /// queue with work, highest priority first. (The pool varies this order
    /// for weighted fetching.)
    pub queues: Vec<String>,
    /// At most this many jobs.
    pub max: usize,
    /// How long a taken job stays leased without a heartbeat.
    pub lease: Duration,
    /// Retries for jobs that carry none: used when an expired lease is
    /// reclaimed, to decide whether the job is out of attempts.
    pub default_max_retries: u32,
}

/// A job taken by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    /// Its id.
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// The serialized payload.
    pub payload: Vec<u8>,
    /// Its priority.
    pub priority: Priority,
    /// This attempt, 1-based.
    pub attempt: u32,
    /// Retries set on the job, if any.
    pub max_retries: Option<u32>,
    /// Per-attempt timeout set on the job, if any.
    pub timeout: Option<Duration>,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
    /// The lease's fencing token: finishing with a stale token is refused.
    pub token: u64,
    /// The metadata the producer attached.
    pub headers: Headers,
}

/// What [`JobQueue::fetch`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// The leased jobs, in the order to start them.
    pub jobs: Vec<LeasedJob>,
    /// The earliest time at which a scheduled or retrying job, or an expired
    /// lease, will need the fetcher, when there is one: the fetcher's timer.
    pub next_due: Option<SystemTime>,
}

/// How an attempt ended, as a worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job succeeded; `result` is its `Ok` value as JSON, if any.
    Succeeded {
        /// Serialized result.
        result: Option<Vec<u8>>,
    },
    /// The attempt failed; run again at `at`.
    Retry {
        /// Why.
        error: String,
        /// When.
        at: SystemTime,
    },
    /// The attempt failed for good: dead-letter set.
    Dead {
        /// Why.
        error: String,
    },
    /// Handed back without counting the attempt (shutdown, or a name this
    /// pool does not know): pending again at `at` (or at once).
    Release {
        /// Not before.
        at: Option<SystemTime>,
        /// Why, recorded but not counted as a failure.
        reason: String,
    },
}

/// One finished attempt, for [`JobQueue::finish`].
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The job.
    pub id: JobId,
    /// Its lease token.
    pub token: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// What the backend did with one [`Finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishResult {
    /// Recorded, with the job's status afterwards.
    Applied(JobStatus),
    /// Refused: the lease had expired and the job was taken again (or is
    /// gone); the newer attempt wins.
    Stale,
}

/// The state of a lease after [`JobQueue::extend_leases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Still ours, extended.
    Held,
    /// Ours, but someone asked to cancel the job: signal it.
    CancelRequested,
    /// No longer ours: the job's result will be refused.
    Lost,
}

/// What [`JobQueue::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It was pending or scheduled: removed and marked cancelled.
    Cancelled,
    /// It is running: its worker is told through `JobContext::cancelled()`
    /// and it will end cancelled.
    Requested,
    /// It had already finished; nothing changed.
    AlreadyFinished(JobStatus),
}

/// A running pool's presence record, refreshed by its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique per pool instance.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Its concurrency.
    pub workers: usize,
    /// Jobs running at the last heartbeat.
    pub running: usize,
    /// Ids of the jobs running at the last heartbeat.
    pub running_jobs: Vec<JobId>,
    /// When it started.
    pub started_at: SystemTime,
    /// Its last heartbeat.
    pub last_seen: SystemTime,
}

/// Attempts that ended in one minute on one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// The minute's start, in seconds since the Unix epoch.
    pub minute: u64,
    /// Attempts that succeeded.
    pub processed: u64,
    /// Attempts that failed (retried, dead, or lost with their worker).
    pub failed: u64,
}

/// What a scheduler does with ticks it missed while no process ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Enqueue every missed tick (bounded to 1,000 per pass).
    All,
    /// Skip missed ticks but run once for them (the default).
    #[default]
    One,
    /// Skip missed ticks; run only ticks that are due now.
    None,
}

/// A recurring job as stored in the backend, so every process sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDef {
    /// Unique name of the schedule.
    pub name: String,
    /// Cron expression, 5 fields (minutes) or 6 (seconds first).
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// The job name to enqueue.
    pub job_name: String,
    /// The queue to enqueue on.
    pub queue: String,
    /// The priority of each enqueued job.
    pub priority: Priority,
    /// The payload of each enqueued job.
    pub payload: Vec<u8>,
    /// Retries of each job (`None`: the job's attribute or pool default).
    pub max_retries: Option<u32>,
    /// Per-attempt timeout of each job.
    pub timeout: Option<Duration>,
    /// Missed ticks policy.
    pub catch_up: CatchUp,
    /// When the schedule was first stored: ticks before it never fire.
    pub created_at: SystemTime,
}

/// A stored schedule with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Its definition.
    pub def: ScheduleDef,
    /// Whether ticks are held.
    pub paused: bool,
    /// The last tick handled (fired or skipped), as its scheduled instant.
    pub last_tick: Option<SystemTime>,
    /// When a job was last enqueued for it (wall clock).
    pub last_run: Option<SystemTime>,
    /// The last job enqueued for it.
    pub last_job: Option<JobId>,
}

/// Waits for new work on some queues without polling. Obtained from
/// [`JobQueue::waiter`]; one per fetch loop.
pub trait Waiter: Send {
    /// Called right before a fetch: work that arrives after this call wakes
    /// the next [`Waiter::wait`] at once (no lost wake-up).
    fn arm(&mut self);
    /// Returns when work may have arrived since [`Waiter::arm`], or after
    /// `timeout`.
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, Result<(), Error>>;
}

/// The storage port, implemented by [`crate::MemoryQueue`] and
/// `jobs_redis::RedisQueue`.
///
/// Every method is async through a boxed future so that `dyn JobQueue` works.
/// Methods that change more than one record are atomic in every backend.
pub trait JobQueue: Send + Sync + 'static {
    /// Stores a batch of jobs in one round trip, all or nothing per job:
    /// returns their ids in order (for a `unique_for` job that duplicates a
    /// live one, the existing id). Fails whole when a queue is full or refuses
    /// a priority, storing nothing.
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>>;

    /// Promotes due scheduled jobs (bounded), reclaims expired leases
    /// (counting the attempt, dead when out of attempts) and leases up to
    /// `req.max` jobs, strict priority per queue, skipping paused queues.
    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>>;

    /// Records finished attempts. A stale token is refused per item.
    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>>;

    /// Extends leases of running jobs by `lease` from now, in one call.
    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>>;

    /// A waiter that wakes when jobs arrive on any of `queues`.
    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error>;

    /// Everything known about a job, or `None` when unknown or purged.
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>>;

    /// Cancels a job (see [`CancelResult`]).
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>>;

    /// Counts per queue and priority.
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>>;

    /// Dead jobs of a queue, newest first.
    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>>;

    /// Puts a dead job back to pending with its attempts reset.
    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>>;

    /// Deletes every dead job of a queue; returns how many.
    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>>;

    /// Holds workers off a queue (enqueues still accepted).
    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Lets workers take a paused queue's jobs again.
    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Sets a queue's limits (`max_jobs`, `priority_levels`).
    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>>;

    /// Records that a pool is alive until `ttl` from now (its heartbeat).
    fn report_worker(&self, info: WorkerInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let _ = (info, ttl);
        Box::pin(async { Ok(()) })
    }

    /// Removes a pool's presence record (clean shutdown).
    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let _ = id;
        Box::pin(async { Ok(()) })
    }

    /// The pools whose presence has not expired.
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>, Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Jobs of a queue in one state, a page at a time: pending in the order
    /// workers take them, scheduled and retrying by due time, running by
    /// lease expiry, dead, succeeded and cancelled newest first.
    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        let _ = (queue, status, offset, limit);
        Box::pin(async { Err(Error::Unsupported("listing jobs")) })
    }

    /// Processed and failed attempts per minute over the last `minutes`
    /// minutes (oldest first, the current minute last; minutes without
    /// activity are zero).
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        let _ = (queue, minutes);
        Box::pin(async { Err(Error::Unsupported("throughput history")) })
    }

    /// Stores or replaces a schedule's definition, keeping its state (last
    /// tick, pause) when one of that name exists.
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        let _ = def;
        Box::pin(async { Err(Error::Unsupported("schedules")) })
    }

    /// Every stored schedule with its state.
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        Box::pin(async { Err(Error::Unsupported("schedules")) })
    }

    /// Deletes a schedule; `false` when there was none.
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = name;
        Box::pin(async { Err(Error::Unsupported("schedules")) })
    }

    /// Pauses or resumes a schedule ([`Error::ScheduleNotFound`] when unknown).
    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (name, paused);
        Box::pin(async { Err(Error::Unsupported("schedules")) })
    }

    /// Handles one tick atomically, exactly once across all processes: when
    /// `tick` is later than the schedule's last handled tick, records it and
    /// enqueues `job` (if given; `None` skips the tick) and returns
    /// `Ok(Some(id))` or `Ok(None)` for a skip; when another process handled
    /// this tick already, returns `Ok(None)` and writes nothing.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        let _ = (name, tick, job);
        Box::pin(async { Err(Error::Unsupported("schedules")) })
    }
}

/// Any backend behind one type, chosen at run time.
///
/// ```
/// use std::sync::Arc;
/// use jobs_core::{MemoryQueue, SharedQueue};
/// let q: SharedQueue = Arc::new(MemoryQueue::new());
/// # let _ = q;
/// ```
pub type SharedQueue = Arc<dyn JobQueue>;

/// Wrappers of a queue ([`ForwardQueue`]) implement `JobQueue` with this
/// macro: it forwards every call of the port except `enqueue_many` and
/// `fire_schedule`, which the wrapper writes itself (they are where wrappers
/// differ). One list of the port's calls, so a new call cannot be forgotten
/// by one wrapper and silently fall back to a default body in it.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_job_queue {
    () => {
        fn fetch<'a>(
            &'a self,
            req: &'a $crate::FetchRequest,
        ) -> $crate::BoxFuture<'a, Result<$crate::Fetched, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).fetch(req)
        }
        fn finish(
            &self,
            batch: Vec<$crate::Finish>,
        ) -> $crate::BoxFuture<'_, Result<Vec<$crate::FinishResult>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).finish(batch)
        }
        fn extend_leases<'a>(
            &'a self,
            leases: &'a [($crate::JobId, u64)],
            lease: ::std::time::Duration,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::LeaseState>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).extend_leases(leases, lease)
        }
        fn waiter(&self, queues: &[String]) -> Result<Box<dyn $crate::Waiter>, $crate::Error> {
            $crate::ForwardQueue::forward_target(self).waiter(queues)
        }
        fn job<'a>(
            &'a self,
            id: &'a $crate::JobId,
        ) -> $crate::BoxFuture<'a, Result<Option<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).job(id)
        }
        fn cancel<'a>(
            &'a self,
            id: &'a $crate::JobId,
        ) -> $crate::BoxFuture<'a, Result<$crate::CancelResult, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).cancel(id)
        }
        fn stats(&self) -> $crate::BoxFuture<'_, Result<$crate::QueueStats, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).stats()
        }
        fn dead_jobs<'a>(
            &'a self,
            queue: &'a str,
            limit: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).dead_jobs(queue, limit)
        }
        fn retry_dead<'a>(&'a self, id: &'a $crate::JobId) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).retry_dead(id)
        }
        fn purge_dead<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<u64, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).purge_dead(queue)
        }
        fn pause<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).pause(queue)
        }
        fn resume<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).resume(queue)
        }
        fn set_policy<'a>(
            &'a self,
            queue: &'a str,
            policy: $crate::QueuePolicy,
        ) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).set_policy(queue, policy)
        }
        fn report_worker(
            &self,
            info: $crate::WorkerInfo,
            ttl: ::std::time::Duration,
        ) -> $crate::BoxFuture<'_, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).report_worker(info, ttl)
        }
        fn remove_worker<'a>(&'a self, id: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).remove_worker(id)
        }
        fn workers(&self) -> $crate::BoxFuture<'_, Result<Vec<$crate::WorkerInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).workers()
        }
        fn list_jobs<'a>(
            &'a self,
            queue: &'a str,
            status: $crate::JobStatus,
            offset: usize,
            limit: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).list_jobs(queue, status, offset, limit)
        }
        fn throughput<'a>(
            &'a self,
            queue: &'a str,
            minutes: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::MinuteCounts>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).throughput(queue, minutes)
        }
        fn put_schedule(&self, def: $crate::ScheduleDef) -> $crate::BoxFuture<'_, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).put_schedule(def)
        }
        fn schedules(&self) -> $crate::BoxFuture<'_, Result<Vec<$crate::ScheduleState>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).schedules()
        }
        fn remove_schedule<'a>(&'a self, name: &'a str) -> $crate::BoxFuture<'a, Result<bool, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).remove_schedule(name)
        }
        fn set_schedule_paused<'a>(
            &'a self,
            name: &'a str,
            paused: bool,
        ) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).set_schedule_paused(name, paused)
        }
    };
}

/// A queue that wraps another and forwards most calls to it (see the
/// `jobs_core::__forward_job_queue!` macro).
#[doc(hidden)]
pub trait ForwardQueue {
    /// The wrapped queue's type.
    type Target: JobQueue + ?Sized;
    /// The wrapped queue.
    fn forward_target(&self) -> &Self::Target;
}

macro_rules! forward_pointer {
    ($ptr:ident) => {
        impl<Q: JobQueue + ?Sized> ForwardQueue for $ptr<Q> {
            type Target = Q;
            fn forward_target(&self) -> &Q {
                self
            }
        }

        impl<Q: JobQueue + ?Sized> JobQueue for $ptr<Q> {
            fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
                (**self).enqueue_many(jobs)
            }
            fn fire_schedule<'a>(
                &'a self,
                name: &'a str,
                tick: SystemTime,
                job: Option<NewJob>,
            ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
                (**self).fire_schedule(name, tick, job)
            }
            crate::__forward_job_queue!();
        }
    };
}

forward_pointer!(Arc);
forward_pointer!(Box);
