//! [`JobContext`]: what a running job knows about itself.

use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::job::JobId;

/// Handed to a job function that declares a parameter of this type (at any
/// position). Cheap to clone.
///
/// ```
/// use jobs_core::prelude::*;
/// #[job(crate = jobs_core)]
/// async fn long_export(ctx: JobContext, rows: u64) -> Result<(), JobError> {
///     for _ in 0..rows {
///         tokio::select! {
///             _ = ctx.cancelled() => return Err(JobError::permanent("cancelled")),
///             _ = tokio::task::yield_now() => {}
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct JobContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: JobId,
    name: String,
    attempt: u32,
    max_retries: u32,
    enqueued_at: SystemTime,
    cancel: CancellationToken,
}

impl JobContext {
    /// Builds a context; the worker pool does this for each attempt. Tests of
    /// job functions can use it to call a job function directly.
    pub fn new(
        id: JobId,
        name: impl Into<String>,
        attempt: u32,
        max_retries: u32,
        enqueued_at: SystemTime,
        cancel: CancellationToken,
    ) -> Self {
        JobContext { inner: Arc::new(Inner { id, name: name.into(), attempt, max_retries, enqueued_at, cancel }) }
    }

    /// A context for calling a job function outside a pool (in a test):
    /// attempt 1 of 4, on queue `default`, never cancelled.
    pub fn for_test(name: &str) -> Self {
        Self::new(JobId::new("default"), name, 1, 3, SystemTime::now(), CancellationToken::new())
    }

    /// This job's id.
    pub fn job_id(&self) -> &JobId {
        &self.inner.id
    }

    /// This job's name.
    pub fn job_name(&self) -> &str {
        &self.inner.name
    }

    /// The queue it was taken from.
    pub fn queue(&self) -> &str {
        self.inner.id.queue()
    }

    /// This attempt, 1-based.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    /// Whether this is the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.inner.attempt > self.inner.max_retries
    }

    /// When the job was enqueued.
    pub fn enqueued_at(&self) -> SystemTime {
        self.inner.enqueued_at
    }

    /// Resolves when the job is cancelled, or when the pool shuts down past
    /// its grace period: finish quickly and return.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// Whether [`JobContext::cancelled`] has resolved.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }
}
