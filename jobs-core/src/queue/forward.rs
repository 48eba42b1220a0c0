//! Forwarding the port through wrappers and smart pointers.

use std::sync::Arc;
use std::time::SystemTime;

use super::{BoxFuture, JobQueue, NewJob};
use crate::error::Error;
use crate::job::JobId;

/// Wrappers of a queue ([`ForwardQueue`]) implement `JobQueue` with this
/// macro: it forwards every call of the port except `enqueue_many` and
/// `fire_schedule`, which the wrapper writes itself (they are where wrappers
/// differ). One list of the port's calls, so a new call cannot be forgotten
/// by one wrapper and silently fall back to a default body in it.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_job_queue {
    () => {
        fn fetch<'a>(
            &'a self,
            req: &'a $crate::FetchRequest,
        ) -> $crate::BoxFuture<'a, Result<$crate::Fetched, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).fetch(req)
        }
        fn finish(
            &self,
            batch: Vec<$crate::Finish>,
        ) -> $crate::BoxFuture<'_, Result<Vec<$crate::FinishResult>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).finish(batch)
        }
        fn extend_leases<'a>(
            &'a self,
            leases: &'a [($crate::JobId, u64)],
            lease: ::std::time::Duration,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::LeaseState>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).extend_leases(leases, lease)
        }
        fn waiter(&self, queues: &[String]) -> Result<Box<dyn $crate::Waiter>, $crate::Error> {
            $crate::ForwardQueue::forward_target(self).waiter(queues)
        }
        fn job<'a>(
            &'a self,
            id: &'a $crate::JobId,
        ) -> $crate::BoxFuture<'a, Result<Option<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).job(id)
        }
        fn cancel<'a>(
            &'a self,
            id: &'a $crate::JobId,
        ) -> $crate::BoxFuture<'a, Result<$crate::CancelResult, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).cancel(id)
        }
        fn stats(&self) -> $crate::BoxFuture<'_, Result<$crate::QueueStats, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).stats()
        }
        fn dead_jobs<'a>(
            &'a self,
            queue: &'a str,
            limit: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).dead_jobs(queue, limit)
        }
        fn retry_dead<'a>(&'a self, id: &'a $crate::JobId) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).retry_dead(id)
        }
        fn purge_dead<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<u64, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).purge_dead(queue)
        }
        fn pause<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).pause(queue)
        }
        fn resume<'a>(&'a self, queue: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).resume(queue)
        }
        fn set_policy<'a>(
            &'a self,
            queue: &'a str,
            policy: $crate::QueuePolicy,
        ) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).set_policy(queue, policy)
        }
        fn report_worker(
            &self,
            info: $crate::WorkerInfo,
            ttl: ::std::time::Duration,
        ) -> $crate::BoxFuture<'_, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).report_worker(info, ttl)
        }
        fn remove_worker<'a>(&'a self, id: &'a str) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).remove_worker(id)
        }
        fn workers(&self) -> $crate::BoxFuture<'_, Result<Vec<$crate::WorkerInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).workers()
        }
        fn list_jobs<'a>(
            &'a self,
            queue: &'a str,
            status: $crate::JobStatus,
            offset: usize,
            limit: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::JobInfo>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).list_jobs(queue, status, offset, limit)
        }
        fn throughput<'a>(
            &'a self,
            queue: &'a str,
            minutes: usize,
        ) -> $crate::BoxFuture<'a, Result<Vec<$crate::MinuteCounts>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).throughput(queue, minutes)
        }
        fn put_schedule(&self, def: $crate::ScheduleDef) -> $crate::BoxFuture<'_, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).put_schedule(def)
        }
        fn schedules(&self) -> $crate::BoxFuture<'_, Result<Vec<$crate::ScheduleState>, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).schedules()
        }
        fn remove_schedule<'a>(&'a self, name: &'a str) -> $crate::BoxFuture<'a, Result<bool, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).remove_schedule(name)
        }
        fn set_schedule_paused<'a>(
            &'a self,
            name: &'a str,
            paused: bool,
        ) -> $crate::BoxFuture<'a, Result<(), $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).set_schedule_paused(name, paused)
        }
        fn now(&self) -> $crate::BoxFuture<'_, Result<::std::time::SystemTime, $crate::Error>> {
            $crate::ForwardQueue::forward_target(self).now()
        }
    };
}

/// A queue that wraps another and forwards most calls to it (see the
/// `jobs_core::__forward_job_queue!` macro).
#[doc(hidden)]
pub trait ForwardQueue {
    /// The wrapped queue's type.
    type Target: JobQueue + ?Sized;
    /// The wrapped queue.
    fn forward_target(&self) -> &Self::Target;
}

macro_rules! forward_pointer {
    ($ptr:ident) => {
        impl<Q: JobQueue + ?Sized> ForwardQueue for $ptr<Q> {
            type Target = Q;
            fn forward_target(&self) -> &Q {
                self
            }
        }

        impl<Q: JobQueue + ?Sized> JobQueue for $ptr<Q> {
            fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
                (**self).enqueue_many(jobs)
            }
            fn fire_schedule<'a>(
                &'a self,
                name: &'a str,
                tick: SystemTime,
                job: Option<NewJob>,
            ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
                (**self).fire_schedule(name, tick, job)
            }
            crate::__forward_job_queue!();
        }
    };
}

forward_pointer!(Arc);
forward_pointer!(Box);
