//! A backend wrapper that injects faults into chosen calls, so the suite can
//! show that one slow or failing part never holds up another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::job::JobId;
use crate::queue::{
    BoxFuture, CancelResult, FetchRequest, Fetched, Finish, FinishResult, JobInfo, JobQueue, JobStatus, LeaseState,
    MinuteCounts, NewJob, QueuePolicy, QueueStats, ScheduleDef, ScheduleState, Waiter, WorkerInfo,
};

/// `Q` with faults switched on and off at run time; clones share them.
#[derive(Clone)]
pub struct Faulty<Q> {
    inner: Q,
    presence_delay_ms: Arc<AtomicU64>,
}

impl<Q: JobQueue + Clone> Faulty<Q> {
    /// `inner`, with no fault yet.
    pub fn new(inner: Q) -> Self {
        Faulty { inner, presence_delay_ms: Arc::new(AtomicU64::new(0)) }
    }

    /// Makes every presence report (`report_worker`) take `d` before it
    /// reaches the backend: a slow node holding the pools' index.
    pub fn delay_presence(&self, d: Duration) {
        self.presence_delay_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl<Q: JobQueue + Clone> JobQueue for Faulty<Q> {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        self.inner.enqueue_many(jobs)
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
        let delay = Duration::from_millis(self.presence_delay_ms.load(Ordering::Relaxed));
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.inner.report_worker(info, ttl).await
        })
    }
    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.remove_worker(id)
    }
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>, Error>> {
        self.inner.workers()
    }
    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        self.inner.list_jobs(queue, status, offset, limit)
    }
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        self.inner.throughput(queue, minutes)
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        self.inner.now()
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
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        self.inner.fire_schedule(name, tick, job)
    }
}
