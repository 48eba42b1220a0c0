//! Workflows and batches: jobs that wait for other jobs, and callbacks that
//! fire once a set of jobs has ended.
//!
//! A [`Workflow`] is a graph of named steps, each a typed job; a step's job
//! is enqueued only once every step it depends on succeeded (or ended, for
//! an edge marked [`OnFailure::Continue`]). A [`Batch`] is a set of jobs
//! that may grow while it is open, with an `on_success` and an
//! `on_complete` job enqueued exactly once when its last job ends. Both are
//! stored by the backend's [`FlowStore`]; see `docs/workflows.md`.

mod batch;
mod place;
pub(crate) mod relay;
mod run;
mod workflow;

pub use batch::Batch;
pub use place::DependencyError;
pub use run::FlowRun;
pub use workflow::{Step, Workflow};

use crate::error::FlowError;
use crate::queue::FlowStore;

/// The store of `queue`, or [`FlowError::Unsupported`].
pub(crate) fn store_of<Q: crate::queue::JobQueue + ?Sized>(
    queue: &Q,
) -> Result<std::sync::Arc<dyn FlowStore>, FlowError> {
    queue.flow_store().ok_or(FlowError::Unsupported)
}
