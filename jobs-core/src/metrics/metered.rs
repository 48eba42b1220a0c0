//! [`Metered`]: a queue wrapper that counts enqueues.

use std::sync::Arc;
use std::time::SystemTime;

use super::JobMetrics;
use crate::error::Error;
use crate::queue::{
    forward_fns, BoxFuture, JobQueue, NewJob, PoolPresence, QueueAdmin, QueueEvents, QueueHistory, QueueInspect,
    ScheduleStore,
};
use crate::vocab::{JobId, Priority};

/// A [`JobQueue`] that counts every job its backend accepts in
/// `jobs_enqueued_total{job,queue,priority}`; every other call passes
/// through unchanged. Made by [`JobMetrics::instrument`].
///
/// An enqueue that returns another job's id stored no new job and is not
/// counted: a `unique_for` duplicate, a caller id already held, a key whose
/// waiting job was kept or replaced. A refused batch (queue full, priority not
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

impl<Q: JobQueue> Metered<Q> {
    /// Counts the jobs of a batch the backend stored: a different id back
    /// names a job stored before (see the type's docs).
    fn count(&self, sent: &[(JobId, String, Priority)], got: &[JobId]) {
        for ((id, name, priority), back) in sent.iter().zip(got) {
            // Another job's id: a duplicate, not stored. (The backend may
            // have placed the job in a partition: the same ulid is the job.)
            if id.ulid() == back.ulid() {
                self.metrics.count_enqueued(name, id.queue(), *priority);
            }
        }
    }
}

/// Only the labels of a batch are kept while it is written, not the payloads.
fn labels<'a>(jobs: impl IntoIterator<Item = &'a NewJob>) -> Vec<(JobId, String, Priority)> {
    jobs.into_iter().map(|j| (j.id.clone(), j.name.clone(), j.priority)).collect()
}

impl<Q: JobQueue> JobQueue for Metered<Q> {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            let sent = labels(&jobs);
            let ids = self.inner.enqueue_many(jobs).await?;
            self.count(&sent, &ids);
            Ok(ids)
        })
    }
    forward_fns!(s => &s.inner; fetch, finish, extend_leases, report_progress, waiter, now, payload_format, presence, archive, flow_store);

    /// The backend's schedule store, metered: a fired tick enqueues a job and
    /// is counted like any enqueue.
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        let store = self.inner.schedule_store()?;
        Some(Arc::new(Metered { inner: store, metrics: self.metrics.clone() }))
    }
}

impl<Q: ScheduleStore> ScheduleStore for Metered<Q> {
    forward_fns!(s => &s.inner; put_schedule, schedules, remove_schedule, set_schedule_paused);

    /// A fired tick enqueues a job: it is counted like any enqueue.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(async move {
            let sent = labels(&job);
            let got = self.inner.fire_schedule(name, tick, job).await?;
            self.count(&sent, got.as_slice());
            Ok(got)
        })
    }
}

impl<Q: PoolPresence> PoolPresence for Metered<Q> {
    forward_fns!(s => &s.inner; report_pool, remove_pool, pools);
}

impl<Q: QueueInspect> QueueInspect for Metered<Q> {
    forward_fns!(s => &s.inner; job, stats, dead_jobs, list_jobs, groups);
}

impl<Q: QueueAdmin> QueueAdmin for Metered<Q> {
    forward_fns!(s => &s.inner; cancel, retry_dead, purge_dead, pause, resume, set_policy, policy, breaker, set_breaker, set_group_breaker);
}

impl<Q: QueueHistory> QueueHistory for Metered<Q> {
    forward_fns!(s => &s.inner; throughput);
}

impl<Q: QueueEvents> QueueEvents for Metered<Q> {
    forward_fns!(s => &s.inner; listen, read_events, event_waiter, event_hub);
}
