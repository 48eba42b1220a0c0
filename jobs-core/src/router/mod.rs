//! [`QueueRouter`]: queues on separate backends behind one handle.

mod archive;
mod fanout;
mod flows;
mod hot;
mod join;
mod records;
mod routes;
mod waiter;

use std::sync::Arc;

use crate::error::Error;
use crate::events::EventHub;

pub use routes::{QueueRouterBuilder, RouterError};

use routes::Routes;

/// Queues on separate backends behind one handle.
///
/// A router maps queue names to backends (a default backend for every queue
/// no route names) and implements every trait of the port that its backends
/// implement, so a [`WorkerPool`](crate::WorkerPool), the operator command
/// line and the dashboard work over it exactly as over one backend.
///
/// How each call finds its backend:
///
/// - a call that names a queue (enqueue, fetch, pause, listing a queue's
///   jobs, its events, ...) goes to that queue's backend;
/// - a call by job id goes to the backend of the id's queue: a
///   [`JobId`](crate::JobId) carries its queue, so finding a job costs no
///   lookup on other backends;
/// - a schedule is stored on the backend of the queue it enqueues into, so
///   firing a tick stays one atomic step there; calls by schedule name alone
///   ask each backend in turn (schedules are few, and these calls are rare);
/// - calls over everything (counts of all queues, pools, schedules) ask
///   every backend at once and merge the answers;
/// - workflows and batches are stored on the default backend; a step's
///   end is recorded on its queue's backend, and the relay carries it
///   over (see [`FlowStore`](crate::FlowStore)).
///
/// A batch enqueue whose jobs go to several backends is all or nothing per
/// backend only: each backend stores its part atomically, in backend order,
/// and a refusal by one leaves the parts already stored by the others.
///
/// `B` is the backends' type: one concrete backend (two
/// [`MemoryQueue`](crate::MemoryQueue)s, two `RedisQueue`s) or
/// [`SharedQueue`](crate::SharedQueue) for backends of different kinds.
/// The router implements each capability trait that `B` implements; a
/// router of full backends is a full [`Backend`](crate::Backend).
///
/// ```
/// use jobs_core::{MemoryQueue, QueueRouter, QueueInspect};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let main = MemoryQueue::new();
/// let bulk = MemoryQueue::new();
/// let router = QueueRouter::builder("main", main.clone())
///     .backend("bulk", bulk.clone())
///     .route("imports", "bulk")
///     .build()?;
/// assert_eq!(router.backend_name("imports")?, "bulk");
/// assert_eq!(router.backend_name("email")?, "main", "unrouted queues use the default");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct QueueRouter<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    /// The backends with their names; the default one first.
    backends: Vec<(String, B)>,
    routes: Routes,
    /// Result waits over this router: one follower per queue, reading the
    /// queue's events from its backend through the router.
    hub: EventHub,
}

impl<B> Clone for QueueRouter<B> {
    fn clone(&self) -> Self {
        QueueRouter { inner: self.inner.clone() }
    }
}

impl<B> std::fmt::Debug for QueueRouter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueRouter")
            .field("backends", &self.inner.backends.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("routes", &self.inner.routes)
            .finish()
    }
}

impl<B> QueueRouter<B> {
    /// Starts a router whose default backend, named `name`, takes every
    /// queue that no route names, and holds the schedules of those queues.
    pub fn builder(name: impl Into<String>, default: B) -> QueueRouterBuilder<B> {
        QueueRouterBuilder::new(name.into(), default)
    }

    fn from_parts(backends: Vec<(String, B)>, routes: Routes) -> Self {
        QueueRouter { inner: Arc::new(Inner { backends, routes, hub: EventHub::default() }) }
    }

    /// The backends with their names, the default one first.
    pub fn backends(&self) -> impl Iterator<Item = (&str, &B)> {
        self.inner.backends.iter().map(|(n, b)| (n.as_str(), b))
    }

    /// The backend that holds `queue`.
    ///
    /// Fails only when a routing rule ([`QueueRouterBuilder::route_with`])
    /// names a backend the router does not have.
    pub fn backend_for(&self, queue: &str) -> Result<&B, Error> {
        Ok(self.at(self.index(queue)?))
    }

    /// The name of the backend that holds `queue` (see
    /// [`backend_for`](Self::backend_for)).
    pub fn backend_name(&self, queue: &str) -> Result<&str, Error> {
        Ok(&self.inner.backends[self.index(queue)?].0)
    }

    fn index(&self, queue: &str) -> Result<usize, Error> {
        self.inner.routes.index(queue)
    }

    /// Indexes come from the routing table, which was built from these
    /// backends, in this order: every one is in range.
    fn at(&self, index: usize) -> &B {
        &self.inner.backends[index].1
    }

    fn default_backend(&self) -> &B {
        self.at(0)
    }

    /// The same routes over other handles on the same backends (each
    /// backend's schedule store or presence records).
    fn map<C>(&self, mut f: impl FnMut(&B) -> Option<C>) -> Option<QueueRouter<C>> {
        let backends =
            self.inner.backends.iter().map(|(n, b)| f(b).map(|c| (n.clone(), c))).collect::<Option<Vec<_>>>()?;
        Some(QueueRouter::from_parts(backends, self.inner.routes.clone()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests;
