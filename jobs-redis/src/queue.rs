//! [`RedisQueue`]: the handle, its connections, and the `JobQueue` impl,
//! which forwards each call to the inherent method of the same name
//! (`hot.rs` for the workers' calls, `admin.rs` and `list.rs` for the
//! operators', `schedules.rs` for schedules and pool presence).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use jobs_core::backend::Waiter;
use jobs_core::{validate_queue_name, Error, Retention};
use redis::Client;

use crate::config::RedisConfig;
use crate::conn::Conn;
use crate::connect::{open, Target};
use crate::error::{mask_url, Redactor, RedisQueueError};
use crate::keys::{queues_key, validate_prefix, QueueKeys};

/// The Redis backend: every job in Redis, every state change one Lua script.
///
/// Cloning is cheap and gives another handle to the same connections. The
/// connections are multiplexed (many calls in flight on one socket) and
/// reconnect by themselves, with back-off, after a lost connection; a call
/// made while Redis is away fails with `Error::Backend` (a transient
/// [`RedisQueueError`]) within `command_timeout`, and the worker pool tries
/// again. One server or a Redis Cluster (`redis+cluster://` or
/// [`RedisConfig::nodes`]): the same calls, the same semantics.
///
/// ```no_run
/// # async fn demo() -> Result<(), jobs_core::Error> {
/// use jobs_redis::RedisQueue;
/// let queue = RedisQueue::connect("redis://127.0.0.1:6379").await?;
/// # let _ = queue; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisQueue {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Open the waiters' pub/sub connections (each node given, on Cluster).
    pub(crate) pubsub: Vec<Client>,
    /// Opens the parked fetchers' connections.
    pub(crate) blocking: crate::connect::Blocking,
    /// How long a command may take (`RedisConfig::command_timeout`).
    pub(crate) command_timeout: Duration,
    conns: Vec<Conn>,
    next: AtomicUsize,
    pub(crate) prefix: String,
    pub(crate) retention: Retention,
    /// How payloads are stored (see `codec`).
    pub(crate) payload_format: crate::PayloadFormat,
    /// The largest payload an enqueue accepts.
    pub(crate) max_payload: usize,
    /// Job events kept per queue.
    pub(crate) event_history: usize,
    /// Followers of job events for result waits.
    pub(crate) hub: jobs_core::backend::EventHub,
    /// The job names this handle's event readers saw last.
    pub(crate) event_names: crate::events::NameCache,
    pub(crate) connect_timeout: Duration,
    pub(crate) url: String,
    pub(crate) redactor: Redactor,
    /// Queues this handle has added to the `<prefix>:queues` set already.
    registered: Mutex<HashSet<String>>,
    /// When this handle last ran a fetch's housekeeping on each queue (see
    /// `hot::fetch`).
    pub(crate) maintained: Mutex<HashMap<String, Instant>>,
    /// Partitions of partitioned queues whose fetch failed, by tag, left
    /// out of fetches for a while (see `hot::fetch`).
    pub(crate) failing_partitions: Mutex<jobs_core::backend::FailurePauses>,
    /// The partitioned queues' counts (see `partitions.rs`).
    pub(crate) partitions: Arc<crate::partitions::Partitions>,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &self.inner.url)
            .field("cluster", &self.is_cluster())
            .field("prefix", &self.inner.prefix)
            .field("connections", &self.inner.conns.len())
            .field("retention", &self.inner.retention)
            .finish()
    }
}

/// A poisoned lock only guards caches that are valid in any state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisQueue {
    /// Connects with the default settings to `url`
    /// (`redis://[user][:password@]host[:port][/db]`).
    ///
    /// Fails at once, with a message that names the URL without its
    /// password, when Redis cannot be reached or refuses the credentials.
    pub async fn connect(url: &str) -> Result<RedisQueue, Error> {
        Self::from_config(&RedisConfig::new(url)).await
    }

    /// Connects with these settings.
    ///
    /// Fails at once, with a message that names the URL without its
    /// password, when Redis cannot be reached, refuses the credentials
    /// ("authentication failed") or the TLS handshake.
    pub async fn from_config(config: &RedisConfig) -> Result<RedisQueue, Error> {
        validate_prefix(&config.prefix)?;
        for (queue, &count) in &config.partitions {
            if queue != crate::partitions::EVERY_QUEUE {
                validate_queue_name(queue)?;
            }
            if !(1..=crate::partitions::MAX_PARTITIONS).contains(&count) {
                return Err(Error::InvalidArgument(format!(
                    "partitions: queue {queue} has {count}; a queue has 1 to {}",
                    crate::partitions::MAX_PARTITIONS
                )));
            }
        }
        let shown = mask_url(&config.url);
        let target = Target::of(config).map_err(|reason| RedisQueueError::Config { url: shown.clone(), reason })?;
        let mut urls = target.urls();
        urls.push(&config.url);
        let redactor = Redactor::for_urls(&urls);
        let opened = open(config, &target, &redactor).await?;
        let url = match &target {
            Target::Cluster(nodes) if !config.nodes.is_empty() => {
                nodes.iter().map(|n| mask_url(n)).collect::<Vec<_>>().join(",")
            }
            _ => shown,
        };
        let handle = RedisQueue {
            inner: Arc::new(Inner {
                pubsub: opened.pubsub,
                blocking: opened.blocking,
                command_timeout: config.command_timeout,
                conns: opened.conns,
                next: AtomicUsize::new(0),
                prefix: config.prefix.clone(),
                retention: config.retention,
                payload_format: config.payload_format,
                max_payload: config.max_payload,
                event_history: config.event_history.max(1),
                hub: jobs_core::backend::EventHub::default(),
                event_names: crate::events::NameCache::default(),
                connect_timeout: config.connect_timeout,
                url,
                redactor,
                registered: Mutex::new(HashSet::new()),
                maintained: Mutex::new(HashMap::new()),
                failing_partitions: Mutex::default(),
                partitions: Arc::default(),
            }),
        };
        // Each raise reads the counts back; with none, they are read here.
        for (queue, &count) in &config.partitions {
            handle.set_partitions(queue, count).await?;
        }
        if config.partitions.is_empty() {
            handle.load_partition_counts().await?;
        }
        Ok(handle)
    }

    /// Whether this handle talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.conns.first().is_some_and(Conn::is_cluster)
    }

    /// The key prefix of every key this handle uses.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The retention this handle's fetches apply.
    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    /// A connection to send one call on (round robin over the pool).
    pub(crate) fn conn(&self) -> Conn {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.conns.len();
        // Cloning a connection clones Arcs: the sockets are shared.
        self.inner.conns[i].clone()
    }

    /// The key names of one queue.
    pub(crate) fn keys(&self, queue: &str) -> QueueKeys {
        QueueKeys::new(&self.inner.prefix, queue)
    }

    /// The server's clock (`TIME`): the clock of every lease, due time,
    /// retention and schedule tick (the scripts read it themselves; this is
    /// for the calls made outside them).
    pub(crate) async fn now(&self) -> Result<SystemTime, Error> {
        let (secs, micros): (u64, u64) =
            redis::cmd("TIME").query_async(&mut self.conn()).await.map_err(|e| self.command_error("time", &e))?;
        Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
    }

    pub(crate) fn command_error(&self, op: &'static str, e: &redis::RedisError) -> Error {
        self.inner.redactor.command(op, e).into()
    }

    /// Adds a queue to the `<prefix>:queues` set that `stats()` reads, once
    /// per handle. It is a key of its own slot on Redis Cluster, so it is
    /// written apart from the scripts (a crash in between leaves a queue
    /// unlisted until its next enqueue, never a job lost).
    pub(crate) async fn register(&self, queue: &str) -> Result<(), Error> {
        if lock(&self.inner.registered).contains(queue) {
            return Ok(());
        }
        let mut c = self.conn();
        redis::cmd("SADD")
            .arg(queues_key(&self.inner.prefix))
            .arg(queue)
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| self.command_error("SADD queues", &e))?;
        lock(&self.inner.registered).insert(queue.to_owned());
        Ok(())
    }

    /// A waiter woken when work may have arrived on `queues`.
    pub(crate) fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        for q in queues {
            validate_queue_name(q)?;
        }
        // One inbox cannot span a partitioned queue's slots: its waiter only
        // listens, on the one channel all its partitions wake.
        if let [queue] = queues {
            if self.inner.partitions.known(queue) == 1 {
                return Ok(Box::new(crate::waiter::RedisWaiter::parking(self, self.keys(queue))?));
            }
        }
        let channels = queues.iter().map(|q| self.keys(q).wake()).collect();
        Ok(Box::new(crate::waiter::RedisWaiter::start(self, channels)?))
    }
}
