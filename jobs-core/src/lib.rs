#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod archive;
pub mod backend;
#[cfg(feature = "config")]
pub mod config;
mod context;
mod data;
mod error;
mod events;
mod flow;
mod follow;
pub mod hooks;
mod job;
mod memory;
#[cfg(feature = "metrics")]
pub mod metrics;
mod parse;
mod payload;
mod progress;
mod queue;
mod redact;
mod registry;
mod router;
#[cfg(all(unix, feature = "sandbox"))]
pub mod sandbox;
#[cfg(feature = "cron")]
mod schedule;
#[cfg(feature = "signal")]
mod signal;
mod trace;
mod vocab;
mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use context::{Extensions, JobContext};
pub use data::Data;
pub use error::{Error, FailureKind, FieldError, FlowError, JobError, ScheduleSettingError, ValidationError};
pub use events::{EventCursor, EventFilter, EventKind, EventPage, JobEvent, Listening};
pub use flow::{Batch, DependencyError, FlowRun, Step, Workflow};
pub use follow::EventStream;
pub use job::{GroupKey, Job, JobExt, JobHandle, JobOptions, ResultSource, WaitError};
pub use memory::MemoryQueue;
#[cfg(feature = "metrics")]
pub use metrics::JobMetrics;
pub use parse::{validate_group_key, validate_queue_name};
pub use progress::ProgressError;
pub use queue::{
    cancel_each, cancel_released, validate_flow_id, CancelledMembers, FlowInfo, FlowKind, FlowMember, FlowStore,
    FlowSummary, MemberEnd, MemberInfo, MemberStatus, NewFlow, OnFailure, Release, DEPS_HEADER, FLOWS_KEPT,
    FLOW_HEADER, MAX_FLOW_ID_LEN, MAX_MEMBER_NAME_LEN,
};
pub use queue::{
    ArchiveBacklog, ArchiveBatch, ArchivedJob, AttemptInfo, Backend, Breaker, BreakerAction, BreakerInfo, BreakerState,
    CallerId, CancelResult, CatchUp, Counts, DeadJob, GroupBreakerInfo, GroupInfo, IfExists, JobGroup, JobInfo, JobKey,
    JobQueue, KeyMode, MinuteCounts, NewJob, Overlap, PoolInfo, PoolPresence, Progress, QueueAdmin, QueueCounts,
    QueueEvents, QueueHistory, QueueInspect, QueuePolicy, QueueRetention, QueueStats, Rate, Retention, ScheduleDef,
    ScheduleState, ScheduleStore, SharedQueue, When, ARCHIVE_BACKLOG_MAX, GROUP_BREAKERS_LISTED, MAX_CALLER_ID_LEN,
    MAX_GROUP_KEY_LEN, MAX_RATE_LIMIT,
};
pub use router::{QueueRouter, QueueRouterBuilder, RouterError};
#[cfg(feature = "cron")]
pub use schedule::{CronSchedule, ScheduleInfo, ScheduleOptions, Scheduler, SchedulerHandle, MIN_EVERY};
#[cfg(feature = "signal")]
pub use signal::shutdown_signal;
#[cfg(feature = "otel")]
pub use trace::OtelPropagator;
pub use trace::{set_trace_propagator, SpanLink, TracePropagator};
pub use vocab::{FlowStatus, Headers, JobId, JobStatus, Priority};
pub use worker::{Backoff, UnknownJobs, WorkerHandle, WorkerPool, WorkerPoolBuilder, STOP_AFTER_SIGNAL};

/// The `#[job]` attribute: turns an `async fn` into a typed background job.
///
/// See the crate documentation for its keys and the `#[validate(..)]` rules.
pub use jobs_macros::job;

/// Everything a job definition and its producer need.
pub mod prelude {
    #[cfg(feature = "metrics")]
    pub use crate::JobMetrics;
    #[cfg(feature = "cron")]
    pub use crate::Scheduler;
    pub use crate::{
        job, Backend, Batch, Data, Error, FlowStatus, Job, JobContext, JobError, JobExt, JobHandle, JobId, JobOptions,
        JobQueue, KeyMode, MemoryQueue, OnFailure, PoolPresence, Priority, QueueAdmin, QueueEvents, QueueHistory,
        QueueInspect, ScheduleStore, Step, WorkerPool, Workflow,
    };
}
