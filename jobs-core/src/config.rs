//! YAML configuration with `JOBS_*` environment overrides.
//!
//! ```yaml
//! jobs:
//!   redis: { url: "redis://127.0.0.1:6379", pool_size: 8 }   # absent: the embedded MemoryQueue
//!   worker_pool: { worker_count: 5, max_retries: 3, retry_delay: "5s", grace_period: "30s", lease: "30s" }
//!   scheduler: { enabled: true }
//!   metrics: { enabled: true, prefix: "jobs_" }
//!   http: { bind: "127.0.0.1:8080", allowed_hosts: ["jobs.example.com"] }
//! queues:
//!   default: { max_jobs: 1000 }
//!   email: { max_jobs: 5000, priority_levels: ["normal", "high"] }
//! ```
//!
//! Every section and key is optional; what is left out takes the default shown
//! on its field. Unknown keys are errors that list the valid ones, and every
//! error names the file and the key path:
//! `config.yaml: jobs.worker_pool.worker_count: invalid type: string "many", expected usize at line 3 column 19`.
//! Durations are written the `humantime` way: `"500ms"`, `"30s"`, `"5m"`, `"1h 30m"`.
//!
//! [`Config::load`] reads a file, then applies these environment variables
//! (an empty value counts as unset; other `JOBS_*` variables are ignored):
//!
//! | variable | key |
//! | --- | --- |
//! | `JOBS_REDIS_URL` | `jobs.redis.url` (adds a `redis` section when there is none) |
//! | `JOBS_REDIS_POOL_SIZE` | `jobs.redis.pool_size` |
//! | `JOBS_WORKER_COUNT` | `jobs.worker_pool.worker_count` |
//! | `JOBS_MAX_RETRIES` | `jobs.worker_pool.max_retries` |
//! | `JOBS_RETRY_DELAY` | `jobs.worker_pool.retry_delay` |
//! | `JOBS_GRACE_PERIOD` | `jobs.worker_pool.grace_period` |
//! | `JOBS_LEASE` | `jobs.worker_pool.lease` |
//! | `JOBS_SCHEDULER_ENABLED` | `jobs.scheduler.enabled` (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`) |
//! | `JOBS_METRICS_ENABLED` | `jobs.metrics.enabled` |
//! | `JOBS_METRICS_PREFIX` | `jobs.metrics.prefix` |
//! | `JOBS_HTTP_BIND` | `jobs.http.bind` |
//! | `JOBS_HTTP_ADMIN_TOKEN` | `jobs.http.admin_token` |
//! | `JOBS_HTTP_ALLOWED_HOSTS` | `jobs.http.allowed_hosts` (comma separated: `jobs.example.com,metrics.internal:9090`; replaces the file's list) |
//!
//! The configuration feeds the runtime: [`Config::pool_builder`] (worker pool
//! settings), [`Config::apply_queue_policies`] (each queue's `max_jobs` and
//! `priority_levels`, enforced by the backend on enqueue), [`Config::job_metrics`]
//! (metrics prefix), and the `scheduler`, `http` and `redis` sections, which
//! the application reads. Secrets stay out of logs: the `Debug` form of the
//! configuration shows the Redis URL with its password masked
//! ([`mask_url_password`]).
//!
//! ```
//! use jobs_core::{config::Config, MemoryQueue};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_yaml_str("jobs: { worker_pool: { worker_count: 4 } }\nqueues: { email: { max_jobs: 10 } }")?
//!     .with_env_overrides([("JOBS_RETRY_DELAY", "2s")])?;
//! assert_eq!(config.jobs.worker_pool.retry_delay, std::time::Duration::from_secs(2));
//! let queue = MemoryQueue::new();
//! config.apply_queue_policies(&queue).await?;
//! let pool = config.pool_builder(queue); // 4 workers serving `email`; `.start()` runs it
//! # drop(pool); Ok(()) }
//! ```

mod check;
mod de;
mod env;
mod mask;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use mask::mask_url_password;

use crate::error::Error;
use crate::job::{validate_queue_name, Priority};
use crate::metrics::{JobMetrics, MetricsError};
use crate::queue::{JobQueue, QueueAdmin, QueuePolicy, Retention};
use crate::worker::{WorkerPool, WorkerPoolBuilder};

/// Where the HTTP endpoints listen unless configured: loopback only.
pub const DEFAULT_HTTP_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// What is wrong with a configuration. Each message names the file (or the
/// environment variable) and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse into the configuration: bad syntax, unknown
    /// key (the message lists the valid ones), value of the wrong type or out
    /// of range. The message starts with the key path.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message: `key.path: what is wrong at line L column C`.
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The key path, e.g. `queues.email.max_jobs`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// An environment override has a bad value.
    #[error("environment variable {var} ({key}): {message}")]
    Env {
        /// The variable.
        var: String,
        /// The key it overrides.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `jobs:` section.
    #[serde(default)]
    pub jobs: JobsConfig,
    /// The `queues:` section, in file order (the order in which pools built by
    /// [`Config::pool_builder`] serve them).
    #[serde(default)]
    pub queues: Queues,
}

/// The `jobs:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Redis; when absent the application uses the embedded `MemoryQueue`.
    pub redis: Option<RedisSettings>,
    /// Worker pool settings.
    pub worker_pool: WorkerPoolConfig,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Metrics settings.
    pub metrics: MetricsConfig,
    /// HTTP endpoint settings.
    pub http: HttpConfig,
}

/// `jobs.redis`: how to reach Redis. The keys mirror `jobs_redis::RedisConfig`;
/// a key left out takes that backend's default.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[user][:password@]host[:port][/db]`, `rediss://` for TLS,
    /// `redis+cluster://` for Redis Cluster. Required. Shown masked by `Debug`.
    pub url: String,
    /// Connections to Redis.
    #[serde(default)]
    pub pool_size: Option<usize>,
    /// The first part of every key.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How long one command may take.
    #[serde(default, with = "de::opt_duration")]
    pub command_timeout: Option<Duration>,
    /// How long connecting may take.
    #[serde(default, with = "de::opt_duration")]
    pub connect_timeout: Option<Duration>,
    /// How long finished jobs are kept.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// More Cluster nodes to start from, besides the URL's host
    /// (`host:port` each).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Certificate files for `rediss://`.
    #[serde(default)]
    pub tls: TlsSettings,
}

/// `jobs.redis.tls`: certificate files for `rediss://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// CA certificates to trust instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate chain, for servers that check clients.
    pub cert_file: Option<std::path::PathBuf>,
    /// The private key of `cert_file`.
    pub key_file: Option<std::path::PathBuf>,
}

impl RedisSettings {
    /// Settings with this URL and every other key at the backend's default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            pool_size: None,
            prefix: None,
            command_timeout: None,
            connect_timeout: None,
            retention: None,
            nodes: Vec::new(),
            tls: TlsSettings::default(),
        }
    }
}

/// Shows the URL with its password masked.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &mask_url_password(&self.url))
            .field("pool_size", &self.pool_size)
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retention", &self.retention)
            .field("nodes", &self.nodes)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `jobs.redis.retention`: how long finished jobs are kept (see [`Retention`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Succeeded and cancelled jobs (default 24 h).
    #[serde(with = "de::opt_duration")]
    pub succeeded: Option<Duration>,
    /// Dead jobs, by age (default 7 days).
    #[serde(with = "de::opt_duration")]
    pub dead_age: Option<Duration>,
    /// Succeeded and cancelled jobs per queue, by count (default 100,000).
    pub succeeded_max: Option<usize>,
    /// Dead jobs per queue, by count (default 10,000).
    pub dead_max: Option<usize>,
}

impl RetentionConfig {
    /// The retention, defaults filled in.
    pub fn retention(&self) -> Retention {
        let d = Retention::default();
        Retention {
            succeeded: self.succeeded.unwrap_or(d.succeeded),
            succeeded_max: self.succeeded_max.unwrap_or(d.succeeded_max),
            dead_age: self.dead_age.unwrap_or(d.dead_age),
            dead_max: self.dead_max.unwrap_or(d.dead_max),
        }
    }
}

/// `jobs.worker_pool`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerPoolConfig {
    /// Jobs run at once (default 10, at least 1).
    pub worker_count: usize,
    /// Retries for jobs whose attribute and options set none (default 3).
    pub max_retries: u32,
    /// The retry backoff base (default `"5s"`; factor 2, cap 1 h).
    #[serde(with = "de::duration")]
    pub retry_delay: Duration,
    /// How long shutdown waits for running jobs (default `"30s"`).
    #[serde(with = "de::duration")]
    pub grace_period: Duration,
    /// How long a taken job stays leased without a heartbeat (default `"30s"`,
    /// at least 100 ms).
    #[serde(with = "de::duration")]
    pub lease: Duration,
}

impl Default for WorkerPoolConfig {
    fn default() -> Self {
        WorkerPoolConfig {
            worker_count: 10,
            max_retries: 3,
            retry_delay: Duration::from_secs(5),
            grace_period: Duration::from_secs(30),
            lease: Duration::from_secs(30),
        }
    }
}

/// `jobs.scheduler`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Whether pools run the recurring-job scheduler (default true).
    pub enabled: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { enabled: true }
    }
}

/// `jobs.metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether Prometheus metrics are kept and served (default true).
    pub enabled: bool,
    /// The prefix of every metric name (default `jobs_`).
    pub prefix: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, prefix: crate::metrics::DEFAULT_PREFIX.to_owned() }
    }
}

/// `jobs.http`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where `/metrics` and `/health/*` listen (default `127.0.0.1:8080`:
    /// loopback only; bind `0.0.0.0:8080` deliberately to expose them).
    #[serde(with = "de::socket_addr")]
    pub bind: SocketAddr,
    /// The token the dashboard's and admin API's actions need (`Authorization:
    /// Bearer ..`); none: read-only. Prefer `JOBS_HTTP_ADMIN_TOKEN` to a file.
    pub admin_token: Option<String>,
    /// Host names the endpoints answer to besides `localhost` and IP
    /// addresses, each `name` (any port) or `name:port` (that port only):
    /// the public name behind a reverse proxy that forwards `Host`, a name
    /// Prometheus scrapes by. Requests for any other `Host` are refused
    /// (421), which keeps DNS-rebinding pages out. Default: none.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { bind: DEFAULT_HTTP_BIND, admin_token: None, allowed_hosts: Vec::new() }
    }
}

/// Never shows the token.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("bind", &self.bind)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

/// One entry of `queues:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Refuse enqueues past this many pending and scheduled jobs (at least 1;
    /// absent: no bound).
    pub max_jobs: Option<u64>,
    /// Accept only these priorities (`low`, `normal`, `high`, `critical`);
    /// empty or absent: all.
    pub priority_levels: Vec<Priority>,
}

impl QueueConfig {
    /// The backend policy this entry sets.
    pub fn policy(&self) -> QueuePolicy {
        QueuePolicy { max_jobs: self.max_jobs, priority_levels: self.priority_levels.clone() }
    }
}

/// The `queues:` section: queue names and their settings, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues(pub Vec<(String, QueueConfig)>);

impl Queues {
    /// The settings of one queue.
    pub fn get(&self, name: &str) -> Option<&QueueConfig> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, q)| q)
    }

    /// The queue names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Every queue with its settings, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &QueueConfig)> {
        self.0.iter().map(|(n, q)| (n.as_str(), q))
    }

    /// How many queues are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no queue is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The name used for a configuration that comes from no file.
const INLINE: &str = "<yaml>";

impl Config {
    /// Parses and checks YAML text (no environment overrides). Errors name
    /// the source as `<yaml>`.
    pub fn from_yaml_str(yaml: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_named(yaml, INLINE)
    }

    /// Parses and checks YAML text read from `source` (named in errors).
    pub fn from_yaml_named(yaml: &str, source: &str) -> Result<Self, ConfigError> {
        let config = if yaml.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str::<Config>(yaml)
                .map_err(|e| ConfigError::Parse { file: source.to_owned(), message: e.to_string() })?
        };
        config.validate(source)?;
        Ok(config)
    }

    /// Reads `path`, parses and checks it, then applies the `JOBS_*`
    /// variables of this process's environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given as `(name, value)` pairs
    /// (for tests, or to take overrides from elsewhere).
    pub fn load_with_env<I, K, V>(path: impl AsRef<Path>, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        Self::from_yaml_named(&text, &file)?.with_env_overrides(vars)
    }

    /// Applies `JOBS_*` overrides from `(name, value)` pairs (see the module
    /// docs for the variables). Each value is checked as the key it sets.
    pub fn with_env_overrides<I, K, V>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in vars {
            env::apply(&mut self, k.as_ref(), v.as_ref())?;
        }
        Ok(self)
    }

    /// Checks what the types alone do not: queue names, bounds, the metrics
    /// prefix, the Redis URL, the allowed host names. `source` names the file in errors.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { file: source.to_owned(), key, message };
        let pool = &self.jobs.worker_pool;
        check::worker_count(pool.worker_count).map_err(|m| invalid("jobs.worker_pool.worker_count".into(), m))?;
        check::lease(pool.lease).map_err(|m| invalid("jobs.worker_pool.lease".into(), m))?;
        check::metrics_prefix(&self.jobs.metrics.prefix).map_err(|m| invalid("jobs.metrics.prefix".into(), m))?;
        if let Some(r) = &self.jobs.redis {
            check::redis_url(&r.url).map_err(|m| invalid("jobs.redis.url".into(), m))?;
            if r.pool_size == Some(0) {
                return Err(invalid("jobs.redis.pool_size".into(), "must be at least 1".into()));
            }
        }
        for (i, host) in self.jobs.http.allowed_hosts.iter().enumerate() {
            check::allowed_host(host).map_err(|m| invalid(format!("jobs.http.allowed_hosts[{i}]"), m))?;
        }
        for (name, q) in self.queues.iter() {
            validate_queue_name(name).map_err(|e| invalid(format!("queues.{name}"), e.to_string()))?;
            if q.max_jobs == Some(0) {
                return Err(invalid(
                    format!("queues.{name}.max_jobs"),
                    "must be at least 1 (leave it out for no bound)".into(),
                ));
            }
        }
        Ok(())
    }

    /// A pool builder on `queue` with the `worker_pool` settings, serving the
    /// configured queues in file order (when `queues:` lists any; otherwise
    /// every queue a linked job declares). Add `.metrics(..)` and anything
    /// else, then `.start()`.
    pub fn pool_builder<Q: JobQueue>(&self, queue: Q) -> WorkerPoolBuilder {
        let p = &self.jobs.worker_pool;
        let b = WorkerPool::builder(queue)
            .workers(p.worker_count)
            .max_retries(p.max_retries)
            .retry_delay(p.retry_delay)
            .grace_period(p.grace_period)
            .lease(p.lease);
        if self.queues.is_empty() {
            b
        } else {
            b.queues(self.queues.names().map(str::to_owned).collect::<Vec<_>>())
        }
    }

    /// Sends each configured queue's `max_jobs` and `priority_levels` to the
    /// backend, which enforces them on every enqueue. Run it once at start,
    /// before producers enqueue.
    pub async fn apply_queue_policies<Q: QueueAdmin + ?Sized>(&self, queue: &Q) -> Result<(), Error> {
        for (name, q) in self.queues.iter() {
            queue.set_policy(name, q.policy()).await?;
        }
        Ok(())
    }

    /// The metrics the `metrics` section asks for (`None` when disabled), in
    /// a registry of their own.
    pub fn job_metrics(&self) -> Result<Option<JobMetrics>, MetricsError> {
        let m = &self.jobs.metrics;
        if m.enabled {
            JobMetrics::with_prefix(&m.prefix).map(Some)
        } else {
            Ok(None)
        }
    }
}
