//! Helpers of the suite: a runtime, unique queue names, probes that record
//! what jobs did, and waiting on a condition with a deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::context::JobContext;
use crate::queue::{JobInfo, JobQueue, QueueInspect};
use crate::vocab::{JobId, JobStatus};
use crate::worker::{Backoff, WorkerPool, WorkerPoolBuilder};

/// How long a test waits for a condition before it fails: generous, since
/// CI machines are slow; a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs an async test on a fresh multi-thread runtime.
pub fn run<F: Future<Output = ()>>(f: F) {
    super::use_suite_jobs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a test runtime starts");
    rt.block_on(f);
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A queue name no other test uses (tests may share one server).
pub fn unique_queue(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt = ulid::Ulid::new().to_string().to_lowercase();
    format!("t.{tag}.{n}.{}", &salt[20..])
}

/// A pool builder for tests: fast retries without jitter, short grace.
pub fn test_pool<Q: JobQueue>(queue: Q, queues: &[&str]) -> WorkerPoolBuilder {
    super::use_suite_jobs();
    WorkerPool::builder(queue)
        .queues(queues.iter().copied())
        .workers(4)
        .lease(Duration::from_secs(5))
        .grace_period(Duration::from_secs(10))
        .backoff(Backoff {
            base: Duration::from_millis(20),
            factor: 2.0,
            cap: Duration::from_millis(200),
            jitter: false,
        })
}

/// Waits until `cond` holds, checking every 5 ms; panics with `what` at the
/// deadline.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `get` returns `Some`, checking every 5 ms; panics with `what`
/// at the deadline.
pub async fn eventually_some<T, F, Fut>(what: &str, mut get: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = get().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the job has `status`, then returns its info.
pub async fn wait_status<Q: QueueInspect + ?Sized>(q: &Q, id: &JobId, status: JobStatus) -> JobInfo {
    let start = Instant::now();
    loop {
        let info = q.job(id).await.expect("job() works");
        if let Some(i) = &info {
            if i.status == status {
                return info.expect("checked above");
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {id} to be {status}; it is {:?}",
            info.map(|i| (i.status, i.attempts, i.attempt_log))
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One recorded start of a probe job.
#[derive(Debug, Clone)]
pub struct Start {
    /// The payload's sequence number.
    pub seq: u64,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The job's id.
    pub id: JobId,
    /// Global start order across all probes.
    pub order: u64,
    /// When it started.
    pub at: Instant,
    /// Queue the context named.
    pub queue: String,
    /// Retries the context reported.
    pub max_retries: u32,
    /// The [`ProbeTag`] a layer gave the attempt, if one did.
    pub tag: Option<String>,
}

/// A value a layer may add to an attempt's extensions; probe jobs record
/// it in their [`Start`], so a case sees what reached the job.
#[derive(Debug, Clone)]
pub struct ProbeTag(pub String);

#[derive(Default)]
struct ProbeData {
    starts: Vec<Start>,
    ends: Vec<u64>,
    cancels: Vec<u64>,
    stops: Vec<u64>,
    /// Runs started and not stopped yet, and the most there ever were.
    running: usize,
    peak: usize,
}

/// Records a stop of a probe job's run when dropped.
pub struct StopGuard {
    probe: Arc<Probe>,
    seq: u64,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut d = self.probe.data();
        d.stops.push(self.seq);
        d.running = d.running.saturating_sub(1);
    }
}

/// What the probe jobs of one test did.
#[derive(Default)]
pub struct Probe {
    data: Mutex<ProbeData>,
}

static PROBES: LazyLock<Mutex<HashMap<String, Arc<Probe>>>> = LazyLock::new(Default::default);
static ORDER: AtomicU64 = AtomicU64::new(0);

/// The probe of `key` (created on first use).
pub fn probe(key: &str) -> Arc<Probe> {
    PROBES.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_owned()).or_default().clone()
}

impl Probe {
    fn data(&self) -> std::sync::MutexGuard<'_, ProbeData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn started(&self, seq: u64, ctx: &JobContext) {
        let order = ORDER.fetch_add(1, Ordering::SeqCst);
        let mut d = self.data();
        d.running += 1;
        d.peak = d.peak.max(d.running);
        d.starts.push(Start {
            seq,
            attempt: ctx.attempt(),
            id: ctx.job_id().clone(),
            order,
            at: Instant::now(),
            queue: ctx.queue().to_owned(),
            max_retries: ctx.max_retries(),
            tag: ctx.extension::<ProbeTag>().map(|t| t.0.clone()),
        });
    }

    pub(crate) fn stop_guard(self: &Arc<Self>, seq: u64) -> StopGuard {
        StopGuard { probe: self.clone(), seq }
    }

    pub(crate) fn ended(&self, seq: u64) {
        self.data().ends.push(seq);
    }

    pub(crate) fn saw_cancel(&self, seq: u64) {
        self.data().cancels.push(seq);
    }

    /// Every start so far, in order.
    pub fn starts(&self) -> Vec<Start> {
        self.data().starts.clone()
    }

    /// The most runs of probe jobs (of this key) that were under way at
    /// once: each counts from its start until it stopped (returned or
    /// was dropped), which lies within its lease.
    pub fn peak_running(&self) -> usize {
        self.data().peak
    }

    /// How many attempts started.
    pub fn start_count(&self) -> usize {
        self.data().starts.len()
    }

    /// Sequence numbers of attempts that ran to their end.
    pub fn ends(&self) -> Vec<u64> {
        self.data().ends.clone()
    }

    /// Sequence numbers of runs that stopped: returned, or were dropped.
    pub fn stops(&self) -> Vec<u64> {
        self.data().stops.clone()
    }

    /// Sequence numbers of jobs that saw `JobContext::cancelled()` resolve.
    pub fn cancels(&self) -> Vec<u64> {
        self.data().cancels.clone()
    }
}
