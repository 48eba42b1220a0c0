//! Forwarding the port through smart pointers and wrappers.
//!
//! [`forward_fns!`] writes chosen methods of the port as calls on a target
//! expression, one rule per method, so every forwarding impl (`Arc`, `Box`,
//! the metrics wrapper, the suite's fault injector) names the methods it
//! forwards and writes only those it changes.

use std::sync::Arc;

use super::{
    ArchiveBacklog, JobQueue, PoolPresence, QueueAdmin, QueueEvents, QueueHistory, QueueInspect, ScheduleStore,
};

/// `forward_fns!(this => target; method, ...)`: each listed port method as a
/// call of the same method on `target` (an expression over `this`, the
/// receiver).
macro_rules! forward_fns {
    ($this:ident => $target:expr; $($method:ident),+ $(,)?) => {
        $( $crate::queue::forward_fns!(@ $method, $this => $target); )+
    };
    (@ enqueue_many, $this:ident => $target:expr) => {
        fn enqueue_many(
            &self,
            jobs: Vec<$crate::queue::NewJob>,
        ) -> $crate::queue::BoxFuture<'_, Result<Vec<$crate::vocab::JobId>, $crate::error::Error>> {
            let $this = self;
            ($target).enqueue_many(jobs)
        }
    };
    (@ fetch, $this:ident => $target:expr) => {
        fn fetch<'a>(
            &'a self,
            req: &'a $crate::queue::FetchRequest,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::queue::Fetched, $crate::error::Error>> {
            let $this = self;
            ($target).fetch(req)
        }
    };
    (@ finish, $this:ident => $target:expr) => {
        fn finish(
            &self,
            batch: Vec<$crate::queue::Finish>,
        ) -> $crate::queue::BoxFuture<'_, Result<Vec<$crate::queue::FinishResult>, $crate::error::Error>> {
            let $this = self;
            ($target).finish(batch)
        }
    };
    (@ extend_leases, $this:ident => $target:expr) => {
        fn extend_leases<'a>(
            &'a self,
            leases: &'a [($crate::vocab::JobId, u64)],
            lease: ::std::time::Duration,
        ) -> $crate::queue::BoxFuture<'a, Result<Vec<$crate::queue::LeaseState>, $crate::error::Error>> {
            let $this = self;
            ($target).extend_leases(leases, lease)
        }
    };
    (@ report_progress, $this:ident => $target:expr) => {
        fn report_progress<'a>(
            &'a self,
            update: &'a $crate::queue::ProgressUpdate,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::queue::ProgressWrite, $crate::error::Error>> {
            let $this = self;
            ($target).report_progress(update)
        }
    };
    (@ waiter, $this:ident => $target:expr) => {
        fn waiter(
            &self,
            queues: &[String],
        ) -> Result<Box<dyn $crate::queue::Waiter>, $crate::error::Error> {
            let $this = self;
            ($target).waiter(queues)
        }
    };
    (@ now, $this:ident => $target:expr) => {
        fn now(&self) -> $crate::queue::BoxFuture<'_, Result<::std::time::SystemTime, $crate::error::Error>> {
            let $this = self;
            ($target).now()
        }
    };
    (@ payload_format, $this:ident => $target:expr) => {
        fn payload_format(&self) -> $crate::payload::PayloadFormat {
            let $this = self;
            ($target).payload_format()
        }
    };
    (@ schedule_store, $this:ident => $target:expr) => {
        fn schedule_store(&self) -> Option<::std::sync::Arc<dyn $crate::queue::ScheduleStore>> {
            let $this = self;
            ($target).schedule_store()
        }
    };
    (@ presence, $this:ident => $target:expr) => {
        fn presence(&self) -> Option<::std::sync::Arc<dyn $crate::queue::PoolPresence>> {
            let $this = self;
            ($target).presence()
        }
    };
    (@ archive, $this:ident => $target:expr) => {
        fn archive(&self) -> Option<::std::sync::Arc<dyn $crate::queue::ArchiveBacklog>> {
            let $this = self;
            ($target).archive()
        }
    };
    (@ flow_store, $this:ident => $target:expr) => {
        fn flow_store(&self) -> Option<::std::sync::Arc<dyn $crate::queue::FlowStore>> {
            let $this = self;
            ($target).flow_store()
        }
    };
    (@ put_schedule, $this:ident => $target:expr) => {
        fn put_schedule(
            &self,
            def: $crate::queue::ScheduleDef,
        ) -> $crate::queue::BoxFuture<'_, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).put_schedule(def)
        }
    };
    (@ schedules, $this:ident => $target:expr) => {
        fn schedules(
            &self,
        ) -> $crate::queue::BoxFuture<'_, Result<Vec<$crate::queue::ScheduleState>, $crate::error::Error>> {
            let $this = self;
            ($target).schedules()
        }
    };
    (@ remove_schedule, $this:ident => $target:expr) => {
        fn remove_schedule<'a>(
            &'a self,
            name: &'a str,
        ) -> $crate::queue::BoxFuture<'a, Result<bool, $crate::error::Error>> {
            let $this = self;
            ($target).remove_schedule(name)
        }
    };
    (@ set_schedule_paused, $this:ident => $target:expr) => {
        fn set_schedule_paused<'a>(
            &'a self,
            name: &'a str,
            paused: bool,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).set_schedule_paused(name, paused)
        }
    };
    (@ fire_schedule, $this:ident => $target:expr) => {
        fn fire_schedule<'a>(
            &'a self,
            name: &'a str,
            tick: ::std::time::SystemTime,
            job: Option<$crate::queue::NewJob>,
        ) -> $crate::queue::BoxFuture<'a, Result<Option<$crate::vocab::JobId>, $crate::error::Error>> {
            let $this = self;
            ($target).fire_schedule(name, tick, job)
        }
    };
    (@ report_pool, $this:ident => $target:expr) => {
        fn report_pool(
            &self,
            info: $crate::queue::PoolInfo,
            ttl: ::std::time::Duration,
        ) -> $crate::queue::BoxFuture<'_, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).report_pool(info, ttl)
        }
    };
    (@ remove_pool, $this:ident => $target:expr) => {
        fn remove_pool<'a>(&'a self, id: &'a str) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).remove_pool(id)
        }
    };
    (@ pools, $this:ident => $target:expr) => {
        fn pools(
            &self,
        ) -> $crate::queue::BoxFuture<'_, Result<Vec<$crate::queue::PoolInfo>, $crate::error::Error>> {
            let $this = self;
            ($target).pools()
        }
    };
    (@ job, $this:ident => $target:expr) => {
        fn job<'a>(
            &'a self,
            id: &'a $crate::vocab::JobId,
        ) -> $crate::queue::BoxFuture<'a, Result<Option<$crate::queue::JobInfo>, $crate::error::Error>> {
            let $this = self;
            ($target).job(id)
        }
    };
    (@ stats, $this:ident => $target:expr) => {
        fn stats(&self) -> $crate::queue::BoxFuture<'_, Result<$crate::queue::QueueStats, $crate::error::Error>> {
            let $this = self;
            ($target).stats()
        }
    };
    (@ dead_jobs, $this:ident => $target:expr) => {
        fn dead_jobs<'a>(
            &'a self,
            queue: &'a str,
            limit: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<Vec<$crate::queue::JobInfo>, $crate::error::Error>> {
            let $this = self;
            ($target).dead_jobs(queue, limit)
        }
    };
    (@ list_jobs, $this:ident => $target:expr) => {
        fn list_jobs<'a>(
            &'a self,
            queue: &'a str,
            status: $crate::vocab::JobStatus,
            offset: usize,
            limit: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<Vec<$crate::queue::JobInfo>, $crate::error::Error>> {
            let $this = self;
            ($target).list_jobs(queue, status, offset, limit)
        }
    };
    (@ groups, $this:ident => $target:expr) => {
        fn groups<'a>(
            &'a self,
            queue: &'a str,
            limit: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<Vec<$crate::queue::GroupInfo>, $crate::error::Error>> {
            let $this = self;
            ($target).groups(queue, limit)
        }
    };
    (@ cancel, $this:ident => $target:expr) => {
        fn cancel<'a>(
            &'a self,
            id: &'a $crate::vocab::JobId,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::queue::CancelResult, $crate::error::Error>> {
            let $this = self;
            ($target).cancel(id)
        }
    };
    (@ retry_dead, $this:ident => $target:expr) => {
        fn retry_dead<'a>(
            &'a self,
            id: &'a $crate::vocab::JobId,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).retry_dead(id)
        }
    };
    (@ purge_dead, $this:ident => $target:expr) => {
        fn purge_dead<'a>(&'a self, queue: &'a str) -> $crate::queue::BoxFuture<'a, Result<u64, $crate::error::Error>> {
            let $this = self;
            ($target).purge_dead(queue)
        }
    };
    (@ pause, $this:ident => $target:expr) => {
        fn pause<'a>(&'a self, queue: &'a str) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).pause(queue)
        }
    };
    (@ resume, $this:ident => $target:expr) => {
        fn resume<'a>(&'a self, queue: &'a str) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).resume(queue)
        }
    };
    (@ set_policy, $this:ident => $target:expr) => {
        fn set_policy<'a>(
            &'a self,
            queue: &'a str,
            policy: $crate::queue::QueuePolicy,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).set_policy(queue, policy)
        }
    };
    (@ policy, $this:ident => $target:expr) => {
        fn policy<'a>(
            &'a self,
            queue: &'a str,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::queue::QueuePolicy, $crate::error::Error>> {
            let $this = self;
            ($target).policy(queue)
        }
    };
    (@ breaker, $this:ident => $target:expr) => {
        fn breaker<'a>(
            &'a self,
            queue: &'a str,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::queue::BreakerInfo, $crate::error::Error>> {
            let $this = self;
            ($target).breaker(queue)
        }
    };
    (@ set_breaker, $this:ident => $target:expr) => {
        fn set_breaker<'a>(
            &'a self,
            queue: &'a str,
            action: $crate::queue::BreakerAction,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).set_breaker(queue, action)
        }
    };
    (@ set_group_breaker, $this:ident => $target:expr) => {
        fn set_group_breaker<'a>(
            &'a self,
            queue: &'a str,
            group: &'a str,
            action: $crate::queue::BreakerAction,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).set_group_breaker(queue, group, action)
        }
    };
    (@ throughput, $this:ident => $target:expr) => {
        fn throughput<'a>(
            &'a self,
            queue: &'a str,
            minutes: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<Vec<$crate::queue::MinuteCounts>, $crate::error::Error>> {
            let $this = self;
            ($target).throughput(queue, minutes)
        }
    };
    (@ listen, $this:ident => $target:expr) => {
        fn listen<'a>(
            &'a self,
            queue: &'a str,
            ttl: ::std::time::Duration,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::events::Listening, $crate::error::Error>> {
            let $this = self;
            ($target).listen(queue, ttl)
        }
    };
    (@ read_events, $this:ident => $target:expr) => {
        fn read_events<'a>(
            &'a self,
            queue: &'a str,
            after: &'a $crate::events::EventCursor,
            max: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<$crate::events::EventPage, $crate::error::Error>> {
            let $this = self;
            ($target).read_events(queue, after, max)
        }
    };
    (@ event_waiter, $this:ident => $target:expr) => {
        fn event_waiter(&self, queue: &str) -> Result<Box<dyn $crate::queue::Waiter>, $crate::error::Error> {
            let $this = self;
            ($target).event_waiter(queue)
        }
    };
    (@ take_archive, $this:ident => $target:expr) => {
        fn take_archive<'a>(
            &'a self,
            queue: &'a str,
            holder: &'a str,
            lease: ::std::time::Duration,
            max: usize,
        ) -> $crate::queue::BoxFuture<'a, Result<Option<$crate::queue::ArchiveBatch>, $crate::error::Error>> {
            let $this = self;
            ($target).take_archive(queue, holder, lease, max)
        }
    };
    (@ ack_archive, $this:ident => $target:expr) => {
        fn ack_archive<'a>(
            &'a self,
            queue: &'a str,
            through: u64,
        ) -> $crate::queue::BoxFuture<'a, Result<u64, $crate::error::Error>> {
            let $this = self;
            ($target).ack_archive(queue, through)
        }
    };
    (@ release_archive, $this:ident => $target:expr) => {
        fn release_archive<'a>(
            &'a self,
            queue: &'a str,
            holder: &'a str,
        ) -> $crate::queue::BoxFuture<'a, Result<(), $crate::error::Error>> {
            let $this = self;
            ($target).release_archive(queue, holder)
        }
    };
    (@ event_hub, $this:ident => $target:expr) => {
        fn event_hub(&self) -> &$crate::events::EventHub {
            let $this = self;
            ($target).event_hub()
        }
    };
}
pub(crate) use forward_fns;

/// Every trait of the port through a pointer type to its target.
macro_rules! forward_pointer {
    ($ptr:ident) => {
        impl<Q: JobQueue + ?Sized> JobQueue for $ptr<Q> {
            forward_fns!(s => &**s; enqueue_many, fetch, finish, extend_leases, report_progress, waiter, now, payload_format, schedule_store, presence, archive, flow_store);
        }
        impl<Q: ScheduleStore + ?Sized> ScheduleStore for $ptr<Q> {
            forward_fns!(s => &**s; put_schedule, schedules, remove_schedule, set_schedule_paused, fire_schedule);
        }
        impl<Q: PoolPresence + ?Sized> PoolPresence for $ptr<Q> {
            forward_fns!(s => &**s; report_pool, remove_pool, pools);
        }
        impl<Q: QueueInspect + ?Sized> QueueInspect for $ptr<Q> {
            forward_fns!(s => &**s; job, stats, dead_jobs, list_jobs, groups);
        }
        impl<Q: QueueAdmin + ?Sized> QueueAdmin for $ptr<Q> {
            forward_fns!(s => &**s; cancel, retry_dead, purge_dead, pause, resume, set_policy, policy, breaker, set_breaker, set_group_breaker);
        }
        impl<Q: QueueHistory + ?Sized> QueueHistory for $ptr<Q> {
            forward_fns!(s => &**s; throughput);
        }
        impl<Q: QueueEvents + ?Sized> QueueEvents for $ptr<Q> {
            forward_fns!(s => &**s; listen, read_events, event_waiter, event_hub);
        }
        impl<Q: ArchiveBacklog + ?Sized> ArchiveBacklog for $ptr<Q> {
            forward_fns!(s => &**s; take_archive, ack_archive, release_archive);
        }
    };
}

forward_pointer!(Arc);
forward_pointer!(Box);
