#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod context;
mod error;
mod job;
mod memory;
mod queue;
mod registry;
pub mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(feature = "testing")]
pub mod testing;

pub use context::JobContext;
pub use error::{Error, FailureKind, FieldError, JobError, ValidationError};
pub use job::{validate_queue_name, Job, JobExt, JobId, JobOptions, Priority};
pub use memory::MemoryQueue;
pub use queue::{
    AttemptInfo, BoxFuture, CancelResult, Counts, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue,
    JobStatus, LeaseState, LeasedJob, NewJob, Outcome, QueueCounts, QueuePolicy, QueueStats, Retention, SharedQueue,
    Waiter,
};
pub use registry::{descriptors, registry, CronSpec, JobDescriptor, RunError, RunFn};
pub use worker::{Backoff, UnknownJobs, WorkerHandle, WorkerPool, WorkerPoolBuilder};

/// The `#[job]` attribute: turns an `async fn` into a typed background job.
///
/// See the crate documentation for its keys and the `#[validate(..)]` rules.
pub use jobs_macros::job;

/// Everything a job definition and its producer need.
pub mod prelude {
    pub use crate::{
        job, Error, Job, JobContext, JobError, JobExt, JobId, JobOptions, JobQueue, MemoryQueue, Priority,
        WorkerPool,
    };
}
