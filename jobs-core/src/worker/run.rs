//! The fetch loop and the acknowledgement batcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::Backoff;
use super::inflight::InFlight;
use super::UnknownJobs;
use crate::queue::{FetchRequest, Finish, FinishResult, SharedQueue};
use crate::registry::JobDescriptor;

/// Everything the pool's tasks share.
pub(crate) struct Core {
    pub(crate) queue: SharedQueue,
    pub(crate) registry: HashMap<&'static str, &'static JobDescriptor>,
    pub(crate) queues: Vec<String>,
    pub(crate) weights: Option<Vec<u32>>,
    pub(crate) lease: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) max_retries: u32,
    pub(crate) unknown: UnknownJobs,
    pub(crate) fetch_batch: usize,
    pub(crate) job_backoff: HashMap<String, Backoff>,
    /// Values shared with every job ([`JobContext::data`](crate::JobContext::data)).
    pub(crate) data: Arc<crate::context::Extensions>,
    /// Metrics hooks, when the pool was built with `.metrics(..)`.
    pub(crate) metrics: Option<crate::metrics::PoolMetrics>,
    /// This pool's presence record (id, host, pid, queues, start).
    pub(crate) identity: crate::queue::WorkerInfo,
    pub(crate) inflight: InFlight,
    pub(crate) acks: mpsc::UnboundedSender<Finish>,
    /// Cancelled when the grace period is over: signals running jobs.
    pub(crate) hard: CancellationToken,
    /// Cancelled by `kill`: everything stops without reporting.
    pub(crate) killed: CancellationToken,
}

impl Core {
    /// The queue order of one fetch: as listed, or a weighted random order.
    fn order(&self) -> Vec<String> {
        let Some(weights) = &self.weights else { return self.queues.clone() };
        let mut left: Vec<(usize, u32)> = weights.iter().copied().enumerate().filter(|(_, w)| *w > 0).collect();
        let mut out = Vec::with_capacity(self.queues.len());
        let mut rng = rand::rng();
        while !left.is_empty() {
            let total: u64 = left.iter().map(|(_, w)| u64::from(*w)).sum();
            let mut pick = rng.random_range(0..total);
            let mut chosen = 0;
            for (i, (_, w)) in left.iter().enumerate() {
                if pick < u64::from(*w) {
                    chosen = i;
                    break;
                }
                pick -= u64::from(*w);
            }
            out.push(self.queues[left.remove(chosen).0].clone());
        }
        out
    }

    /// The backoff of one job name.
    pub(crate) fn backoff_for(&self, name: &str) -> &Backoff {
        self.job_backoff.get(name).unwrap_or(&self.backoff)
    }

    /// The longest an idle fetcher waits without a wake-up: a safety net for
    /// leases taken (and then abandoned) after its last fetch.
    fn idle_cap(&self) -> Duration {
        (self.lease / 2).min(Duration::from_secs(15))
    }
}

/// Takes jobs as worker slots free up; idles on the backend's wake-up or the
/// next due time.
pub(crate) async fn fetch_loop(core: Arc<Core>, sem: Arc<Semaphore>, tracker: TaskTracker, stop: CancellationToken) {
    let mut waiter = match core.queue.waiter(&core.queues) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "worker pool cannot wait for jobs; it stops");
            return;
        }
    };
    let mut err_delay = Duration::from_millis(100);
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let mut permits = vec![first];
        while permits.len() < core.fetch_batch {
            match sem.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        waiter.arm();
        let req = FetchRequest {
            queues: core.order(),
            max: permits.len(),
            lease: core.lease,
            default_max_retries: core.max_retries,
        };
        // A fetch is never abandoned half way: the jobs it leased run (or are
        // handed back at shutdown) rather than waiting out their lease.
        match core.queue.fetch(&req).await {
            Err(e) => {
                drop(permits);
                tracing::warn!(error = %e, retry_in = ?err_delay, "fetch failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(err_delay) => {}
                }
                err_delay = (err_delay * 2).min(Duration::from_secs(5));
            }
            Ok(fetched) => {
                err_delay = Duration::from_millis(100);
                let got = fetched.jobs.len();
                for job in fetched.jobs {
                    let Some(permit) = permits.pop() else { break };
                    tracker.spawn(super::exec::execute(core.clone(), job, permit));
                }
                drop(permits);
                if got == 0 {
                    let now = SystemTime::now();
                    let wait = fetched
                        .next_due
                        .map(|t| t.duration_since(now).unwrap_or_default())
                        .unwrap_or(Duration::MAX)
                        .min(core.idle_cap());
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        r = waiter.wait(wait) => if let Err(e) = r {
                            tracing::warn!(error = %e, "waiting for jobs failed");
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = tokio::time::sleep(err_delay) => {}
                            }
                        },
                    }
                }
            }
        }
    }
}

/// Sends finished attempts to the backend in batches. A failed call is
/// retried with backoff: a result is given up only when the pool is killed
/// (the job then runs again after its lease: at least once).
pub(crate) async fn ack_loop(
    queue: SharedQueue,
    mut rx: mpsc::UnboundedReceiver<Finish>,
    closing: CancellationToken,
    killed: CancellationToken,
) {
    let mut buf = Vec::with_capacity(512);
    loop {
        let closed = tokio::select! {
            biased;
            _ = killed.cancelled() => return,
            n = rx.recv_many(&mut buf, 512) => n == 0,
            _ = closing.cancelled() => {
                while let Ok(f) = rx.try_recv() {
                    buf.push(f);
                }
                true
            }
        };
        if !buf.is_empty() {
            let batch = std::mem::take(&mut buf);
            let mut delay = Duration::from_millis(50);
            loop {
                match queue.finish(batch.clone()).await {
                    Ok(results) => {
                        for (f, r) in batch.iter().zip(results) {
                            if r == FinishResult::Stale {
                                tracing::warn!(job = %f.id, "result refused: the lease expired and the job was taken again");
                            }
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, jobs = batch.len(), retry_in = ?delay, "could not record results");
                        tokio::select! {
                            _ = killed.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        if closed {
            return;
        }
    }
}
