//! The port's traits for [`RedisQueue`]: each call forwards to the room
//! that implements it (`hot.rs` for the workers' calls, `admin.rs` and
//! `list.rs` for the operators', `schedules.rs` for schedules and pool
//! presence).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jobs_core::backend::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, LeaseState, PayloadFormat, ProgressUpdate, ProgressWrite,
    Waiter,
};
use jobs_core::{
    CancelResult, Error, JobId, JobInfo, JobQueue, JobStatus, MinuteCounts, NewJob, PoolInfo, PoolPresence, QueueAdmin,
    QueueHistory, QueueInspect, QueuePolicy, QueueStats, ScheduleDef, ScheduleState, ScheduleStore,
};

use crate::queue::RedisQueue;

impl JobQueue for RedisQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(self.enqueue_many(jobs))
    }

    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        Box::pin(self.fetch(req))
    }

    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        Box::pin(self.finish(batch))
    }

    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        Box::pin(self.extend_leases(leases, lease))
    }

    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
        Box::pin(self.report_progress(update))
    }

    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        self.waiter(queues)
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        Box::pin(self.now())
    }

    fn payload_format(&self) -> PayloadFormat {
        self.inner.payload_format
    }

    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        Some(Arc::new(self.clone()))
    }

    fn flow_store(&self) -> Option<Arc<dyn jobs_core::FlowStore>> {
        Some(Arc::new(self.clone()))
    }

    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        Some(Arc::new(self.clone()))
    }

    fn archive(&self) -> Option<Arc<dyn jobs_core::ArchiveBacklog>> {
        Some(Arc::new(self.clone()))
    }
}

impl jobs_core::ArchiveBacklog for RedisQueue {
    fn take_archive<'a>(
        &'a self,
        queue: &'a str,
        holder: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Option<jobs_core::ArchiveBatch>, Error>> {
        Box::pin(self.take_archive(queue, holder, lease, max))
    }

    fn ack_archive<'a>(&'a self, queue: &'a str, through: u64) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.ack_archive(queue, through))
    }

    fn release_archive<'a>(&'a self, queue: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.release_archive(queue, holder))
    }
}

impl ScheduleStore for RedisQueue {
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.put_schedule(def))
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        Box::pin(self.schedules())
    }

    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.remove_schedule(name))
    }

    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_schedule_paused(name, paused))
    }

    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(self.fire_schedule(name, tick, job))
    }
}

impl PoolPresence for RedisQueue {
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.report_pool(info, ttl))
    }

    fn remove_pool<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.remove_pool(id))
    }

    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, Error>> {
        Box::pin(self.pools())
    }
}

impl QueueInspect for RedisQueue {
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        Box::pin(self.job(id))
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        Box::pin(self.stats())
    }

    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        Box::pin(self.dead_jobs(queue, limit))
    }

    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        Box::pin(self.list_jobs(queue, status, offset, limit))
    }

    fn groups<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<jobs_core::GroupInfo>, Error>> {
        Box::pin(self.groups(queue, limit))
    }
}

impl QueueAdmin for RedisQueue {
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        Box::pin(self.cancel(id))
    }

    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.retry_dead(id))
    }

    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.purge_dead(queue))
    }

    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.pause(queue))
    }

    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.resume(queue))
    }

    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_policy(queue, policy))
    }

    fn policy<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueuePolicy, Error>> {
        Box::pin(self.policy(queue))
    }

    fn breaker<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<jobs_core::BreakerInfo, Error>> {
        Box::pin(self.breaker(queue))
    }

    fn set_breaker<'a>(&'a self, queue: &'a str, action: jobs_core::BreakerAction) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_breaker(queue, None, action))
    }

    fn set_group_breaker<'a>(
        &'a self,
        queue: &'a str,
        group: &'a str,
        action: jobs_core::BreakerAction,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_breaker(queue, Some(group), action))
    }
}

impl QueueHistory for RedisQueue {
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        Box::pin(self.throughput(queue, minutes))
    }
}
