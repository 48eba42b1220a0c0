//! [`FlowRun`]: a stored workflow or batch seen from outside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::store_of;
use crate::error::Error;
use crate::error::FlowError;
use crate::job::Job;
use crate::queue::JobQueue;
use crate::queue::{FlowInfo, FlowStore, FlowSummary, MemberStatus};

/// A stored workflow or batch: read it, wait for its end, cancel it.
/// Returned by [`Workflow::enqueue`](super::Workflow::enqueue) and the
/// [`Batch`](super::Batch) calls; [`FlowRun::open`] finds one by id.
#[derive(Clone)]
pub struct FlowRun {
    id: String,
    store: Arc<dyn FlowStore>,
}

impl std::fmt::Debug for FlowRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRun").field("id", &self.id).finish()
    }
}

impl FlowRun {
    pub(crate) fn new(id: String, store: Arc<dyn FlowStore>) -> Self {
        FlowRun { id, store }
    }

    /// The flow stored as `id` on `queue`'s backend ([`FlowError::NotFound`]
    /// when none is).
    pub async fn open<Q: JobQueue + ?Sized>(queue: &Q, id: &str) -> Result<FlowRun, Error> {
        let store = store_of(queue)?;
        match store.flow_summary(id).await? {
            Some(_) => Ok(FlowRun::new(id.to_owned(), store)),
            None => Err(FlowError::NotFound(id.to_owned()).into()),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Everything stored about it: its state, counts and members.
    pub async fn info(&self) -> Result<FlowInfo, Error> {
        self.store.flow(&self.id).await?.ok_or_else(|| FlowError::NotFound(self.id.clone()).into())
    }

    /// Its state and counts (without reading its members).
    pub async fn status(&self) -> Result<FlowSummary, Error> {
        self.store.flow_summary(&self.id).await?.ok_or_else(|| FlowError::NotFound(self.id.clone()).into())
    }

    /// Waits until it ended (succeeded, failed or cancelled) and returns
    /// its state; [`FlowError::TimedOut`] after `timeout`. It listens for
    /// the store's notices instead of polling; a flow that ended before the
    /// call returns at once.
    pub async fn wait(&self, timeout: Duration) -> Result<FlowSummary, Error> {
        let start = Instant::now();
        let mut waiter = self.store.flow_waiter()?;
        loop {
            waiter.arm();
            let s = self.status().await?;
            if s.status.is_ended() {
                return Ok(s);
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(FlowError::TimedOut {
                    flow: self.id.clone(),
                    waited: timeout,
                    ended: s.ended,
                    total: s.total,
                }
                .into());
            }
            waiter.wait(left).await?;
        }
    }

    /// Cancels it: steps not yet enqueued never run, running ones are
    /// cancelled. `false` when it had ended already.
    pub async fn cancel(&self) -> Result<bool, Error> {
        self.store.cancel_flow(&self.id).await
    }

    /// The typed result of member `name` (a workflow step), read from its
    /// job in `queue`: `None` while it has not succeeded or when it
    /// returned nothing.
    pub async fn result<J: Job>(&self, name: &str) -> Result<Option<J::Output>, Error>
    where
        J::Output: DeserializeOwned,
    {
        let Some(m) = self.store.flow_member(&self.id, name).await? else {
            if self.store.flow_summary(&self.id).await?.is_none() {
                return Err(FlowError::NotFound(self.id.clone()).into());
            }
            return Err(Error::InvalidArgument(format!("`{}` has no step `{name}`", self.id)));
        };
        if m.status != MemberStatus::Succeeded {
            return Ok(None);
        }
        let Some(job) = self.store.job(&m.job).await? else { return Ok(None) };
        match job.result {
            None => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
                Error::InvalidArgument(format!("the result of step `{name}` does not decode as `{}`: {e}", J::NAME))
            }),
        }
    }
}
