//! [`Metered`]: a queue wrapper that counts enqueues.

use std::time::{Duration, SystemTime};

use super::JobMetrics;
use crate::error::Error;
use crate::job::JobId;
use crate::queue::{
    BoxFuture, CancelResult, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue, LeaseState, NewJob,
    QueuePolicy, QueueStats, ScheduleDef, ScheduleState, Waiter, WorkerInfo,
};

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
    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        self.inner.fetch(req)
    }
    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        self.inner.finish(batch)
    }
    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        self.inner.extend_leases(leases, lease)
    }
    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        self.inner.waiter(queues)
    }
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        self.inner.job(id)
    }
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        self.inner.cancel(id)
    }
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        self.inner.stats()
    }
    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        self.inner.dead_jobs(queue, limit)
    }
    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.retry_dead(id)
    }
    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        self.inner.purge_dead(queue)
    }
    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.pause(queue)
    }
    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.resume(queue)
    }
    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.set_policy(queue, policy)
    }
    fn report_worker(&self, info: WorkerInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.inner.report_worker(info, ttl)
    }
    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.remove_worker(id)
    }
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>, Error>> {
        self.inner.workers()
    }
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        self.inner.put_schedule(def)
    }
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        self.inner.schedules()
    }
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        self.inner.remove_schedule(name)
    }
    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.set_schedule_paused(name, paused)
    }
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
