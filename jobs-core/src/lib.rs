#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "config")]
pub mod config;
mod context;
mod error;
mod job;
mod memory;
#[cfg(feature = "metrics")]
pub mod metrics;
mod queue;
mod redact;
mod registry;
#[cfg(feature = "cron")]
mod schedule;
mod trace;
pub mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "config")]
pub use config::{Config, ConfigError};
pub use context::{Extensions, JobContext};
pub use error::{bounded_message, Error, FailureKind, FieldError, JobError, ValidationError, MAX_ERROR_LEN};
pub use job::{validate_queue_name, Job, JobExt, JobId, JobOptions, Priority};
pub use memory::MemoryQueue;
#[cfg(feature = "metrics")]
pub use metrics::{JobMetrics, Metered, MetricsError};
pub use queue::{
    check_payload_sizes, check_times, AttemptInfo, BoxFuture, CancelResult, CatchUp, Counts, FetchRequest, Fetched,
    Finish, FinishResult, ForwardQueue, Headers, JobInfo, JobQueue, JobStatus, LeaseState, LeasedJob, MinuteCounts,
    NewJob, Outcome, QueueCounts, QueueFailure, QueuePolicy, QueueStats, Retention, ScheduleDef, ScheduleState,
    SharedQueue, Waiter, When, WorkerInfo, ATTEMPT_LOG_MAX, DEFAULT_MAX_CRASHES, DEFAULT_MAX_PAYLOAD, MAX_JOB_DURATION,
    MAX_SCHEDULED_AT_SECS,
};
pub use redact::{REDACTED, REDACT_HEADER};
pub use registry::{descriptors, registry, CronSpec, JobDescriptor, RunError, RunFn};
#[cfg(feature = "cron")]
pub use schedule::{CronSchedule, ScheduleInfo, ScheduleOptions, Scheduler, SchedulerHandle};
pub use trace::{set_trace_propagator, SpanLink, TracePropagator, SPAN_HEADER};
pub use worker::{Backoff, UnknownJobs, WorkerHandle, WorkerPool, WorkerPoolBuilder};

/// The `#[job]` attribute: turns an `async fn` into a typed background job.
///
/// See the crate documentation for its keys and the `#[validate(..)]` rules.
pub use jobs_macros::job;

/// Everything a job definition and its producer need.
pub mod prelude {
    #[cfg(feature = "metrics")]
    pub use crate::JobMetrics;
    pub use crate::{
        job, Error, Job, JobContext, JobError, JobExt, JobId, JobOptions, JobQueue, MemoryQueue, Priority, WorkerPool,
    };
}
