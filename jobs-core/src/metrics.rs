//! [`JobMetrics`]: Prometheus metrics of producers, worker pools and queues.
//!
//! One `JobMetrics` holds every metric in the table below in a Prometheus
//! [`Registry`] (yours, or one it creates), under a configurable prefix
//! (default `jobs_`). Clones share the same metrics. Who updates what:
//!
//! | metric | labels | updated by |
//! | --- | --- | --- |
//! | `jobs_enqueued_total` | `job`, `queue`, `priority` | producers, through [`JobMetrics::instrument`] ([`Metered`]) |
//! | `jobs_processed_total` | `job`, `queue`, `status` | pools built with `WorkerPoolBuilder::metrics`, one per attempt |
//! | `jobs_duration_seconds` (histogram) | `job`, `queue` | pools: the run time of each attempt |
//! | `jobs_retries_total` | `job`, `queue` | pools: failed attempts that will run again |
//! | `jobs_dead_total` | `job`, `queue` | pools: jobs moved to the dead-letter set |
//! | `jobs_snoozed_total` | `job`, `queue` | pools: runs that snoozed (`JobError::retry_in`), no attempt spent |
//! | `jobs_expired_total` | `job`, `queue` | pools: jobs their fetch found past their expiry, ended without running |
//! | `jobs_active_workers` | | pools: worker slots running a job now |
//! | `jobs_worker_slots` | | pools: worker slots of running pools (`active / slots` is the utilisation) |
//! | `jobs_queue_size` | `queue`, `priority`, `state` | [`JobMetrics::record_queue_stats`], from the backend's `stats()` when scraped |
//! | `jobs_limited_total` | `queue` | [`JobMetrics::record_queue_stats`]: times jobs that could start waited for a concurrency bound (`max_running`, a group's `concurrency`) |
//! | `jobs_throttled_total` | `queue` | [`JobMetrics::record_queue_stats`]: times jobs waited for a rate (the queue's, a group's, or `JobError::rate_limited`) |
//! | `jobs_breaker_open` | `queue` | [`JobMetrics::record_queue_stats`]: 1 while the queue's circuit breaker is open or probing |
//! | `jobs_breaker_opened_total` | `queue` | [`JobMetrics::record_queue_stats`]: times the queue's breaker opened |
//! | `jobs_group_breakers_open` | `queue` | [`JobMetrics::record_queue_stats`]: groups of the queue whose own breaker is open or probing |
//! | `jobs_group_breakers_opened_total` | `queue` | [`JobMetrics::record_queue_stats`]: times a group's breaker opened |
//! | `jobs_handed_total` | `queue` | [`JobMetrics::record_queue_stats`]: jobs an enqueue leased to an idle pool in its own step (Redis) |
//! | `jobs_archive_backlog` | `queue` | a pool's archiver: entries of the queue's archive backlog not yet written to the sink |
//! | `jobs_archived_total` | `queue` | a pool's archiver: deleted jobs written to the archive sink |
//! | `jobs_sandbox_restarts_total` | | pools: sandbox children that died or were killed (a crash, a limit, a timeout, a cancellation) and were replaced |
//! | `jobs_backend_up` | | 1 when the last `stats()` call succeeded, 0 when it failed |
//! | `jobs_schedule_lateness_seconds` (histogram) | | the scheduler: how late a recurring job was enqueued |
//!
//! `status` is `succeeded`, `failed` (the attempt failed and the job will be
//! retried) or `dead` (the attempt failed and the job is out of attempts, or
//! failed permanently, or its name is unknown). `state` is `pending`,
//! `scheduled`, `running`, `retrying` or `dead`. Labels stay bounded: job
//! names, queue names, priorities and fixed words, never a job id.
//!
//! Queue sizes are not polled by a loop: the `/metrics` handler of `jobs-web`
//! reads the backend's `stats()` when Prometheus scrapes, through a short cache
//! (2 s by default) shared with the health endpoints, and hands the result to
//! [`JobMetrics::record_queue_stats`]. With your own exporter, call
//! [`JobMetrics::update_queue_sizes`] before encoding.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use jobs_core::{JobMetrics, MemoryQueue, WorkerPool};
//! let metrics = JobMetrics::new();
//! // Producers enqueue through the metered queue; it is a `JobQueue` itself.
//! let queue = metrics.instrument(MemoryQueue::new());
//! metrics.update_queue_sizes(&queue).await?;
//! let text = metrics.encode()?;
//! assert!(text.contains("jobs_backend_up 1"));
//! # let _ = WorkerPool::builder(queue).metrics(&metrics); Ok(()) }
//! ```

mod metered;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `prometheus` crate these metrics are built with, for its `Registry`.
pub use prometheus;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub use metered::Metered;

use crate::error::Error;
use crate::queue::{Counts, JobQueue, NewJob, Outcome, QueueInspect, QueueStats};
use crate::vocab::Priority;

/// The prefix of every metric name unless another is given.
pub const DEFAULT_PREFIX: &str = "jobs_";

/// Buckets of `jobs_duration_seconds`: 5 ms to 10 min.
const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Buckets of `jobs_schedule_lateness_seconds`: 10 ms to 5 min.
const LATENESS_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Why the metrics could not be set up or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The prefix would make invalid metric names.
    #[error("invalid metrics prefix `{0}`: use letters, digits, `_` or `:`, not starting with a digit")]
    InvalidPrefix(String),
    /// The registry refused a metric (most often: one of the same name is
    /// registered already, e.g. a second `JobMetrics` with the same prefix).
    #[error("cannot register the job metrics: {0}")]
    Register(#[source] prometheus::Error),
    /// The text exposition could not be written.
    #[error("cannot encode the metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// The Prometheus metrics of the job system (see the [module docs](self)).
///
/// Cheap to clone: clones share the same metrics.
#[derive(Clone)]
pub struct JobMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    prefix: String,
    enqueued: IntCounterVec,
    processed: IntCounterVec,
    duration: HistogramVec,
    retries: IntCounterVec,
    dead: IntCounterVec,
    snoozed: IntCounterVec,
    expired: IntCounterVec,
    queue_size: IntGaugeVec,
    backend_up: IntGauge,
    active_workers: IntGauge,
    worker_slots: IntGauge,
    schedule_lateness: Histogram,
    /// The `jobs_queue_size` label sets set by the last `record_queue_stats`,
    /// so a queue that disappears from the stats loses its series.
    sizes_seen: Mutex<HashSet<[String; 3]>>,
    limited: IntCounterVec,
    throttled: IntCounterVec,
    /// The backend's held-back counters as last read, per queue: the
    /// Prometheus counters go up by what the backend's went up since.
    held_seen: Mutex<HashMap<String, [u64; 5]>>,
    breaker_open: IntGaugeVec,
    breaker_opened: IntCounterVec,
    group_breakers_open: IntGaugeVec,
    group_breakers_opened: IntCounterVec,
    handed: IntCounterVec,
    archive_backlog: IntGaugeVec,
    archived: IntCounterVec,
    sandbox_restarts: IntCounter,
}

impl std::fmt::Debug for JobMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobMetrics").field("prefix", &self.inner.prefix).finish_non_exhaustive()
    }
}

impl Default for JobMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks that `prefix` followed by `[a-z_]+` is a valid Prometheus name.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), MetricsError> {
    let ok = prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(MetricsError::InvalidPrefix(prefix.to_owned()))
    }
}

impl JobMetrics {
    /// The metrics with the default prefix (`jobs_`) in a registry of their own.
    pub fn new() -> Self {
        // A fresh registry holds no metric yet, so no name can clash, and the
        // default prefix is valid: registration cannot fail.
        #[allow(clippy::expect_used)]
        Self::with_registry(&Registry::new(), DEFAULT_PREFIX).expect("fresh registry and default prefix")
    }

    /// The metrics with `prefix` in a registry of their own.
    pub fn with_prefix(prefix: &str) -> Result<Self, MetricsError> {
        Self::with_registry(&Registry::new(), prefix)
    }

    /// The metrics with `prefix`, registered in `registry` (e.g. the one the
    /// rest of your application exports). Fails when the prefix is invalid
    /// or the registry holds metrics of these names already.
    pub fn with_registry(registry: &Registry, prefix: &str) -> Result<Self, MetricsError> {
        check_prefix(prefix)?;
        let name = |n: &str| format!("{prefix}{n}");
        let counter = |n: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name(n), help), labels).map_err(MetricsError::Register)
        };
        let gauge = |n: &str, help: &str| IntGauge::new(name(n), help).map_err(MetricsError::Register);
        let inner = Inner {
            registry: registry.clone(),
            prefix: prefix.to_owned(),
            enqueued: counter("enqueued_total", "Jobs enqueued.", &["job", "queue", "priority"])?,
            processed: counter(
                "processed_total",
                "Attempts finished, by status: succeeded, failed (will retry), dead.",
                &["job", "queue", "status"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(name("duration_seconds"), "Run time of one attempt.")
                    .buckets(DURATION_BUCKETS.to_vec()),
                &["job", "queue"],
            )
            .map_err(MetricsError::Register)?,
            retries: counter("retries_total", "Failed attempts scheduled to run again.", &["job", "queue"])?,
            dead: counter("dead_total", "Jobs moved to the dead-letter set.", &["job", "queue"])?,
            snoozed: counter(
                "snoozed_total",
                "Runs that snoozed (JobError::retry_in): due again later, no attempt spent.",
                &["job", "queue"],
            )?,
            expired: counter(
                "expired_total",
                "Jobs that expired before they started: ended by a pool's fetch, never run.",
                &["job", "queue"],
            )?,
            queue_size: IntGaugeVec::new(
                Opts::new(name("queue_size"), "Jobs in the backend, by queue, priority and state (when scraped)."),
                &["queue", "priority", "state"],
            )
            .map_err(MetricsError::Register)?,
            backend_up: gauge("backend_up", "1 when the last read of the backend's stats succeeded, else 0.")?,
            active_workers: gauge("active_workers", "Worker slots running a job now.")?,
            worker_slots: gauge("worker_slots", "Worker slots of the running pools.")?,
            schedule_lateness: Histogram::with_opts(
                HistogramOpts::new(
                    name("schedule_lateness_seconds"),
                    "How long after its due time a recurring job was enqueued.",
                )
                .buckets(LATENESS_BUCKETS.to_vec()),
            )
            .map_err(MetricsError::Register)?,
            sizes_seen: Mutex::new(HashSet::new()),
            limited: counter(
                "limited_total",
                "Times jobs that could start waited for a concurrency bound (max_running, a group's concurrency).",
                &["queue"],
            )?,
            throttled: counter(
                "throttled_total",
                "Times jobs waited for a rate (the queue's, a group's, or JobError::rate_limited).",
                &["queue"],
            )?,
            held_seen: Mutex::new(HashMap::new()),
            breaker_open: IntGaugeVec::new(
                Opts::new(name("breaker_open"), "1 while the queue's circuit breaker is open or probing."),
                &["queue"],
            )
            .map_err(MetricsError::Register)?,
            breaker_opened: counter("breaker_opened_total", "Times the queue's circuit breaker opened.", &["queue"])?,
            group_breakers_open: IntGaugeVec::new(
                Opts::new(name("group_breakers_open"), "Groups of the queue whose own breaker is open or probing."),
                &["queue"],
            )
            .map_err(MetricsError::Register)?,
            group_breakers_opened: counter(
                "group_breakers_opened_total",
                "Times a group's circuit breaker opened.",
                &["queue"],
            )?,
            handed: counter(
                "handed_total",
                "Jobs an enqueue leased to an idle pool in its own step (one hop).",
                &["queue"],
            )?,
            archive_backlog: IntGaugeVec::new(
                Opts::new(name("archive_backlog"), "Deleted jobs waiting in the queue's archive backlog."),
                &["queue"],
            )
            .map_err(MetricsError::Register)?,
            archived: counter("archived_total", "Deleted jobs written to the archive sink.", &["queue"])?,
            sandbox_restarts: IntCounter::new(
                name("sandbox_restarts_total"),
                "Sandbox children that died or were killed (a crash, a limit, a timeout, a cancellation) and were replaced.",
            )
            .map_err(MetricsError::Register)?,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(inner.enqueued.clone()),
            Box::new(inner.processed.clone()),
            Box::new(inner.duration.clone()),
            Box::new(inner.retries.clone()),
            Box::new(inner.dead.clone()),
            Box::new(inner.snoozed.clone()),
            Box::new(inner.expired.clone()),
            Box::new(inner.queue_size.clone()),
            Box::new(inner.backend_up.clone()),
            Box::new(inner.active_workers.clone()),
            Box::new(inner.worker_slots.clone()),
            Box::new(inner.schedule_lateness.clone()),
            Box::new(inner.limited.clone()),
            Box::new(inner.throttled.clone()),
            Box::new(inner.breaker_open.clone()),
            Box::new(inner.breaker_opened.clone()),
            Box::new(inner.group_breakers_open.clone()),
            Box::new(inner.group_breakers_opened.clone()),
            Box::new(inner.handed.clone()),
            Box::new(inner.archive_backlog.clone()),
            Box::new(inner.archived.clone()),
            Box::new(inner.sandbox_restarts.clone()),
        ];
        for c in collectors {
            registry.register(c).map_err(MetricsError::Register)?;
        }
        Ok(JobMetrics { inner: Arc::new(inner) })
    }

    /// The registry the metrics live in.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The prefix of every metric name.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Wraps a queue so that every job enqueued through it is counted in
    /// `jobs_enqueued_total`. The wrapper is a [`JobQueue`] itself: give it
    /// to producers (and, if you like, to pools: everything else passes
    /// through unchanged).
    pub fn instrument<Q: JobQueue>(&self, queue: Q) -> Metered<Q> {
        Metered::new(queue, self)
    }

    /// Counts one stored job in `jobs_enqueued_total` (what [`Metered`] does
    /// for each job a backend accepted; for producers that write otherwise).
    pub fn record_enqueued(&self, job: &NewJob) {
        self.count_enqueued(&job.name, job.queue(), job.priority);
    }

    fn count_enqueued(&self, job: &str, queue: &str, priority: Priority) {
        // As many values as labels: `with_label_values` cannot panic here.
        self.inner.enqueued.with_label_values(&[job, queue, priority.as_str()]).inc();
    }

    /// Records one finished attempt of a pool. `Release` (a hand-back) and
    /// `Started` (a mark) are not attempts and are not counted; a `Snooze`
    /// is counted in `jobs_snoozed_total` only.
    pub(crate) fn record_outcome(&self, job: &str, queue: &str, outcome: &Outcome, ran: Option<Duration>) {
        let status = match outcome {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Retry { .. } => "failed",
            Outcome::Dead { .. } => "dead",
            Outcome::Snooze { .. } => {
                self.inner.snoozed.with_label_values(&[job, queue]).inc();
                return;
            }
            Outcome::Release { .. } | Outcome::Started => return,
        };
        let i = &self.inner;
        // Every `with_label_values` below passes exactly as many values as
        // the metric was created with labels, so it cannot panic.
        i.processed.with_label_values(&[job, queue, status]).inc();
        if let Some(d) = ran {
            i.duration.with_label_values(&[job, queue]).observe(d.as_secs_f64());
        }
        match outcome {
            Outcome::Retry { .. } => i.retries.with_label_values(&[job, queue]).inc(),
            Outcome::Dead { .. } => i.dead.with_label_values(&[job, queue]).inc(),
            _ => {}
        }
    }

    /// Counts one job that a fetch ended expired in `jobs_expired_total`
    /// (what a pool does with [`Fetched::expired`](crate::queue::Fetched::expired)).
    pub fn record_expired(&self, job: &crate::queue::ExpiredJob) {
        self.inner.expired.with_label_values(&[job.name.as_str(), job.id.queue()]).inc();
    }

    /// Sets `jobs_archive_backlog` of a queue to `backlog` entries and adds
    /// `written` to its `jobs_archived_total` (what a pool's archiver does
    /// after each batch).
    pub fn record_archive(&self, queue: &str, backlog: u64, written: u64) {
        self.inner.archive_backlog.with_label_values(&[queue]).set(i64::try_from(backlog).unwrap_or(i64::MAX));
        if written > 0 {
            self.inner.archived.with_label_values(&[queue]).inc_by(written);
        }
    }

    /// Sets `jobs_queue_size` from a backend's stats (and `jobs_backend_up`
    /// to 1), and moves `jobs_limited_total` and `jobs_throttled_total` on
    /// by what the backend counted since the last call. Series of queues no
    /// longer in the stats are removed.
    pub fn record_queue_stats(&self, stats: &QueueStats) {
        let i = &self.inner;
        {
            let mut held = i.held_seen.lock().unwrap_or_else(|p| p.into_inner());
            for (queue, counts) in &stats.queues {
                let before = held.get(queue).copied().unwrap_or_default();
                let now = [
                    counts.limited,
                    counts.throttled,
                    counts.breaker_opened,
                    counts.group_breakers_opened,
                    counts.handed,
                ];
                // A backend whose counters went back (reset) counts from zero.
                let step = |k: usize| if now[k] >= before[k] { now[k] - before[k] } else { now[k] };
                let q = [queue.as_str()];
                i.limited.with_label_values(&q).inc_by(step(0));
                i.throttled.with_label_values(&q).inc_by(step(1));
                i.breaker_opened.with_label_values(&q).inc_by(step(2));
                i.group_breakers_opened.with_label_values(&q).inc_by(step(3));
                i.handed.with_label_values(&q).inc_by(step(4));
                i.breaker_open.with_label_values(&q).set(i64::from(counts.breaker_open));
                i.group_breakers_open
                    .with_label_values(&q)
                    .set(i64::try_from(counts.group_breakers_open).unwrap_or(i64::MAX));
                held.insert(queue.clone(), now);
            }
            held.retain(|queue, _| {
                let kept = stats.queues.contains_key(queue);
                if !kept {
                    let _ = i.limited.remove_label_values(&[queue.as_str()]);
                    let _ = i.throttled.remove_label_values(&[queue.as_str()]);
                    let _ = i.breaker_opened.remove_label_values(&[queue.as_str()]);
                    let _ = i.breaker_open.remove_label_values(&[queue.as_str()]);
                    let _ = i.group_breakers_opened.remove_label_values(&[queue.as_str()]);
                    let _ = i.group_breakers_open.remove_label_values(&[queue.as_str()]);
                    let _ = i.handed.remove_label_values(&[queue.as_str()]);
                }
                kept
            });
        }
        let mut now = HashSet::new();
        for (queue, counts) in &stats.queues {
            for p in Priority::ALL {
                let c = counts.by_priority.get(&p).copied().unwrap_or_default();
                for (state, n) in states(&c) {
                    let labels = [queue.clone(), p.as_str().to_owned(), state.to_owned()];
                    i.queue_size.with_label_values(&labels).set(i64::try_from(n).unwrap_or(i64::MAX));
                    now.insert(labels);
                }
            }
        }
        let mut seen = i.sizes_seen.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.difference(&now) {
            let _ = i.queue_size.remove_label_values(gone);
        }
        *seen = now;
        i.backend_up.set(1);
    }

    /// Records that the backend's stats could not be read: `jobs_backend_up`
    /// is 0 and the queue sizes, now unknown, are removed.
    pub fn record_backend_down(&self) {
        let i = &self.inner;
        i.queue_size.reset();
        i.sizes_seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
        i.backend_up.set(0);
    }

    /// Reads `queue.stats()` and records it (or records the backend as down
    /// and returns the error). One backend call: run it when scraped, not in
    /// a loop.
    pub async fn update_queue_sizes<Q: QueueInspect + ?Sized>(&self, queue: &Q) -> Result<QueueStats, Error> {
        match queue.stats().await {
            Ok(s) => {
                self.record_queue_stats(&s);
                Ok(s)
            }
            Err(e) => {
                self.record_backend_down();
                Err(e)
            }
        }
    }

    /// Records how late a recurring job was enqueued after its due time.
    pub fn observe_schedule_lateness(&self, late: Duration) {
        self.inner.schedule_lateness.observe(late.as_secs_f64());
    }

    /// The registry's metrics in the Prometheus text exposition format
    /// (content type [`prometheus::TEXT_FORMAT`]).
    pub fn encode(&self) -> Result<String, MetricsError> {
        prometheus::TextEncoder::new().encode_to_string(&self.inner.registry.gather()).map_err(MetricsError::Encode)
    }

    /// Counts one sandbox child that died or was killed.
    #[cfg(all(unix, feature = "sandbox"))]
    pub(crate) fn sandbox_restart(&self) {
        self.inner.sandbox_restarts.inc();
    }

    /// Per-pool bookkeeping: adds `workers` to `jobs_worker_slots` until the
    /// returned value is dropped (when the pool ends).
    pub(crate) fn pool(&self, workers: usize) -> PoolMetrics {
        let slots = i64::try_from(workers).unwrap_or(i64::MAX);
        self.inner.worker_slots.add(slots);
        PoolMetrics { metrics: self.clone(), slots }
    }
}

/// The queue-size states and their counts.
fn states(c: &Counts) -> [(&'static str, u64); 5] {
    [
        ("pending", c.pending),
        ("scheduled", c.scheduled),
        ("running", c.running),
        ("retrying", c.retrying),
        ("dead", c.dead),
    ]
}

/// A pool's handle on the metrics: its slots count in `jobs_worker_slots`
/// while it lives.
pub(crate) struct PoolMetrics {
    metrics: JobMetrics,
    slots: i64,
}

impl PoolMetrics {
    /// Counts one worker slot as busy until the guard is dropped.
    pub(crate) fn busy(&self) -> BusyGuard {
        self.metrics.inner.active_workers.inc();
        BusyGuard(self.metrics.inner.active_workers.clone())
    }

    /// Counts the jobs a fetch ended expired (see [`JobMetrics::record_expired`]).
    pub(crate) fn expired(&self, jobs: &[crate::queue::ExpiredJob]) {
        for j in jobs {
            self.metrics.record_expired(j);
        }
    }

    /// Records one finished attempt (see [`JobMetrics::record_outcome`]).
    pub(crate) fn finished(&self, job: &str, queue: &str, outcome: &Outcome, ran: Option<Duration>) {
        self.metrics.record_outcome(job, queue, outcome, ran);
    }
}

impl Drop for PoolMetrics {
    fn drop(&mut self) {
        self.metrics.inner.worker_slots.sub(self.slots);
    }
}

/// One busy worker slot in `jobs_active_workers`; released on drop, so an
/// attempt that ends early (kill, panic) still frees it.
pub(crate) struct BusyGuard(IntGauge);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_and_names_follow_them() {
        assert!(matches!(JobMetrics::with_prefix("9x"), Err(MetricsError::InvalidPrefix(_))));
        assert!(matches!(JobMetrics::with_prefix("a-b_"), Err(MetricsError::InvalidPrefix(_))));
        let m = JobMetrics::with_prefix("app_jobs_").expect("valid prefix");
        m.observe_schedule_lateness(Duration::from_millis(30));
        let text = m.encode().expect("encodes");
        assert!(text.contains("app_jobs_schedule_lateness_seconds_count 1"), "{text}");
    }

    #[test]
    fn a_second_set_in_one_registry_is_refused() {
        let r = Registry::new();
        JobMetrics::with_registry(&r, "x_").expect("first");
        assert!(matches!(JobMetrics::with_registry(&r, "x_"), Err(MetricsError::Register(_))));
        JobMetrics::with_registry(&r, "y_").expect("another prefix is fine");
    }

    #[test]
    fn held_back_counters_follow_the_backend() {
        let m = JobMetrics::new();
        let read = |limited, throttled| {
            let mut stats = QueueStats::default();
            let counts = crate::queue::QueueCounts {
                limited,
                throttled,
                breaker_open: limited > 4,
                breaker_opened: throttled,
                group_breakers_open: limited,
                group_breakers_opened: limited + throttled,
                handed: limited * 10,
                ..Default::default()
            };
            stats.queues.insert("hooks".into(), counts);
            m.record_queue_stats(&stats);
            m.encode().expect("encodes")
        };
        let text = read(3, 1);
        assert!(text.contains(r#"jobs_limited_total{queue="hooks"} 3"#), "{text}");
        assert!(text.contains(r#"jobs_throttled_total{queue="hooks"} 1"#), "{text}");
        let text = read(5, 1);
        assert!(text.contains(r#"jobs_limited_total{queue="hooks"} 5"#), "the backend's increase: {text}");
        assert!(text.contains(r#"jobs_breaker_open{queue="hooks"} 1"#), "{text}");
        assert!(text.contains(r#"jobs_breaker_opened_total{queue="hooks"} 1"#), "{text}");
        assert!(text.contains(r#"jobs_group_breakers_open{queue="hooks"} 5"#), "{text}");
        assert!(text.contains(r#"jobs_group_breakers_opened_total{queue="hooks"} 6"#), "{text}");
        assert!(text.contains(r#"jobs_handed_total{queue="hooks"} 50"#), "{text}");
        let text = read(2, 0);
        assert!(text.contains(r#"jobs_limited_total{queue="hooks"} 7"#), "a reset backend counts from zero: {text}");
        assert!(text.contains(r#"jobs_throttled_total{queue="hooks"} 1"#), "{text}");
    }

    #[test]
    fn queue_sizes_follow_the_stats_and_drop_vanished_queues() {
        let m = JobMetrics::new();
        let mut stats = QueueStats::default();
        let mut email = crate::queue::QueueCounts::default();
        email.by_priority.insert(Priority::High, Counts { pending: 7, dead: 2, ..Counts::default() });
        stats.queues.insert("email".into(), email);
        m.record_queue_stats(&stats);
        let text = m.encode().expect("encodes");
        assert!(text.contains(r#"jobs_queue_size{priority="high",queue="email",state="pending"} 7"#), "{text}");
        assert!(text.contains(r#"jobs_queue_size{priority="high",queue="email",state="dead"} 2"#), "{text}");
        assert!(text.contains("jobs_backend_up 1"), "{text}");
        m.record_queue_stats(&QueueStats::default());
        assert!(!m.encode().expect("encodes").contains("queue=\"email\""));
        m.record_backend_down();
        assert!(m.encode().expect("encodes").contains("jobs_backend_up 0"));
    }
}
