//! A pool's hooks: its layers, and the `on_failure` and `on_dead` handlers,
//! each called so that a panic in one is logged and harms nothing else.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::JobLayer;
use crate::queue::DeadJob;
use crate::vocab::JobId;

/// A failed attempt, as [`on_failure`](crate::WorkerPoolBuilder::on_failure)
/// handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// The job's id (which names its queue).
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// This attempt, 1-based.
    pub attempt: u32,
    /// Why it failed.
    pub error: String,
    /// Whether the job runs again (after its backoff); `false` when it goes
    /// to the dead-letter set.
    pub will_retry: bool,
}

type FailureFn = Arc<dyn Fn(&FailedAttempt) + Send + Sync>;
type DeadFn = Arc<dyn Fn(&DeadJob) + Send + Sync>;

/// Everything a pool calls around its jobs.
#[derive(Clone, Default)]
pub(crate) struct PoolHooks {
    pub(crate) layers: Vec<Arc<dyn JobLayer>>,
    failure: Vec<FailureFn>,
    dead: Vec<DeadFn>,
}

impl PoolHooks {
    pub(crate) fn add_failure(&mut self, f: impl Fn(&FailedAttempt) + Send + Sync + 'static) {
        self.failure.push(Arc::new(f));
    }

    pub(crate) fn add_dead(&mut self, f: impl Fn(&DeadJob) + Send + Sync + 'static) {
        self.dead.push(Arc::new(f));
    }

    /// Calls every `on_failure` handler with `failed`.
    pub(crate) fn failed(&self, failed: &FailedAttempt) {
        for f in &self.failure {
            if catch_unwind(AssertUnwindSafe(|| f(failed))).is_err() {
                tracing::error!(job = %failed.id, "an on_failure handler panicked");
            }
        }
    }

    /// Whether any `on_dead` handler is set (the pool then keeps what they
    /// need of each attempt that ends dead until the backend confirms it).
    pub(crate) fn wants_dead(&self) -> bool {
        !self.dead.is_empty()
    }

    /// Calls every `on_dead` handler with `dead`.
    pub(crate) fn dead(&self, dead: &DeadJob) {
        for f in &self.dead {
            if catch_unwind(AssertUnwindSafe(|| f(dead))).is_err() {
                tracing::error!(job = %dead.id, "an on_dead handler panicked");
            }
        }
    }
}
