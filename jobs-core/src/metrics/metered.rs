//! [`Metered`]: a queue wrapper that counts enqueues.

use std::time::SystemTime;

use super::JobMetrics;
use crate::error::Error;
use crate::job::JobId;
use crate::queue::{BoxFuture, JobQueue, NewJob};

/// A [`JobQueue`] that counts every job its backend accepts in
/// `jobs_enqueued_total{job,queue,priority}`; every other call passes
/// through unchanged. Made by [`JobMetrics::instrument`].
///
/// A `unique_for` enqueue that returns the id of a live duplicate stored
/// nothing and is not counted. A refused batch (queue full, priority not
/// accepted, backend error) counts nothing.
#[derive(Clone, Debug)]
pub struct Metered<Q> {
    inner: Q,
    metrics: JobMetrics,
}

impl<Q: JobQueue> Metered<Q> {
    /// Wraps `queue`, counting into `metrics`.
    pub fn new(queue: Q, metrics: &JobMetrics) -> Self {
        Metered { inner: queue, metrics: metrics.clone() }
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The wrapped queue, unwrapped.
    pub fn into_inner(self) -> Q {
        self.inner
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &JobMetrics {
        &self.metrics
    }
}

impl<Q: JobQueue> crate::queue::ForwardQueue for Metered<Q> {
    type Target = Q;
    fn forward_target(&self) -> &Q {
        &self.inner
    }
}

impl<Q: JobQueue> JobQueue for Metered<Q> {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            // Only the labels are kept, not the payloads.
            let labels: Vec<(JobId, String, crate::job::Priority)> =
                jobs.iter().map(|j| (j.id.clone(), j.name.clone(), j.priority)).collect();
            let ids = self.inner.enqueue_many(jobs).await?;
            for ((sent, name, priority), got) in labels.iter().zip(&ids) {
                // A different id back is a `unique_for` duplicate: nothing stored.
                if sent == got {
                    self.metrics.count_enqueued(name, sent.queue(), *priority);
                }
            }
            Ok(ids)
        })
    }
    crate::__forward_job_queue!();

    /// A fired tick enqueues a job: it is counted like any enqueue.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(async move {
            let labels = job.as_ref().map(|j| (j.id.clone(), j.name.clone(), j.priority));
            let got = self.inner.fire_schedule(name, tick, job).await?;
            if let (Some((sent, job_name, priority)), Some(id)) = (&labels, &got) {
                if sent == id {
                    self.metrics.count_enqueued(job_name, sent.queue(), *priority);
                }
            }
            Ok(got)
        })
    }
}
