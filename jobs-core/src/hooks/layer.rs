//! [`JobLayer`]: code that wraps every attempt a pool runs.

use std::sync::Arc;

use crate::context::{Extensions, JobContext};
use crate::queue::BoxFuture;
use crate::vocab::{Headers, Priority};

/// How an attempt ended, as a [`JobLayer`] sees it and may rewrite it.
///
/// The pool decides what a failure becomes after the last layer returned:
/// `Retry` turns into `Dead` when the job has no attempts left, and
/// `Succeeded` with a result past [`WorkerPoolBuilder::max_result`] into
/// `Dead`. The inner outcome a layer receives has already been decided that
/// way, so a `Retry` there will be retried unless a layer says otherwise.
///
/// [`WorkerPoolBuilder::max_result`]: crate::WorkerPoolBuilder::max_result
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// The job succeeded; `result` is its `Ok` value, serialized in the
    /// job's payload format, when it has one.
    Succeeded {
        /// The serialized result.
        result: Option<Vec<u8>>,
    },
    /// The attempt failed and the job runs again after its backoff.
    Retry {
        /// Why it failed.
        error: String,
    },
    /// The attempt failed for good: the job goes to the dead-letter set.
    Dead {
        /// Why it failed.
        error: String,
    },
    /// The job snoozed ([`JobError::retry_in`](crate::JobError::retry_in)):
    /// not a failure and not an attempt; it runs again `after` from now,
    /// unless it snoozed more often than the pool allows
    /// ([`WorkerPoolBuilder::max_snoozes`](crate::WorkerPoolBuilder::max_snoozes)).
    Snooze {
        /// How long it waits.
        after: std::time::Duration,
        /// Why, as the job said.
        reason: String,
        /// Its group waits as long ([`JobError::rate_limited`](crate::JobError::rate_limited)).
        holds_group: bool,
    },
}

impl JobOutcome {
    /// The failure's error; `None` for a success.
    pub fn error(&self) -> Option<&str> {
        match self {
            JobOutcome::Succeeded { .. } | JobOutcome::Snooze { .. } => None,
            JobOutcome::Retry { error } | JobOutcome::Dead { error } => Some(error),
        }
    }

    /// Whether the attempt succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, JobOutcome::Succeeded { .. })
    }
}

/// One attempt of one job on its way through the layers: its context (id,
/// name, attempt, cancellation) and what the producer attached.
#[derive(Debug)]
pub struct Attempt {
    pub(crate) ctx: JobContext,
    pub(crate) headers: Arc<Headers>,
    pub(crate) priority: Priority,
}

impl Attempt {
    /// The context the job function will receive.
    pub fn ctx(&self) -> &JobContext {
        &self.ctx
    }

    /// The headers the producer attached (e.g. by an
    /// [`EnqueueHook`](super::EnqueueHook)).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The job's priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Values for the job and the inner layers of this attempt only, read
    /// with [`JobContext::extension`].
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        self.ctx.extensions_mut()
    }
}

/// The rest of the chain: the inner layers, then the job itself.
pub struct Next<'a> {
    pub(crate) layers: &'a [Arc<dyn JobLayer>],
    pub(crate) job: &'a (dyn Fn(Attempt) -> BoxFuture<'a, JobOutcome> + Send + Sync),
}

impl<'a> Next<'a> {
    /// Runs the inner layers and the job; resolves to their outcome.
    pub fn run(self, attempt: Attempt) -> BoxFuture<'a, JobOutcome> {
        match self.layers.split_first() {
            Some((layer, rest)) => layer.call(attempt, Next { layers: rest, job: self.job }),
            None => (self.job)(attempt),
        }
    }
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").field("layers", &self.layers.len()).finish_non_exhaustive()
    }
}

/// Wraps every attempt of a pool's jobs, added with
/// [`WorkerPoolBuilder::layer`](crate::WorkerPoolBuilder::layer).
///
/// `call` sees the attempt before the job runs (it may add values to its
/// [extensions](Attempt::extensions_mut), or wrap the rest in a tracing
/// span of its own), calls [`Next::run`], and sees the outcome after; what
/// it returns is the outcome from then on, so a layer may make an error
/// permanent, swallow it, or fail a job that succeeded. A layer that does
/// not call `next.run` skips the job. A panic in a layer is a failed
/// attempt, like a panic in the job.
///
/// Layers run in the order they were added: the first added is the
/// outermost, sees the attempt first and the outcome last.
///
/// ```
/// use jobs_core::hooks::{Attempt, BoxFuture, JobLayer, JobOutcome, Next};
///
/// /// Never retries an error that says the input is bad.
/// struct BadInputIsPermanent;
///
/// impl JobLayer for BadInputIsPermanent {
///     fn call<'a>(&'a self, attempt: Attempt, next: Next<'a>) -> BoxFuture<'a, JobOutcome> {
///         Box::pin(async move {
///             match next.run(attempt).await {
///                 JobOutcome::Retry { error } if error.contains("bad input") => JobOutcome::Dead { error },
///                 other => other,
///             }
///         })
///     }
/// }
/// ```
pub trait JobLayer: Send + Sync + 'static {
    /// Runs around one attempt: call `next.run(attempt)` to run the rest.
    fn call<'a>(&'a self, attempt: Attempt, next: Next<'a>) -> BoxFuture<'a, JobOutcome>;
}
