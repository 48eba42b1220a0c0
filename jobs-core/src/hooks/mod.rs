//! Hooks: code of the application's that runs around jobs.
//!
//! - Worker side, on [`WorkerPoolBuilder`](crate::WorkerPoolBuilder):
//!   [`JobLayer`]s wrap every attempt ([`layer`](crate::WorkerPoolBuilder::layer));
//!   [`on_failure`](crate::WorkerPoolBuilder::on_failure) handlers see every
//!   failed attempt, [`on_dead`](crate::WorkerPoolBuilder::on_dead) handlers
//!   every job that ends dead, once.
//! - Producer side: a [`Hooked`] queue runs its [`EnqueueHook`]s on every
//!   job enqueued through it.

mod layer;
pub(crate) mod pool;
mod producer;

pub use crate::queue::{BoxFuture, DeadJob};
pub use layer::{Attempt, JobLayer, JobOutcome, Next};
pub use pool::FailedAttempt;
pub use producer::{EnqueueHook, HookError, Hooked};
