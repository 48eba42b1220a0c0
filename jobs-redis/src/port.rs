//! The port's traits for [`RedisQueue`]: each call forwards to the room
//! that implements it (`hot.rs` for the workers' calls, `admin.rs` and
//! `list.rs` for the operators', `schedules.rs` for schedules and pool
//! presence).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jobs_core::backend::{BoxFuture, FetchRequest, Fetched, Finish, FinishResult, LeaseState, Waiter};
use jobs_core::{
    validate_queue_name, CancelResult, Error, JobId, JobInfo, JobQueue, JobStatus, MinuteCounts, NewJob, PoolInfo,
    PoolPresence, QueueAdmin, QueueHistory, QueueInspect, QueuePolicy, QueueStats, ScheduleDef, ScheduleState,
    ScheduleStore,
};

use crate::queue::RedisQueue;

impl JobQueue for RedisQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(self.enqueue_jobs(jobs))
    }

    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        Box::pin(self.fetch_jobs(req))
    }

    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        Box::pin(self.finish_jobs(batch))
    }

    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        Box::pin(self.extend(leases, lease))
    }

    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        for q in queues {
            validate_queue_name(q)?;
        }
        let channels = queues.iter().map(|q| self.keys(q).wake()).collect();
        Ok(Box::new(crate::waiter::RedisWaiter::start(self, channels)?))
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        Box::pin(self.server_time())
    }

    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        Some(Arc::new(self.clone()))
    }

    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        Some(Arc::new(self.clone()))
    }
}

impl ScheduleStore for RedisQueue {
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.store_schedule(def))
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        Box::pin(self.list_schedules())
    }

    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.delete_schedule(name))
    }

    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.pause_schedule(name, paused))
    }

    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(self.fire(name, tick, job))
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
        Box::pin(self.live_pools())
    }
}

impl QueueInspect for RedisQueue {
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        Box::pin(self.job_info(id))
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        Box::pin(self.queue_stats())
    }

    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        Box::pin(self.list_dead(queue, limit))
    }

    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        Box::pin(self.list(queue, status, offset, limit))
    }
}

impl QueueAdmin for RedisQueue {
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        Box::pin(self.cancel_job(id))
    }

    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.retry_dead_job(id))
    }

    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.purge(queue))
    }

    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_paused(queue, true))
    }

    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.set_paused(queue, false))
    }

    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.store_policy(queue, policy))
    }
}

impl QueueHistory for RedisQueue {
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        Box::pin(self.history(queue, minutes))
    }
}
