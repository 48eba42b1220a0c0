//! Workflows and batches over a router: the flows' records on the default
//! backend, each queue's record of ended members on the queue's backend.

use std::time::Duration;

use crate::error::Error;
use crate::queue::{
    BoxFuture, CancelledMembers, FlowInfo, FlowKind, FlowMember, FlowStore, FlowSummary, MemberEnd, MemberInfo,
    NewFlow, Release, Waiter,
};
use crate::vocab::JobId;

use super::QueueRouter;

impl<B: FlowStore> QueueRouter<B> {
    /// Items grouped by the backend of their queue, in backend order.
    fn by_backend<T: Clone>(&self, items: &[T], queue: impl Fn(&T) -> &str) -> Result<Vec<(usize, Vec<T>)>, Error> {
        let mut groups: Vec<(usize, Vec<T>)> = Vec::new();
        for item in items {
            let i = self.index(queue(item))?;
            match groups.iter_mut().find(|(b, _)| *b == i) {
                Some((_, v)) => v.push(item.clone()),
                None => groups.push((i, vec![item.clone()])),
            }
        }
        groups.sort_by_key(|(i, _)| *i);
        Ok(groups)
    }
}

impl<B: FlowStore> FlowStore for QueueRouter<B> {
    fn create_flow(&self, flow: NewFlow) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        self.default_backend().create_flow(flow)
    }

    fn add_members<'a>(
        &'a self,
        flow: &'a str,
        members: Vec<FlowMember>,
        close: bool,
    ) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        self.default_backend().add_members(flow, members, close)
    }

    fn close_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        self.default_backend().close_flow(flow)
    }

    fn members_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        self.default_backend().members_ended(ends)
    }

    fn members_released<'a>(&'a self, released: &'a [Release]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        self.default_backend().members_released(released)
    }

    fn stale_releases(&self, older_than: Duration, max: usize) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        self.default_backend().stale_releases(older_than, max)
    }

    fn take_ended<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        claim: Duration,
    ) -> BoxFuture<'a, Result<Vec<MemberEnd>, Error>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (i, qs) in self.by_backend(queues, |q| q.as_str())? {
                if out.len() >= max {
                    break;
                }
                out.extend(self.at(i).take_ended(&qs, max - out.len(), claim).await?);
            }
            Ok(out)
        })
    }

    fn ack_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for (i, part) in self.by_backend(ends, |e| e.job.queue())? {
                self.at(i).ack_ended(&part).await?;
            }
            Ok(())
        })
    }

    fn mark_cancelled<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Option<CancelledMembers>, Error>> {
        self.default_backend().mark_cancelled(flow)
    }

    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            let mut ended = Vec::new();
            for (i, part) in self.by_backend(jobs, |j| j.queue())? {
                ended.extend(self.at(i).cancel_jobs(&part).await?);
            }
            Ok(ended)
        })
    }

    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        self.default_backend().flow(id)
    }

    fn flow_summary<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowSummary>, Error>> {
        self.default_backend().flow_summary(id)
    }

    fn flow_page<'a>(
        &'a self,
        id: &'a str,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        self.default_backend().flow_page(id, offset, limit)
    }

    fn flow_member<'a>(&'a self, id: &'a str, member: &'a str) -> BoxFuture<'a, Result<Option<MemberInfo>, Error>> {
        self.default_backend().flow_member(id, member)
    }

    fn flows(
        &self,
        kind: Option<FlowKind>,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<FlowSummary>, Error>> {
        self.default_backend().flows(kind, offset, limit)
    }

    fn flow_waiter(&self) -> Result<Box<dyn Waiter>, Error> {
        self.default_backend().flow_waiter()
    }
}
