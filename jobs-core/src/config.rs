//! YAML configuration, every key of which an environment variable can set.
//!
//! ```yaml
//! jobs:
//!   redis: { url: "redis://127.0.0.1:6379", pool_size: 8 }   # absent: the embedded MemoryQueue
//!   worker_pool: { worker_count: 5, max_retries: 3, retry_delay: "5s", grace_period: "30s", lease: "30s", progress_interval: "250ms" }
//!   scheduler: { enabled: true }
//!   metrics: { enabled: true, prefix: "jobs_" }
//!   http: { bind: "127.0.0.1:8080", allowed_hosts: ["jobs.example.com"] }
//!   archive: { dir: "/var/lib/jobs/archive", max_file_size: 67108864, interval: "1s" }
//! queues:
//!   default: { max_jobs: 1000 }
//!   email: { max_jobs: 5000, priority_levels: ["normal", "high"], max_running: 20 }
//!   webhooks: { rate: "100/1s", group_concurrency: 2, group_rate: "10/1s" }
//!   reports: { retention: { succeeded: "1h", dead_max: 100 }, archive: true }
//! ```
//!
//! Every section and key is optional; what is left out takes the default shown
//! on its field. Unknown keys are errors that list the valid ones, and every
//! error names the file and the key path:
//! `config.yaml: jobs.worker_pool.worker_count: invalid type: string "many", expected usize at line 3 column 19`.
//! Durations are written the `humantime` way: `"500ms"`, `"30s"`, `"5m"`, `"1h 30m"`.
//!
//! The `jobs.redis` section belongs to the Redis backend: its keys are those
//! of `jobs_redis::RedisConfig` (`url`, `pool_size`, `prefix`, `nodes`, `tls`,
//! `retention`, `command_timeout`, `connect_timeout`, `payload_format`,
//! `max_payload`), which reads the section with `RedisConfig::from_config`.
//! The core keeps it as a [`BackendSection`] and checks only its `url`,
//! whose presence selects Redis.
//!
//! # In an application's own file
//!
//! [`Config::from_yaml_str`] and [`Config::load`] refuse top-level sections
//! other than `jobs:` and `queues:`. An application that keeps its own
//! sections in the same file reads it with [`Config::from_app_yaml`], which
//! skips the other top-level sections (the application reads those itself)
//! and still refuses unknown keys inside `jobs:` and `queues:`.
//!
//! # Environment variables
//!
//! [`Config::load`] reads a file, then applies the environment: every key can
//! be set by `JOBS_` followed by its path, levels joined by `__`, in upper
//! case. Keys under `jobs:` leave out `jobs`; keys under `queues:` start with
//! `QUEUES`:
//!
//! | variable | key |
//! | --- | --- |
//! | `JOBS_WORKER_POOL__WORKER_COUNT=16` | `jobs.worker_pool.worker_count` |
//! | `JOBS_REDIS__PAYLOAD_FORMAT=messagepack` | `jobs.redis.payload_format` (adds a `redis` section when there is none) |
//! | `JOBS_REDIS__RETENTION__DEAD_AGE=3days` | `jobs.redis.retention.dead_age` |
//! | `JOBS_QUEUES__EMAIL__MAX_JOBS=5000` | `queues.email.max_jobs` (adds the queue when it is not configured) |
//! | `JOBS_QUEUES__EMAIL__PRIORITY_LEVELS=normal,high` | `queues.email.priority_levels` |
//!
//! A value is read as the key's type wants it: numbers, text, durations
//! (`"30s"`), booleans (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`), and
//! lists written `a,b,c` or `[a, b, c]`. A list replaces the file's. An empty
//! value counts as unset. A variable with a path that names no key is an
//! error that lists the valid keys at that level; `JOBS_*` variables without
//! `__` (`JOBS_CONFIG`, ...) are not keys and are ignored, except these short
//! names:
//!
//! | variable | key |
//! | --- | --- |
//! | `JOBS_REDIS_URL` | `jobs.redis.url` |
//! | `JOBS_REDIS_POOL_SIZE` | `jobs.redis.pool_size` |
//! | `JOBS_WORKER_COUNT` | `jobs.worker_pool.worker_count` |
//! | `JOBS_MAX_RETRIES` | `jobs.worker_pool.max_retries` |
//! | `JOBS_RETRY_DELAY` | `jobs.worker_pool.retry_delay` |
//! | `JOBS_GRACE_PERIOD` | `jobs.worker_pool.grace_period` |
//! | `JOBS_LEASE` | `jobs.worker_pool.lease` |
//! | `JOBS_SCHEDULER_ENABLED` | `jobs.scheduler.enabled` |
//! | `JOBS_METRICS_ENABLED` | `jobs.metrics.enabled` |
//! | `JOBS_METRICS_PREFIX` | `jobs.metrics.prefix` |
//! | `JOBS_HTTP_BIND` | `jobs.http.bind` |
//! | `JOBS_HTTP_ADMIN_TOKEN` | `jobs.http.admin_token` |
//! | `JOBS_HTTP_ALLOWED_HOSTS` | `jobs.http.allowed_hosts` (`jobs.example.com,metrics.internal:9090`) |
//!
//! When a short name and the long form of the same key are both set, the
//! long form wins. Queue names in variables are matched in lower case (a
//! configured queue is found whatever its case); a queue whose name has `-`
//! or `.` can be set only in the file. Errors name the variable and the key:
//! `environment variable JOBS_WORKER_COUNT (jobs.worker_pool.worker_count): must be at least 1`.
//!
//! The configuration feeds the runtime: [`Config::pool_builder`] (worker pool
//! settings and `scheduler.enabled`), [`Config::apply_queue_policies`] (each queue's `max_jobs` and
//! `priority_levels`, enforced by the backend on enqueue), [`Config::job_metrics`]
//! (metrics prefix), `jobs_redis::RedisConfig::from_config` (the `redis`
//! section), and the `http` section, which the application reads. Secrets stay out of logs: the `Debug` form of the
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

mod backend;
mod check;
mod de;
mod env;
mod error;
mod mask;
mod sections;
mod text;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use backend::BackendSection;
pub use error::ConfigError;
pub use mask::mask_url_password;
pub use sections::{
    ArchiveConfig, HttpConfig, MetricsConfig, QueueConfig, Queues, SandboxConfig, SchedulerConfig, WorkerPoolConfig,
};

use crate::error::Error;
#[cfg(feature = "metrics")]
use crate::metrics::{JobMetrics, MetricsError};
use crate::queue::{JobQueue, QueueAdmin};
use crate::worker::{WorkerPool, WorkerPoolBuilder};

/// Where the HTTP endpoints listen unless configured: loopback only.
pub const DEFAULT_HTTP_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// The whole configuration file.
///
/// It serializes back to the file's form (the environment overrides work on
/// that form); the serialized form holds the secrets in clear, so show the
/// `Debug` form instead, which masks them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
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

/// The `jobs:` and `queues:` sections of an application's file, whatever
/// else it holds.
#[derive(Deserialize)]
struct InAppFile {
    #[serde(default)]
    jobs: JobsConfig,
    #[serde(default)]
    queues: Queues,
}

/// The `jobs:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Redis (its keys are those of `jobs_redis::RedisConfig`); when absent
    /// the application uses the embedded `MemoryQueue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<BackendSection>,
    /// Worker pool settings.
    pub worker_pool: WorkerPoolConfig,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Metrics settings.
    pub metrics: MetricsConfig,
    /// HTTP endpoint settings.
    pub http: HttpConfig,
    /// Archive settings.
    pub archive: ArchiveConfig,
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
    /// Top-level sections other than `jobs:` and `queues:` are errors.
    pub fn from_yaml_named(yaml: &str, source: &str) -> Result<Self, ConfigError> {
        Self::parse(yaml, source, |text| serde_yaml_ng::from_str::<Config>(text))
    }

    /// Parses and checks the `jobs:` and `queues:` sections of an
    /// application's own YAML file read from `source` (named in errors),
    /// skipping its other top-level sections. Unknown keys inside `jobs:`
    /// and `queues:` are still errors.
    ///
    /// ```
    /// let text = "app:\n  greeting: hello\njobs:\n  worker_pool: { worker_count: 2 }\n";
    /// let config = jobs_core::config::Config::from_app_yaml(text, "app.yaml")?;
    /// assert_eq!(config.jobs.worker_pool.worker_count, 2);
    /// # Ok::<(), jobs_core::config::ConfigError>(())
    /// ```
    pub fn from_app_yaml(yaml: &str, source: &str) -> Result<Self, ConfigError> {
        Self::parse(yaml, source, |text| {
            serde_yaml_ng::from_str::<InAppFile>(text).map(|f| Config { jobs: f.jobs, queues: f.queues })
        })
    }

    fn parse(
        yaml: &str,
        source: &str,
        read: impl FnOnce(&str) -> Result<Config, serde_yaml_ng::Error>,
    ) -> Result<Self, ConfigError> {
        let mut config = if yaml.trim().is_empty() {
            Config::default()
        } else {
            read(yaml).map_err(|e| ConfigError::Parse { file: source.to_owned(), message: e.to_string() })?
        };
        if let Some(r) = &mut config.jobs.redis {
            r.read_from(source, &Arc::from(yaml));
        }
        config.validate(source)?;
        Ok(config)
    }

    /// Reads `path`, parses and checks it, then applies the `JOBS_*`
    /// variables of this process's environment (see the module docs).
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

    /// Applies the `JOBS_*` variables among `(name, value)` pairs (see the
    /// module docs for the rule and the short names); other variables are
    /// ignored. Each value is checked as the key it sets, and errors name
    /// the variable and the key.
    pub fn with_env_overrides<I, K, V>(self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars = vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect();
        env::apply_vars(self, vars)
    }

    /// Sets the key at the dotted path `key` (`jobs.redis.url`,
    /// `queues.email.max_jobs`) from `value`, read as an environment
    /// variable's value is, for settings an application takes from elsewhere
    /// (a command-line flag). `source` names it in errors.
    ///
    /// ```
    /// let config = jobs_core::config::Config::default().with_override("jobs.redis.url", "redis://db:6379", "--redis-url")?;
    /// assert_eq!(config.jobs.redis.as_ref().and_then(|r| r.url()), Some("redis://db:6379"));
    /// # Ok::<(), jobs_core::config::ConfigError>(())
    /// ```
    pub fn with_override(self, key: &str, value: &str, source: &str) -> Result<Self, ConfigError> {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let config = env::set(self, &path, value.trim(), backend::Setter::Named(source.to_owned()))
            .map_err(|m| ConfigError::Parse { file: source.to_owned(), message: format!("{key}: {m}") })?;
        config.validate(source)?;
        Ok(config)
    }

    /// Checks what the types alone do not: queue names, bounds, the metrics
    /// prefix, the Redis URL, the allowed host names. `source` names the file in errors.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        check::config(self).map_err(|(key, message)| ConfigError::Invalid { file: source.to_owned(), key, message })
    }

    /// A pool builder on `queue` with the `worker_pool` settings, archiving
    /// to `archive.dir` when set, running the
    /// scheduler as `scheduler.enabled` says (with the `cron` feature; without
    /// it pools have no scheduler), serving the configured queues
    /// in file order (when `queues:` lists any; otherwise every queue a
    /// linked job declares). Add `.metrics(..)` and anything else, then
    /// `.start()`.
    pub fn pool_builder<Q: JobQueue>(&self, queue: Q) -> WorkerPoolBuilder {
        let p = &self.jobs.worker_pool;
        let b = WorkerPool::builder(queue)
            .workers(p.worker_count)
            .max_retries(p.max_retries)
            .retry_delay(p.retry_delay)
            .grace_period(p.grace_period)
            .lease(p.lease)
            .progress_interval(p.progress_interval);
        let b = match p.prefetch {
            Some(n) => b.prefetch(n),
            None => b,
        };
        #[cfg(all(unix, feature = "sandbox"))]
        let b = b.sandbox(p.sandbox.to_sandbox());
        #[cfg(feature = "cron")]
        let b = b.scheduler(self.jobs.scheduler.enabled);
        let a = &self.jobs.archive;
        let b = match &a.dir {
            Some(dir) => b
                .archive(crate::archive::JsonLinesSink::new(dir).max_file_size(a.max_file_size))
                .archive_settings(a.settings()),
            None => b,
        };
        if self.queues.is_empty() {
            b
        } else {
            b.queues(self.queues.names().map(str::to_owned).collect::<Vec<_>>())
        }
    }

    /// Sends each configured queue's limits (`max_jobs`, `priority_levels`,
    /// `max_running`, `rate`, `group_concurrency`, `group_rate`) to the
    /// backend, which enforces them on every enqueue and fetch, in every
    /// process. Run it at start, before producers enqueue, and again after
    /// the file changed (`jobs worker` does on SIGHUP).
    pub async fn apply_queue_policies<Q: QueueAdmin + ?Sized>(&self, queue: &Q) -> Result<(), Error> {
        for (name, q) in self.queues.iter() {
            queue.set_policy(name, q.policy()).await?;
        }
        Ok(())
    }

    /// The metrics the `metrics` section asks for (`None` when disabled), in
    /// a registry of their own.
    #[cfg(feature = "metrics")]
    pub fn job_metrics(&self) -> Result<Option<JobMetrics>, MetricsError> {
        let m = &self.jobs.metrics;
        if m.enabled {
            JobMetrics::with_prefix(&m.prefix).map(Some)
        } else {
            Ok(None)
        }
    }
}
