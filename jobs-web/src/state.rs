//! [`WebState`]: what the endpoints read, and the short cache of the
//! backend's stats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{Config, Error, JobMetrics, QueueStats, SharedQueue};
use tokio::sync::Mutex;

/// How long one read of the backend's stats serves `/metrics` and
/// `/health/*` before the next request reads them again.
pub const DEFAULT_STATS_TTL: Duration = Duration::from_secs(2);

/// Limits past which a queue makes the health endpoints answer 503. Each
/// limit is reached when the count is greater than or equal to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLimits {
    /// Jobs waiting now for a worker (`pending`): the backlog.
    pub pending: Option<u64>,
    /// Jobs waiting in all (`pending + scheduled`, what `max_jobs` counts):
    /// a queue at its `max_jobs` refuses enqueues.
    pub size: Option<u64>,
    /// Jobs in the dead-letter set.
    pub dead: Option<u64>,
}

/// The health rules: per-queue limits and whether a live pool is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Limits of every queue that has none of its own.
    pub default: QueueLimits,
    /// Limits of named queues (replacing `default` for them).
    pub queues: BTreeMap<String, QueueLimits>,
    /// Whether `/health/workers` and `/health/jobs` fail when no worker pool
    /// reports itself alive (default true; turn off for a process that only
    /// produces and serves metrics while pools run elsewhere).
    pub require_pool: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { default: QueueLimits::default(), queues: BTreeMap::new(), require_pool: true }
    }
}

impl Thresholds {
    /// No queue limits; a live pool required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits from a configuration: a queue with `max_jobs` is unhealthy once
    /// it is full (`size` limit = `max_jobs`), since it then refuses enqueues.
    pub fn from_config(config: &Config) -> Self {
        let mut t = Thresholds::default();
        for (name, q) in config.queues.iter() {
            if let Some(max) = q.max_jobs {
                t.queues.insert(name.to_owned(), QueueLimits { size: Some(max), ..QueueLimits::default() });
            }
        }
        t
    }

    /// Sets the limits of one queue.
    pub fn queue(mut self, name: &str, limits: QueueLimits) -> Self {
        self.queues.insert(name.to_owned(), limits);
        self
    }

    /// The limits that apply to `queue`.
    pub fn limits(&self, queue: &str) -> &QueueLimits {
        self.queues.get(queue).unwrap_or(&self.default)
    }
}

/// What the endpoints work on: the backend, the metrics (optional) and the
/// health thresholds. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use jobs_core::{JobMetrics, MemoryQueue, SharedQueue};
/// use jobs_web::{QueueLimits, Thresholds, WebState};
/// let metrics = JobMetrics::new();
/// let queue: SharedQueue = Arc::new(metrics.instrument(MemoryQueue::new()));
/// let state = WebState::new(queue)
///     .metrics(metrics)
///     .thresholds(Thresholds::new().queue("email", QueueLimits { pending: Some(10_000), ..Default::default() }));
/// # let _ = state;
/// ```
#[derive(Clone)]
pub struct WebState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) queue: SharedQueue,
    pub(crate) metrics: Option<JobMetrics>,
    pub(crate) thresholds: Thresholds,
    stats_ttl: Duration,
    cache: Mutex<Option<(Instant, QueueStats)>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("metrics", &self.inner.metrics)
            .field("thresholds", &self.inner.thresholds)
            .field("stats_ttl", &self.inner.stats_ttl)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// State over `queue`, without metrics (`/metrics` answers 404), with
    /// default thresholds and a 2 s stats cache.
    pub fn new(queue: SharedQueue) -> Self {
        WebState {
            inner: Arc::new(Inner {
                queue,
                metrics: None,
                thresholds: Thresholds::default(),
                stats_ttl: DEFAULT_STATS_TTL,
                cache: Mutex::new(None),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            queue: shared.queue.clone(),
            metrics: shared.metrics.clone(),
            thresholds: shared.thresholds.clone(),
            stats_ttl: shared.stats_ttl,
            cache: Mutex::new(None),
        });
        f(&mut inner);
        WebState { inner: Arc::new(inner) }
    }

    /// Serves these metrics on `/metrics`; queue sizes are recorded into them
    /// whenever the stats are read.
    pub fn metrics(self, metrics: JobMetrics) -> Self {
        self.with(|i| i.metrics = Some(metrics))
    }

    /// The health rules.
    pub fn thresholds(self, thresholds: Thresholds) -> Self {
        self.with(|i| i.thresholds = thresholds)
    }

    /// How long one read of the backend's stats is reused (default 2 s; zero
    /// reads them on every request).
    pub fn stats_ttl(self, ttl: Duration) -> Self {
        self.with(|i| i.stats_ttl = ttl)
    }

    /// The backend.
    pub fn queue(&self) -> &SharedQueue {
        &self.inner.queue
    }

    /// The backend's stats, from the cache when younger than the TTL.
    /// Concurrent requests share one backend call. A fresh read is recorded
    /// into the metrics (a failed one marks the backend down there).
    pub async fn stats(&self) -> Result<QueueStats, Error> {
        let mut cache = self.inner.cache.lock().await;
        if let Some((at, stats)) = cache.as_ref() {
            if at.elapsed() < self.inner.stats_ttl {
                return Ok(stats.clone());
            }
        }
        let read = self.inner.queue.stats().await;
        if let Some(m) = &self.inner.metrics {
            match &read {
                Ok(s) => m.record_queue_stats(s),
                Err(_) => m.record_backend_down(),
            }
        }
        match read {
            Ok(stats) => {
                *cache = Some((Instant::now(), stats.clone()));
                Ok(stats)
            }
            Err(e) => {
                *cache = None;
                Err(e)
            }
        }
    }
}
