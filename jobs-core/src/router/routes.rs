//! Which backend holds which queue: named backends, routes by queue name,
//! an optional rule, and the builder that checks them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::parse::validate_queue_name;

use super::QueueRouter;

/// A rule that names the backend of a queue no route names (`None`: the
/// default backend).
type Rule = Arc<dyn Fn(&str) -> Option<&str> + Send + Sync>;

/// A router's routing table.
#[derive(Clone)]
pub(super) struct Routes {
    /// The backends' names, in the router's order (the default first).
    names: Vec<String>,
    /// Queue name to backend index.
    by_queue: HashMap<String, usize>,
    rule: Option<Rule>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routes: Vec<(&str, &str)> =
            self.by_queue.iter().map(|(q, i)| (q.as_str(), self.names[*i].as_str())).collect();
        routes.sort_unstable();
        f.debug_struct("Routes").field("routes", &routes).field("rule", &self.rule.is_some()).finish()
    }
}

impl Routes {
    /// The index of `queue`'s backend: its route, else the rule's answer,
    /// else the default (0).
    pub(super) fn index(&self, queue: &str) -> Result<usize, Error> {
        if let Some(i) = self.by_queue.get(queue) {
            return Ok(*i);
        }
        let Some(name) = self.rule.as_ref().and_then(|rule| rule(queue)) else {
            return Ok(0);
        };
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the routing rule sends queue `{queue}` to backend `{name}`, which the router does not have \
                 (it has: {})",
                self.names.join(", ")
            ))
        })
    }
}

/// Why a [`QueueRouter`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two backends were given the same name.
    #[error("two backends are named `{0}`: give each backend its own name")]
    DuplicateBackend(String),
    /// A route names a backend the router was not given.
    #[error("queue `{queue}` is routed to backend `{backend}`, which is not one of the router's backends ({known})")]
    UnknownBackend {
        /// The routed queue.
        queue: String,
        /// The name the route gives.
        backend: String,
        /// The backends the router has, comma-separated.
        known: String,
    },
    /// A queue was routed twice.
    #[error("queue `{0}` is routed twice: give each queue one backend")]
    DuplicateRoute(String),
    /// A route names a queue that cannot exist.
    #[error("cannot route queue `{queue}`: {reason}")]
    InvalidQueue {
        /// The name as given.
        queue: String,
        /// Why it is not a queue name.
        reason: String,
    },
}

/// Builds a [`QueueRouter`]: [`QueueRouter::builder`] names the default
/// backend, [`backend`](Self::backend) adds the others,
/// [`route`](Self::route) sends a queue to one of them.
#[must_use = "a builder does nothing until `build` is called"]
pub struct QueueRouterBuilder<B> {
    backends: Vec<(String, B)>,
    routes: Vec<(String, String)>,
    rule: Option<Rule>,
}

impl<B> std::fmt::Debug for QueueRouterBuilder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueRouterBuilder")
            .field("backends", &self.backends.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl<B> QueueRouterBuilder<B> {
    pub(super) fn new(name: String, default: B) -> Self {
        QueueRouterBuilder { backends: vec![(name, default)], routes: Vec::new(), rule: None }
    }

    /// Adds a backend under `name`; routes name it to send queues there.
    pub fn backend(mut self, name: impl Into<String>, backend: B) -> Self {
        self.backends.push((name.into(), backend));
        self
    }

    /// Sends `queue` to the backend named `backend`.
    pub fn route(mut self, queue: impl Into<String>, backend: impl Into<String>) -> Self {
        self.routes.push((queue.into(), backend.into()));
        self
    }

    /// Names the backend of every queue that no [`route`](Self::route)
    /// names: `rule(queue)` returns a backend's name, or `None` for the
    /// default backend. The rule must give a queue the same answer every
    /// time (a queue's jobs stay where they were stored). A name the router
    /// does not have fails the call that routes the queue.
    ///
    /// ```
    /// # use jobs_core::{MemoryQueue, QueueRouter};
    /// let router = QueueRouter::builder("main", MemoryQueue::new())
    ///     .backend("tenants", MemoryQueue::new())
    ///     .route_with(|queue| queue.starts_with("tenant.").then_some("tenants"))
    ///     .build()
    ///     .unwrap(); // two distinct names, no routes: nothing to refuse
    /// assert_eq!(router.backend_name("tenant.acme").unwrap(), "tenants");
    /// ```
    pub fn route_with<F>(mut self, rule: F) -> Self
    where
        F: Fn(&str) -> Option<&str> + Send + Sync + 'static,
    {
        self.rule = Some(Arc::new(rule));
        self
    }

    /// Checks the backends and routes: every backend name once, every
    /// route to a known backend, every routed queue a valid name routed once.
    pub fn build(self) -> Result<QueueRouter<B>, RouterError> {
        let names: Vec<String> = self.backends.iter().map(|(n, _)| n.clone()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(RouterError::DuplicateBackend(n.clone()));
            }
        }
        let mut by_queue = HashMap::new();
        for (queue, backend) in self.routes {
            validate_queue_name(&queue)
                .map_err(|e| RouterError::InvalidQueue { queue: queue.clone(), reason: e.to_string() })?;
            let Some(i) = names.iter().position(|n| *n == backend) else {
                return Err(RouterError::UnknownBackend { queue, backend, known: names.join(", ") });
            };
            if by_queue.insert(queue.clone(), i).is_some() {
                return Err(RouterError::DuplicateRoute(queue));
            }
        }
        Ok(QueueRouter::from_parts(self.backends, Routes { names, by_queue, rule: self.rule }))
    }
}
