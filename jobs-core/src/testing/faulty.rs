//! A backend wrapper that injects faults into chosen calls, so the suite can
//! show that one slow or failing part never holds up another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::queue::{
    forward_fns, Backend, BoxFuture, Finish, FinishResult, JobQueue, Outcome, PoolInfo, PoolPresence, QueueAdmin,
    QueueHistory, QueueInspect, ScheduleStore,
};

/// `Q` with faults switched on and off at run time; clones share them.
#[derive(Clone)]
pub struct Faulty<Q> {
    inner: Q,
    presence_delay_ms: Arc<AtomicU64>,
    /// Presence reports land late even when their caller stops waiting,
    /// carried by this runtime (which outlives a pool's heartbeat).
    presence_detached: Arc<std::sync::OnceLock<tokio::runtime::Handle>>,
    /// Presence reports sent, and those not landed yet.
    presence_sent: Arc<AtomicU64>,
    presence_in_flight: Arc<AtomicU64>,
    no_flows: Arc<AtomicBool>,
    release_delay_ms: Arc<AtomicU64>,
    /// Finish calls sent with a job handed back in them.
    releases_sent: Arc<AtomicU64>,
}

impl<Q: Backend + Clone> Faulty<Q> {
    /// `inner`, with no fault yet.
    pub fn new(inner: Q) -> Self {
        Faulty {
            inner,
            presence_delay_ms: Arc::new(AtomicU64::new(0)),
            presence_detached: Arc::default(),
            presence_sent: Arc::default(),
            presence_in_flight: Arc::default(),
            no_flows: Arc::default(),
            release_delay_ms: Arc::default(),
            releases_sent: Arc::default(),
        }
    }

    /// Hides the backend's flow store: the wrapper is a backend that stores
    /// no workflows or batches (for the answers to that).
    pub fn without_flows(self) -> Self {
        self.no_flows.store(true, Ordering::Relaxed);
        self
    }

    /// Makes every presence report (`report_pool`) take `d` before it
    /// reaches the backend: a slow node holding the pools' index.
    pub fn delay_presence(&self, d: Duration) {
        self.presence_delay_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Makes every presence report reach the backend `d` after it is sent,
    /// even when its caller stops waiting for it first: a command already
    /// on its way over one connection, while the next goes over another.
    /// The reports travel on the Tokio runtime this is called from (it
    /// panics outside one).
    pub fn land_presence_late(&self, d: Duration) {
        self.delay_presence(d);
        let _ = self.presence_detached.set(tokio::runtime::Handle::current());
    }

    /// Makes every `finish` call that hands a job back
    /// ([`Outcome::Release`](crate::queue::Outcome::Release)) take `d` before
    /// it reaches the backend: a hand-back slow to land.
    pub fn delay_releases(&self, d: Duration) {
        self.release_delay_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// `finish` calls sent so far that hand a job back.
    pub fn releases_sent(&self) -> u64 {
        self.releases_sent.load(Ordering::Relaxed)
    }

    /// Presence reports sent so far.
    pub fn presence_sent(&self) -> u64 {
        self.presence_sent.load(Ordering::Relaxed)
    }

    /// Presence reports sent that have not reached the backend yet.
    pub fn presence_in_flight(&self) -> u64 {
        self.presence_in_flight.load(Ordering::Relaxed)
    }
}

impl<Q: Backend + Clone> JobQueue for Faulty<Q> {
    forward_fns!(s => &s.inner; enqueue_many, fetch, extend_leases, report_progress, waiter, now, payload_format, archive);

    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        let releases = batch.iter().any(|f| matches!(f.outcome, Outcome::Release { .. }));
        let delay = Duration::from_millis(self.release_delay_ms.load(Ordering::Relaxed));
        if releases {
            self.releases_sent.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(async move {
            if releases && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.inner.finish(batch).await
        })
    }

    fn flow_store(&self) -> Option<Arc<dyn crate::queue::FlowStore>> {
        if self.no_flows.load(Ordering::Relaxed) {
            None
        } else {
            self.inner.flow_store()
        }
    }

    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        Some(Arc::new(self.clone()))
    }

    /// Itself: its presence reports are the ones it delays.
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        Some(Arc::new(self.clone()))
    }
}

impl<Q: Backend + Clone> PoolPresence for Faulty<Q> {
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let delay = Duration::from_millis(self.presence_delay_ms.load(Ordering::Relaxed));
        self.presence_sent.fetch_add(1, Ordering::Relaxed);
        if let Some(rt) = self.presence_detached.get() {
            // On its way: it lands whether or not anyone waits for it.
            self.presence_in_flight.fetch_add(1, Ordering::Relaxed);
            let (inner, in_flight) = (self.inner.clone(), self.presence_in_flight.clone());
            let landed = rt.spawn(async move {
                tokio::time::sleep(delay).await;
                let r = inner.report_pool(info, ttl).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                r
            });
            return Box::pin(async move {
                landed.await.unwrap_or_else(|e| Err(Error::InvalidArgument(format!("the report's task failed: {e}"))))
            });
        }
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.inner.report_pool(info, ttl).await
        })
    }
    forward_fns!(s => &s.inner; remove_pool, pools);
}

impl<Q: Backend + Clone> ScheduleStore for Faulty<Q> {
    forward_fns!(s => &s.inner; put_schedule, schedules, remove_schedule, set_schedule_paused, fire_schedule);
}

impl<Q: Backend + Clone> QueueInspect for Faulty<Q> {
    forward_fns!(s => &s.inner; job, stats, dead_jobs, list_jobs, groups);
}

impl<Q: Backend + Clone> QueueAdmin for Faulty<Q> {
    forward_fns!(s => &s.inner; cancel, retry_dead, purge_dead, pause, resume, set_policy, policy, breaker, set_breaker, set_group_breaker);
}

impl<Q: Backend + Clone> QueueHistory for Faulty<Q> {
    forward_fns!(s => &s.inner; throughput);
}

impl<Q: Backend + Clone> crate::queue::QueueEvents for Faulty<Q> {
    forward_fns!(s => &s.inner; listen, read_events, event_waiter, event_hub);
}
