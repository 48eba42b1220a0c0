//! The hot path over a router: each call split by the backend of each
//! queue or job, the parts sent on, the answers put back in order.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::payload::PayloadFormat;
use crate::queue::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, JobQueue, LeaseState, NewJob, PoolPresence, ProgressUpdate,
    ProgressWrite, QueueFailure, ScheduleStore, Waiter,
};
use crate::vocab::JobId;

use super::waiter::AnyWaiter;
use super::QueueRouter;

/// Items split by backend: per backend index (in index order), the
/// positions of its items in the original list and the items.
type Parts<T> = Vec<(usize, Vec<usize>, Vec<T>)>;

impl<B> QueueRouter<B> {
    /// Splits `items` by the backend of the queue `queue_of` names.
    pub(super) fn split<T>(&self, items: Vec<T>, queue_of: impl Fn(&T) -> &str) -> Result<Parts<T>, Error> {
        let mut parts: Parts<T> = Vec::new();
        for (pos, item) in items.into_iter().enumerate() {
            let i = self.index(queue_of(&item))?;
            match parts.iter_mut().find(|(b, _, _)| *b == i) {
                Some((_, at, part)) => {
                    at.push(pos);
                    part.push(item);
                }
                None => parts.push((i, vec![pos], vec![item])),
            }
        }
        parts.sort_by_key(|(b, _, _)| *b);
        Ok(parts)
    }

    /// Sends each part to its backend with `call` and puts the answers back
    /// in the items' order.
    async fn scatter<T, R, F>(&self, len: usize, parts: Parts<T>, call: F) -> Result<Vec<R>, Error>
    where
        F: for<'b> Fn(&'b B, Vec<T>) -> BoxFuture<'b, Result<Vec<R>, Error>>,
    {
        let mut out: Vec<Option<R>> = (0..len).map(|_| None).collect();
        for (i, at, part) in parts {
            let answers = call(self.at(i), part).await?;
            for (pos, r) in at.into_iter().zip(answers) {
                out[pos] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| Error::Backend("a backend answered fewer items than it was sent".into())))
            .collect()
    }

    /// The request's queues as consecutive runs on one backend, in order:
    /// `[a1, b1, a2]` is three runs, so strict queue order holds across
    /// backends. A queue that cannot be routed is a failure of its own.
    fn runs(&self, queues: &[String], failed: &mut Vec<QueueFailure>) -> Vec<(usize, Vec<String>)> {
        let mut runs: Vec<(usize, Vec<String>)> = Vec::new();
        for q in queues {
            match self.index(q) {
                Ok(i) => match runs.last_mut() {
                    Some((last, run)) if *last == i => run.push(q.clone()),
                    _ => runs.push((i, vec![q.clone()])),
                },
                Err(e) => failed.push(QueueFailure { queue: q.clone(), error: e.to_string() }),
            }
        }
        runs
    }
}

impl<B: JobQueue> QueueRouter<B> {
    async fn fetch_runs(&self, req: &FetchRequest) -> Result<Fetched, Error> {
        let mut out = Fetched::default();
        let runs = self.runs(&req.queues, &mut out.failed);
        let (mut failures, total) = (0, runs.len());
        let mut first_error = None;
        for (i, queues) in runs {
            // A backend whose queues come after a full batch is still asked,
            // for no jobs: it promotes, reclaims and reports its next due
            // time all the same.
            let part = FetchRequest { queues, max: req.max.saturating_sub(out.jobs.len()), ..req.clone() };
            match self.at(i).fetch(&part).await {
                Ok(f) => out.absorb(f),
                Err(e) => {
                    let error = e.to_string();
                    out.failed
                        .extend(part.queues.into_iter().map(|queue| QueueFailure { queue, error: error.clone() }));
                    failures += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if failures == total && out.jobs.is_empty() => Err(e),
            _ => Ok(out),
        }
    }
}

impl<B: JobQueue> JobQueue for QueueRouter<B> {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            let len = jobs.len();
            let parts = self.split(jobs, NewJob::queue)?;
            if let [(i, _, _)] = parts.as_slice() {
                let i = *i;
                let jobs = parts.into_iter().flat_map(|(_, _, p)| p).collect();
                return self.at(i).enqueue_many(jobs).await;
            }
            self.scatter(len, parts, |b, part| b.enqueue_many(part)).await
        })
    }

    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        Box::pin(self.fetch_runs(req))
    }

    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        Box::pin(async move {
            let len = batch.len();
            let parts = self.split(batch, |f| f.id.queue())?;
            self.scatter(len, parts, |b, part| b.finish(part)).await
        })
    }

    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        Box::pin(async move {
            let parts = self.split(leases.to_vec(), |(id, _)| id.queue())?;
            let len = leases.len();
            // The backends borrow their part for the call only.
            let mut out: Vec<Option<LeaseState>> = vec![None; len];
            for (i, at, part) in parts {
                let states = self.at(i).extend_leases(&part, lease).await?;
                for (pos, s) in at.into_iter().zip(states) {
                    out[pos] = Some(s);
                }
            }
            out.into_iter()
                .map(|s| s.ok_or_else(|| Error::Backend("a backend answered fewer leases than it was sent".into())))
                .collect()
        })
    }

    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
        Box::pin(async move { self.at(self.index(update.id.queue())?).report_progress(update).await })
    }

    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        let parts = self.split(queues.to_vec(), String::as_str)?;
        if parts.len() <= 1 {
            let (i, part) = parts.into_iter().next().map_or((0, Vec::new()), |(i, _, p)| (i, p));
            return self.at(i).waiter(&part);
        }
        let waiters = parts.into_iter().map(|(i, _, part)| self.at(i).waiter(&part)).collect::<Result<_, _>>()?;
        Ok(Box::new(AnyWaiter(waiters)))
    }

    /// The default backend's clock: the scheduler decides which ticks are
    /// due by it. Leases and due times stay on each backend's own clock.
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        self.default_backend().now()
    }

    /// The default backend's preference: every backend reads both formats.
    fn payload_format(&self) -> PayloadFormat {
        self.default_backend().payload_format()
    }

    /// A router over every backend's schedule store, when all have one.
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        let stores = self.map(|b| b.schedule_store())?;
        Some(Arc::new(stores))
    }

    /// A router over every backend's presence records, when all keep them.
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        let records = self.map(|b| b.presence())?;
        Some(Arc::new(records))
    }

    /// A router over every backend's archive backlogs, when all keep them.
    fn archive(&self) -> Option<Arc<dyn crate::queue::ArchiveBacklog>> {
        let backlogs = self.map(|b| b.archive())?;
        Some(Arc::new(backlogs))
    }

    /// A router over every backend's flow store, when all have one: flows
    /// on the default backend, ended steps on their queue's.
    fn flow_store(&self) -> Option<Arc<dyn crate::queue::FlowStore>> {
        let stores = self.map(|b| b.flow_store())?;
        Some(Arc::new(stores))
    }
}
