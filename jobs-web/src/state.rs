//! [`WebState`]: what the endpoints read, and the short cache of the
//! backend's stats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::config::Config;
use jobs_core::{Error, JobMetrics, MinuteCounts, PoolInfo, QueueStats, ScheduleInfo, Scheduler, SharedQueue};
use tokio::sync::Mutex;

use crate::cache::TtlCache;
use crate::host::AllowedHost;

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

/// What the endpoints work on: the backend, the metrics (optional), the
/// health thresholds and the dashboard's admin token (optional: without one
/// the dashboard and its API are read-only). Cheap to clone.
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
    pub(crate) admin_token: Option<String>,
    pub(crate) reads_need_token: bool,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_hosts: Vec<AllowedHost>,
    reads: Reads,
    /// Open event streams (see `api/events.rs`).
    pub(crate) event_streams: Arc<tokio::sync::Semaphore>,
}

/// The API's other polled reads, cached like the stats.
struct Reads {
    workers: TtlCache<(), Vec<PoolInfo>>,
    schedules: TtlCache<(), Vec<ScheduleInfo>>,
    throughput: TtlCache<(String, Window), Vec<MinuteCounts>>,
}

/// One of the fixed spans of throughput history that are read from the
/// backend and cached: the API serves any number of minutes up to a day
/// from the smallest window that covers it, so the cache holds at most
/// [`Window::MINUTES`]`.len()` entries per queue, whatever clients ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Window(usize);

impl Window {
    /// The windows, in minutes: 5 and 15 minutes, half an hour, 1, 3, 6
    /// and 12 hours, a day.
    pub(crate) const MINUTES: [usize; 8] = [5, 15, 30, 60, 180, 360, 720, 1440];

    /// The smallest window of at least `minutes`; `None` for zero or more
    /// than the largest window.
    pub(crate) fn covering(minutes: usize) -> Option<Self> {
        if minutes == 0 {
            return None;
        }
        Self::MINUTES.into_iter().find(|w| *w >= minutes).map(Window)
    }

    /// Its length in minutes.
    pub(crate) fn minutes(self) -> usize {
        self.0
    }
}

impl Reads {
    fn new() -> Self {
        Reads { workers: TtlCache::new(), schedules: TtlCache::new(), throughput: TtlCache::new() }
    }
}

/// What an `Authorization` header is worth against the configured token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// No token is configured: actions are off.
    ReadOnly,
    /// The header is missing, not `Bearer`, or holds another token.
    Wrong,
    /// The header holds the configured token.
    Valid,
}

/// Whether `given` equals `expected`, in a time that depends only on the
/// length of `given` (the request's part): every byte of it is compared, to
/// the expected byte at the same position modulo its length, and a length
/// difference is folded into the same accumulator, so neither where the two
/// differ nor the expected token's length shows in the timing.
pub(crate) fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    if expected.is_empty() {
        return given.is_empty();
    }
    let mut diff = expected.len() ^ given.len();
    for (i, g) in given.iter().enumerate() {
        diff |= usize::from(g ^ expected[i % expected.len()]);
        // Keeps the optimizer from turning the loop into an early exit.
        diff = std::hint::black_box(diff);
    }
    diff == 0
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("metrics", &self.inner.metrics)
            .field("thresholds", &self.inner.thresholds)
            .field("stats_ttl", &self.inner.stats_ttl)
            .field("admin_token", &self.inner.admin_token.as_ref().map(|_| "<set>"))
            .field("reads_need_token", &self.inner.reads_need_token)
            .field("allowed_origins", &self.inner.allowed_origins)
            .field("allowed_hosts", &self.inner.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// State over `queue`, without metrics (`/metrics` answers 404), with
    /// default thresholds, a 2 s stats cache and no admin token (read-only).
    pub fn new(queue: SharedQueue) -> Self {
        WebState {
            inner: Arc::new(Inner {
                queue,
                metrics: None,
                thresholds: Thresholds::default(),
                stats_ttl: DEFAULT_STATS_TTL,
                cache: Mutex::new(None),
                admin_token: None,
                reads_need_token: false,
                allowed_origins: Vec::new(),
                allowed_hosts: Vec::new(),
                reads: Reads::new(),
                event_streams: Arc::new(tokio::sync::Semaphore::new(crate::api::MAX_EVENT_STREAMS)),
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
            admin_token: shared.admin_token.clone(),
            reads_need_token: shared.reads_need_token,
            allowed_origins: shared.allowed_origins.clone(),
            allowed_hosts: shared.allowed_hosts.clone(),
            reads: Reads::new(),
            event_streams: shared.event_streams.clone(),
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

    /// Turns the dashboard's actions on (retry, cancel, purge, pause, ...):
    /// each action request must then carry `Authorization: Bearer <token>`.
    /// Without a token every action answers 403 and the dashboard is
    /// read-only. An empty (or blank) token leaves it read-only. Use a long
    /// random secret: anyone who has it can delete dead jobs.
    pub fn admin_token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        if token.trim().is_empty() {
            tracing::warn!("an empty admin token was given: the dashboard stays read-only");
            return self.with(|i| i.admin_token = None);
        }
        self.with(|i| i.admin_token = Some(token))
    }

    /// Whether the API's reads need the admin token too (default false:
    /// reads are open to everyone who can reach the server).
    ///
    /// With `true`, every `GET /api/...` but `/api/auth` must carry
    /// `Authorization: Bearer <token>` like the actions do, or is answered
    /// **401**; the dashboard then asks for the token before it shows any
    /// data. Reads show job payloads (redacted fields aside), errors and
    /// queue names: require the token wherever not everyone who can reach
    /// the server should see them. Without an admin token
    /// ([`WebState::admin_token`]) every read is then refused with **403**,
    /// as no request could present one. Unaffected: `/api/auth` (it tells
    /// only whether actions are on and whether the token sent is right), the
    /// dashboard's files under `/ui/` (they hold no data), `/metrics` and
    /// `/health/*`.
    pub fn require_token_for_reads(self, required: bool) -> Self {
        self.with(|i| i.reads_need_token = required)
    }

    /// Accepts action requests whose `Origin` is `origin` (scheme, host and
    /// port, e.g. `https://jobs.example.com`), besides the server's own origin
    /// (the one its `Host` header names). Needed behind a reverse proxy that
    /// rewrites `Host`; every other cross-origin action is refused.
    pub fn allow_origin(self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        self.with(|i| i.allowed_origins.push(origin))
    }

    /// Serves requests whose `Host` is `host` (a DNS name, with any port), or
    /// `host:port` (that port only), besides `localhost` and IP addresses,
    /// which are always served. Every other `Host` is answered **421**, on
    /// every route, `/metrics` and `/health/*` included: that keeps a page
    /// of another site whose name resolves to this server (DNS rebinding)
    /// from reading it. Allow the public name behind a reverse proxy that
    /// forwards `Host`, and any name that Prometheus or a probe reaches this
    /// server by. An entry that is not a host name (a URL, a blank) is
    /// ignored with a warning.
    pub fn allow_host(self, host: impl AsRef<str>) -> Self {
        let entry = host.as_ref();
        match AllowedHost::parse(entry) {
            Some(allowed) => self.with(|i| i.allowed_hosts.push(allowed)),
            None => {
                tracing::warn!(entry, "not a host name (`name` or `name:port`): not allowed");
                self
            }
        }
    }

    /// Whether an admin token is configured (actions are possible).
    pub fn actions_enabled(&self) -> bool {
        self.inner.admin_token.is_some()
    }

    /// Checks an `Authorization` header value against the configured token,
    /// in constant time ([`constant_time_eq`]).
    pub(crate) fn check_token(&self, authorization: Option<&str>) -> TokenCheck {
        let Some(expected) = &self.inner.admin_token else {
            return TokenCheck::ReadOnly;
        };
        // The scheme is case-insensitive (RFC 9110); the token is not.
        let given = authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            TokenCheck::Valid
        } else {
            TokenCheck::Wrong
        }
    }

    /// The backend.
    pub fn queue(&self) -> &SharedQueue {
        &self.inner.queue
    }

    /// The live pools, cached like the stats.
    pub(crate) async fn workers(&self) -> Result<Vec<PoolInfo>, Error> {
        let queue = &self.inner.queue;
        self.inner.reads.workers.get_or_load((), self.inner.stats_ttl, || queue.pools()).await
    }

    /// Every schedule with its next fire time, cached like the stats.
    pub(crate) async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        let scheduler = self.scheduler();
        self.inner.reads.schedules.get_or_load((), self.inner.stats_ttl, || async move { scheduler.list().await }).await
    }

    /// A queue's attempts per minute over `window`, cached like the stats
    /// when the backend's stats list the queue. Any other name is read
    /// through uncached: names come from request paths, and caching them
    /// would let a client push the real queues' entries out of the cache.
    pub(crate) async fn throughput(&self, queue: &str, window: Window) -> Result<Vec<MinuteCounts>, Error> {
        let known = self.stats().await.is_ok_and(|s| s.queues.contains_key(queue));
        if known {
            self.known_throughput(queue, window).await
        } else {
            self.inner.queue.throughput(queue, window.minutes()).await
        }
    }

    /// [`WebState::throughput`] of a queue the caller took from the
    /// backend's stats, always cached.
    pub(crate) async fn known_throughput(&self, queue: &str, window: Window) -> Result<Vec<MinuteCounts>, Error> {
        let backend = &self.inner.queue;
        let key = (queue.to_owned(), window);
        let load = || backend.throughput(queue, window.minutes());
        self.inner.reads.throughput.get_or_load(key, self.inner.stats_ttl, load).await
    }

    /// A scheduler over the backend, for listing, pausing and resuming.
    pub(crate) fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.inner.queue.clone())
    }

    /// Forgets every cached read, so that the next poll after an action
    /// shows its effect.
    pub(crate) async fn invalidate(&self) {
        *self.inner.cache.lock().await = None;
        self.inner.reads.workers.clear().await;
        self.inner.reads.schedules.clear().await;
        self.inner.reads.throughput.clear().await;
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

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        for other in [&b""[..], b"s3cre", b"s3cret!", b"S3cret", b"s3cret\0", b"s3crets3cret"] {
            assert!(!constant_time_eq(b"s3cret", other), "{other:?}");
        }
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
