//! The storage port: [`JobQueue`], what it stores and what it reports.
//!
//! The port is shaped for a server backend at full speed: every hot-path call
//! works on a batch (fetch many leased jobs, finish many, extend many leases),
//! so a Redis implementation makes one script call per batch. It is object
//! safe: `Arc<dyn JobQueue>` ([`SharedQueue`]) holds any backend chosen at run
//! time, and implements `JobQueue` itself.

mod forward;
mod model;
mod records;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use forward::ForwardQueue;
pub use model::*;
pub use records::*;

use crate::error::Error;
use crate::job::JobId;

/// A boxed future, as the port's methods return (object safety).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

    /// Extends leases of running jobs by `lease` from the backend's now, in
    /// one call.
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

    /// The backend's clock: the time its leases, due times, retention and
    /// schedules are measured on (Redis `TIME`; `MemoryQueue`'s monotonic
    /// clock). The scheduler decides which ticks are due by it, never by the
    /// local wall clock. The default is the local clock, for backends that
    /// have no clock of their own.
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        Box::pin(async { Ok(SystemTime::now()) })
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
