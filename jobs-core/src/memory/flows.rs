//! Workflows and batches of [`MemoryQueue`]: the flow book behind the same
//! lock as the jobs, and the record of ended members (`Finished::flow_out`)
//! filled in the same step as each end.

use std::time::{Duration, SystemTime};

use super::{MemoryQueue, MemoryWaiter};
use crate::error::Error;
use crate::queue::{
    BoxFuture, CancelledMembers, FlowInfo, FlowKind, FlowMember, FlowPlace, FlowStore, FlowSummary, MemberEnd,
    MemberInfo, MemberStatus, NewFlow, Release, Waiter,
};
use crate::vocab::JobId;

impl MemoryQueue {
    fn flows_changed(&self) {
        self.shared.flows.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Runs `f` on the flow book; notifies flow waiters when it changed.
    fn with_book<T>(&self, f: impl FnOnce(&mut super::book::FlowBook, SystemTime) -> T) -> T {
        let now = self.clock();
        let (out, changed) = {
            let mut st = self.lock();
            let before = st.flows.changes;
            let out = f(&mut st.flows, now);
            (out, st.flows.changes != before)
        };
        if changed {
            self.flows_changed();
        }
        out
    }
}

fn ready<T: Send + 'static>(v: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(v))
}

impl FlowStore for MemoryQueue {
    fn create_flow(&self, flow: NewFlow) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        ready(self.with_book(|b, now| b.create(flow, now)).map_err(Error::from))
    }

    fn add_members<'a>(
        &'a self,
        flow: &'a str,
        members: Vec<FlowMember>,
        close: bool,
    ) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        ready(self.with_book(|b, now| b.add(flow, members, close, now)).map_err(Error::from))
    }

    fn close_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        ready(self.with_book(|b, now| b.close(flow, now)).map_err(Error::from))
    }

    fn members_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        ready(Ok(self.with_book(|b, now| b.ended_members(ends, now))))
    }

    fn members_released<'a>(&'a self, released: &'a [Release]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        ready(Ok(self.with_book(|b, _| b.released(released))))
    }

    fn stale_releases(&self, older_than: Duration, max: usize) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        ready(Ok(self.with_book(|b, now| b.stale(older_than, max, now))))
    }

    fn take_ended<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        claim: Duration,
    ) -> BoxFuture<'a, Result<Vec<MemberEnd>, Error>> {
        let now = self.clock();
        let mut st = self.lock();
        let st = &mut *st;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, visible) in st.finished.flow_out.iter_mut() {
            if out.len() >= max {
                break;
            }
            if *visible > now || !queues.iter().any(|q| q == id.queue()) {
                continue;
            }
            let end = st.jobs.get(id).and_then(|r| {
                let place = FlowPlace::from_headers(&r.job.headers)?;
                Some(MemberEnd {
                    flow: place.flow,
                    member: place.member,
                    job: id.clone(),
                    status: MemberStatus::of_job(r.status)?,
                    result: r.result.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
                })
            });
            match end {
                Some(e) => {
                    *visible = now + claim;
                    out.push(e);
                }
                // Deleted, or live again (a dead job retried): nothing to apply.
                None => gone.push(id.clone()),
            }
        }
        for id in gone {
            st.finished.flow_out.remove(&id);
        }
        ready(Ok(out))
    }

    fn ack_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<(), Error>> {
        let mut st = self.lock();
        for e in ends {
            st.finished.flow_out.remove(&e.job);
        }
        ready(Ok(()))
    }

    fn mark_cancelled<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Option<CancelledMembers>, Error>> {
        ready(Ok(self.with_book(|b, now| b.cancel(flow, now))))
    }

    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        Box::pin(crate::queue::cancel_each(self, jobs))
    }

    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        ready(Ok(self.lock().flows.info(id)))
    }

    fn flow_summary<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowSummary>, Error>> {
        ready(Ok(self.lock().flows.summary(id)))
    }

    fn flow_page<'a>(
        &'a self,
        id: &'a str,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        ready(Ok(self.lock().flows.page(id, offset, limit)))
    }

    fn flow_member<'a>(&'a self, id: &'a str, member: &'a str) -> BoxFuture<'a, Result<Option<MemberInfo>, Error>> {
        ready(Ok(self.lock().flows.member(id, member)))
    }

    fn flows(
        &self,
        kind: Option<FlowKind>,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<FlowSummary>, Error>> {
        ready(Ok(self.lock().flows.list(kind, offset, limit)))
    }

    fn flow_waiter(&self) -> Result<Box<dyn Waiter>, Error> {
        Ok(Box::new(MemoryWaiter { rx: self.shared.flows.subscribe() }))
    }
}
