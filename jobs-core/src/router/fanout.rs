//! Inspection, administration, history and events over a router: calls
//! that name a queue or a job go to its backend; counts of every queue are
//! asked of every backend at once and merged.

use std::time::Duration;

use crate::error::Error;
use crate::events::{EventCursor, EventHub, EventPage, Listening};
use crate::queue::{
    BoxFuture, BreakerAction, BreakerInfo, CancelResult, GroupInfo, JobInfo, MinuteCounts, QueueAdmin, QueueEvents,
    QueueHistory, QueueInspect, QueuePolicy, QueueStats, Waiter,
};
use crate::vocab::{JobId, JobStatus};

use super::join::join_all;
use super::QueueRouter;

/// Calls `$method` on the backend of queue `$queue` (a `&str`).
macro_rules! on_queue {
    ($this:ident, $queue:expr, $method:ident($($arg:expr),*)) => {
        Box::pin(async move { $this.at($this.index($queue)?).$method($($arg),*).await })
    };
}

impl<B: QueueInspect> QueueInspect for QueueRouter<B> {
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        on_queue!(self, id.queue(), job(id))
    }

    /// Every backend's counts, merged. A queue found on several backends
    /// (jobs stored before its route changed) is counted on each, added up.
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        Box::pin(async move {
            let answers = join_all(self.inner.backends.iter().map(|(_, b)| b.stats()).collect()).await;
            let mut all = QueueStats::default();
            for stats in answers {
                for (name, counts) in stats?.queues {
                    all.queues.entry(name).or_default().merge(counts);
                }
            }
            Ok(all)
        })
    }

    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        on_queue!(self, queue, dead_jobs(queue, limit))
    }

    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        on_queue!(self, queue, list_jobs(queue, status, offset, limit))
    }

    fn groups<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<GroupInfo>, Error>> {
        on_queue!(self, queue, groups(queue, limit))
    }
}

impl<B: QueueAdmin> QueueAdmin for QueueRouter<B> {
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        on_queue!(self, id.queue(), cancel(id))
    }

    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, id.queue(), retry_dead(id))
    }

    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        on_queue!(self, queue, purge_dead(queue))
    }

    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, queue, pause(queue))
    }

    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, queue, resume(queue))
    }

    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, queue, set_policy(queue, policy))
    }

    fn policy<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueuePolicy, Error>> {
        on_queue!(self, queue, policy(queue))
    }

    fn breaker<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<BreakerInfo, Error>> {
        on_queue!(self, queue, breaker(queue))
    }

    fn set_breaker<'a>(&'a self, queue: &'a str, action: BreakerAction) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, queue, set_breaker(queue, action))
    }

    fn set_group_breaker<'a>(
        &'a self,
        queue: &'a str,
        group: &'a str,
        action: BreakerAction,
    ) -> BoxFuture<'a, Result<(), Error>> {
        on_queue!(self, queue, set_group_breaker(queue, group, action))
    }
}

impl<B: QueueHistory> QueueHistory for QueueRouter<B> {
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        on_queue!(self, queue, throughput(queue, minutes))
    }
}

impl<B: QueueEvents> QueueEvents for QueueRouter<B> {
    fn listen<'a>(&'a self, queue: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Listening, Error>> {
        on_queue!(self, queue, listen(queue, ttl))
    }

    /// A queue's cursor is its backend's: it is only ever read there.
    fn read_events<'a>(
        &'a self,
        queue: &'a str,
        after: &'a EventCursor,
        max: usize,
    ) -> BoxFuture<'a, Result<EventPage, Error>> {
        on_queue!(self, queue, read_events(queue, after, max))
    }

    fn event_waiter(&self, queue: &str) -> Result<Box<dyn Waiter>, Error> {
        self.at(self.index(queue)?).event_waiter(queue)
    }

    /// The router's own hub: its followers read each queue's events through
    /// the router, from that queue's backend.
    fn event_hub(&self) -> &EventHub {
        &self.inner.hub
    }
}
