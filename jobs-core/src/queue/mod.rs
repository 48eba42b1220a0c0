//! The storage port, split by capability.
//!
//! | trait | calls | needed by |
//! | --- | --- | --- |
//! | [`JobQueue`] | `enqueue_many`, `fetch`, `finish`, `extend_leases`, `report_progress`, `waiter`, `now`, `payload_format` | producers (`JobExt::enqueue`), [`WorkerPool`](crate::WorkerPool) |
//! | [`ScheduleStore`] | `put_schedule`, `schedules`, `remove_schedule`, `set_schedule_paused`, `fire_schedule` | [`Scheduler`](crate::Scheduler), a pool that runs the scheduler |
//! | [`PoolPresence`] | `report_pool`, `remove_pool`, `pools` | a pool's heartbeat, health checks, the dashboard |
//! | [`QueueInspect`] | `job`, `stats`, `dead_jobs`, `list_jobs` | producers reading a job, metrics, CLI, dashboard |
//! | [`QueueAdmin`] | `cancel`, `retry_dead`, `purge_dead`, `pause`, `resume`, `set_policy` | producers cancelling, configuration, CLI, dashboard |
//! | [`QueueHistory`] | `throughput` | the dashboard's charts |
//! | [`QueueEvents`] | `listen`, `read_events`, `event_waiter`, `event_hub` | event streams, waits for results ([`JobHandle`](crate::JobHandle)), live dashboard pages |
//!
//! [`Backend`] is all of them; [`SharedQueue`] (`Arc<dyn Backend>`) holds any
//! full backend chosen at run time and implements every trait itself. A
//! backend that lacks a capability does not implement its trait, so code that
//! needs it fails to compile instead of failing at run time. The worker pool
//! needs only the hot path; it asks the backend for the two capabilities it
//! uses when present ([`JobQueue::schedule_store`], [`JobQueue::presence`]).
//!
//! The hot path is shaped for a server backend at full speed: every call
//! works on a batch (fetch many leased jobs, finish many, extend many leases),
//! so a Redis implementation makes one script call per batch. Every method
//! returns a boxed future so that the traits are object safe.

mod archive;
mod breaker;
mod flows;
mod forward;
mod lease;
mod model;
mod pauses;
mod progress;
mod rate;
mod records;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use archive::{ArchiveBacklog, ArchiveBatch, ArchivedJob, ARCHIVE_BACKLOG_MAX};
pub use breaker::{Breaker, BreakerAction, BreakerInfo, BreakerState, GroupBreakerInfo, GROUP_BREAKERS_LISTED};
pub use flows::{
    cancel_each, cancel_released, validate_flow_id, CancelledMembers, FlowInfo, FlowKind, FlowMember, FlowStore,
    FlowSummary, MemberEnd, MemberInfo, MemberStatus, NewFlow, OnFailure, Release, DEPS_HEADER, FLOWS_KEPT,
    FLOW_HEADER, MAX_FLOW_ID_LEN, MAX_MEMBER_NAME_LEN, ON_COMPLETE, ON_SUCCESS,
};
pub(crate) use flows::{mark_member, validate_member_name, FlowPlace};
pub(crate) use forward::forward_fns;
pub use lease::*;
pub use model::*;
pub use pauses::{FailurePauses, FIRST_PAUSE, LONGEST_PAUSE};
pub use progress::*;
pub use rate::{Rate, MAX_RATE_LIMIT};
pub use records::*;

use crate::error::Error;
use crate::events::{EventCursor, EventHub, EventPage, Listening};
use crate::payload::PayloadFormat;
use crate::vocab::{JobId, JobStatus};

/// A boxed future, as the port's methods return (object safety).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Waits for new work on some queues without polling. Obtained from
/// [`JobQueue::waiter`]; one per fetch loop.
pub trait Waiter: Send {
    /// Called right before a fetch: work that arrives after this call wakes
    /// the next [`Waiter::wait`] at once (no lost wake-up).
    fn arm(&mut self);
    /// Returns when work may have arrived since [`Waiter::arm`], or after
    /// `timeout`.
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, Result<(), Error>>;

    /// Waits as [`wait`](Self::wait) does, for a caller that holds
    /// `req.max` free slots until this returns: a backend may fetch `req`
    /// itself and, finding nothing, leave it listed, so that a job enqueued
    /// while the caller waits is leased to it in the enqueue's own step
    /// (one hop, no wake-up then fetch). `Ok(Some(fetched))`: what it
    /// fetched, to be started as a [`JobQueue::fetch`]'s answer (its jobs
    /// may be none: look again as after `wait`); `Ok(None)`: it only
    /// waited. The default only waits.
    ///
    /// A caller that drops the future before it returns calls
    /// [`settle`](Self::settle) before it stops.
    fn wait_fetch<'a>(
        &'a mut self,
        req: &'a FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Fetched>, Error>> {
        let _ = req;
        Box::pin(async move { self.wait(timeout).await.map(|()| None) })
    }

    /// Ends a [`wait_fetch`](Self::wait_fetch) dropped before it returned:
    /// nothing more is leased to this waiter, and what was leased to it
    /// meanwhile is returned, to be run (or it would wait out its lease).
    /// The default has nothing to end.
    fn settle(&mut self) -> BoxFuture<'_, Result<Fetched, Error>> {
        Box::pin(async { Ok(Fetched::default()) })
    }
}

/// The hot path: what producers and a [`WorkerPool`](crate::WorkerPool)
/// need. Implemented by [`crate::MemoryQueue`] and `jobs_redis::RedisQueue`.
///
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

    /// Stores a running job's progress on it and records a `progress` event,
    /// when `update.token` is still its lease's token
    /// ([`ProgressWrite::Stale`] otherwise: nothing written). A worker's
    /// [`JobContext::progress`](crate::JobContext::progress) calls it at most
    /// once per the pool's progress interval per job, so it is not batched.
    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>>;

    /// A waiter that wakes when jobs arrive on any of `queues`.
    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error>;

    /// The backend's clock: the time its leases, due times, retention and
    /// schedules are measured on (Redis `TIME`; `MemoryQueue`'s monotonic
    /// clock). The scheduler decides which ticks are due by it, never by the
    /// local wall clock.
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>>;

    /// The format a typed enqueue encodes payloads in for this backend. A
    /// backend stores whatever format a job comes with and hands it back
    /// with it, so this is a preference (MessagePack is smaller), not a
    /// constraint: every backend also takes JSON.
    fn payload_format(&self) -> PayloadFormat;

    /// This backend's schedule store, when it has one: a pool runs the
    /// scheduler over it. `None` for a backend without schedules (a pool then
    /// refuses to start when a linked job declares a cron schedule).
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>>;

    /// This backend's pool presence records, when it keeps them: a pool
    /// reports its heartbeat there. `None`: pools run without reporting.
    fn presence(&self) -> Option<Arc<dyn PoolPresence>>;

    /// This backend's archive backlogs, when it keeps them: a pool given an
    /// archive sink runs its archiver over them. `None` (the default): the
    /// backend archives nothing, and its retention deletes as configured.
    fn archive(&self) -> Option<Arc<dyn ArchiveBacklog>> {
        None
    }

    /// This backend's store of workflows and batches, when it has one: a
    /// pool runs the relay that releases their steps over it. `None` (the
    /// default): [`Workflow`](crate::Workflow) and [`Batch`](crate::Batch)
    /// refuse with [`FlowError::Unsupported`](crate::FlowError::Unsupported).
    fn flow_store(&self) -> Option<Arc<dyn FlowStore>> {
        None
    }
}

/// Recurring work stored in the backend, so every process sees it.
pub trait ScheduleStore: JobQueue {
    /// Stores or replaces a schedule's definition, keeping its state (last
    /// tick, pause) when one of that name exists.
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>>;

    /// Every stored schedule with its state.
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>>;

    /// Deletes a schedule; `false` when there was none.
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Pauses or resumes a schedule ([`Error::ScheduleNotFound`] when unknown).
    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>>;

    /// Handles one tick atomically, exactly once across all processes: when
    /// `tick` is later than the schedule's last handled tick, records it and
    /// enqueues `job` (if given; `None` skips the tick) and returns
    /// `Ok(Some(id))` or `Ok(None)` for a skip; when another process handled
    /// this tick already, returns `Ok(None)` and writes nothing.
    ///
    /// In the same step it applies the stored definition's
    /// [`Overlap`](crate::Overlap) policy while the schedule's last job has
    /// not finished: `skip` records the tick as skipped
    /// ([`ScheduleState::skipped`]), `queue` records it as held
    /// ([`ScheduleState::held_tick`]; when one is held already, as
    /// skipped), and neither enqueues. Called with the held tick, it
    /// enqueues `job` once the last job has finished and clears the hold,
    /// once across processes; before that it writes nothing.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>>;
}

/// Which pools are alive: each pool's heartbeat record.
pub trait PoolPresence: Send + Sync + 'static {
    /// Records that a pool is alive until `ttl` from now (its heartbeat).
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>>;

    /// Removes a pool's presence record (clean shutdown).
    fn remove_pool<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// The pools whose presence has not expired.
    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, Error>>;
}

/// Reading jobs and counts.
pub trait QueueInspect: Send + Sync + 'static {
    /// Everything known about a job, or `None` when unknown or purged.
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>>;

    /// Counts per queue and priority.
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>>;

    /// Dead jobs of a queue, newest first.
    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>>;

    /// Jobs of a queue in one state, a page at a time: pending in the order
    /// workers take them, scheduled and retrying by due time, running by
    /// lease expiry, dead, succeeded and cancelled newest first.
    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>>;

    /// The queue's busiest groups: at most `limit`, most pending jobs first
    /// (a group with nothing pending is left out; among groups with as many,
    /// the greater key first). Redis reads the top of a sorted set, never
    /// every group.
    fn groups<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<GroupInfo>, Error>>;
}

/// Changing jobs and queues from outside a worker.
pub trait QueueAdmin: Send + Sync + 'static {
    /// Cancels a job (see [`CancelResult`]).
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>>;

    /// Puts a dead job back to pending with its attempts reset.
    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>>;

    /// Deletes every dead job of a queue; returns how many.
    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>>;

    /// Holds workers off a queue (enqueues still accepted).
    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Lets workers take a paused queue's jobs again.
    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Sets a queue's limits (`max_jobs`, `priority_levels`,
    /// `max_running`), all of them: a field left `None` or empty removes
    /// that limit. Applied from the next enqueue and fetch on.
    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>>;

    /// A queue's limits as set (the default policy, no limits, for a queue
    /// never given one).
    fn policy<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueuePolicy, Error>>;

    /// A queue's circuit breaker: its state, its recent failures and how
    /// often it opened (closed, with nothing counted, for a queue without
    /// one).
    fn breaker<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<BreakerInfo, Error>>;

    /// Opens or closes a queue's breaker by hand, for every pool.
    fn set_breaker<'a>(&'a self, queue: &'a str, action: BreakerAction) -> BoxFuture<'a, Result<(), Error>>;

    /// Opens or closes the breaker of one group of a queue by hand, for
    /// every pool (`QueuePolicy::group_breaker`; opening works without
    /// one configured too). Closing lets the group's jobs start at once.
    fn set_group_breaker<'a>(
        &'a self,
        queue: &'a str,
        group: &'a str,
        action: BreakerAction,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// Attempts per minute, for charts.
pub trait QueueHistory: Send + Sync + 'static {
    /// Processed and failed attempts per minute over the last `minutes`
    /// minutes (oldest first, the current minute last; minutes without
    /// activity are zero).
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>>;
}

/// What happens to jobs, recorded while someone listens.
///
/// A backend records a queue's events only while recording is kept on by
/// [`QueueEvents::listen`] (each call keeps it on for `ttl`; readers call it
/// again well before that lapses), so a queue no one follows pays nothing
/// for them. It keeps a bounded history per queue, oldest dropped first.
/// Events of one job come in the order they happened; every state change
/// that a job's lifecycle names (see [`EventKind`](crate::EventKind)) is
/// recorded in the same atomic step as the change itself.
pub trait QueueEvents: Send + Sync + 'static {
    /// Keeps `queue`'s events recorded for `ttl` from now; returns the
    /// newest event held and whether recording was on already.
    fn listen<'a>(&'a self, queue: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Listening, Error>>;

    /// Up to `max` events of `queue` after `after`, oldest first, without
    /// waiting; [`EventPage::missed`] when some after `after` were dropped
    /// from the history.
    fn read_events<'a>(
        &'a self,
        queue: &'a str,
        after: &'a EventCursor,
        max: usize,
    ) -> BoxFuture<'a, Result<EventPage, Error>>;

    /// A waiter that wakes when events of `queue` are recorded: arm it,
    /// read, and wait when the page was empty (no lost wake-up).
    fn event_waiter(&self, queue: &str) -> Result<Box<dyn Waiter>, Error>;

    /// The backend's hub for result waits: one follower per queue shared by
    /// every [`JobHandle`](crate::JobHandle) of this backend, however many
    /// wait.
    fn event_hub(&self) -> &EventHub;
}

/// A backend with every capability: what the CLI, the dashboard and a
/// run-time-chosen [`SharedQueue`] need. Implemented for every type that
/// implements all the port's traits.
pub trait Backend:
    JobQueue + ScheduleStore + PoolPresence + QueueInspect + QueueAdmin + QueueHistory + QueueEvents
{
}

impl<T> Backend for T where
    T: JobQueue + ScheduleStore + PoolPresence + QueueInspect + QueueAdmin + QueueHistory + QueueEvents + ?Sized
{
}

/// Any full backend behind one type, chosen at run time.
///
/// ```
/// use std::sync::Arc;
/// use jobs_core::{MemoryQueue, SharedQueue};
/// let q: SharedQueue = Arc::new(MemoryQueue::new());
/// # let _ = q;
/// ```
pub type SharedQueue = Arc<dyn Backend>;
