//! The sections of the configuration besides the backend's: worker pool,
//! scheduler, metrics, HTTP and the queues.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de, DEFAULT_HTTP_BIND};
use crate::queue::QueuePolicy;
use crate::vocab::Priority;

/// `jobs.worker_pool`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// The least time between two progress writes of one attempt (default
    /// `"250ms"`; `"0s"` writes every call): see
    /// `WorkerPoolBuilder::progress_interval`.
    #[serde(with = "de::duration")]
    pub progress_interval: Duration,
    /// Jobs the pool takes ahead of its free workers, always (0: none).
    /// Unset (the default), the pool takes them as its pace calls for them,
    /// at most 256 or one per worker, whichever is more (one per worker for
    /// a queue with groups): see `WorkerPoolBuilder::prefetch`.
    pub prefetch: Option<usize>,
    /// How sandboxed jobs run (`jobs.worker_pool.sandbox`).
    pub sandbox: SandboxConfig,
}

/// `jobs.worker_pool.sandbox`: how the pool runs `#[job(sandbox)]` jobs,
/// each attempt in a child process under limits (see `jobs_core::sandbox`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Whether sandboxed jobs run in child processes (default true; false
    /// runs them in the worker, as a test harness must).
    #[serde(with = "de::flag")]
    pub enabled: bool,
    /// Run every job of the pool in a child (default false).
    #[serde(with = "de::flag")]
    pub every_job: bool,
    /// Idle children kept started (default 2).
    pub warm_children: usize,
    /// A child's address space in MiB (default 1024; `null`: no limit).
    pub memory_limit_mb: Option<u64>,
    /// The CPU time of one attempt, e.g. `"1m"` (default: none; the job's
    /// timeout bounds a hang).
    #[serde(with = "de::opt_duration")]
    pub cpu_time_limit: Option<Duration>,
    /// Files a child may have open (default 256; `null`: the worker's limit).
    pub open_files_limit: Option<u64>,
    /// Whether children may use the network (default true; false needs a
    /// machine that allows network namespaces, checked at pool start).
    #[serde(with = "de::flag")]
    pub network: bool,
    /// Attempts one child runs before it is replaced (default 1000).
    pub jobs_per_child: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            enabled: true,
            every_job: false,
            warm_children: 2,
            memory_limit_mb: Some(1024),
            cpu_time_limit: None,
            open_files_limit: Some(256),
            network: true,
            jobs_per_child: 1000,
        }
    }
}

#[cfg(all(unix, feature = "sandbox"))]
impl SandboxConfig {
    /// These settings as the pool takes them.
    pub fn to_sandbox(&self) -> crate::sandbox::Sandbox {
        crate::sandbox::Sandbox::default()
            .enabled(self.enabled)
            .every_job(self.every_job)
            .warm_children(self.warm_children)
            .memory_limit(self.memory_limit_mb.map(|mb| mb.saturating_mul(1024 * 1024)))
            .cpu_time_limit(self.cpu_time_limit)
            .open_files_limit(self.open_files_limit)
            .network(self.network)
            .jobs_per_child(self.jobs_per_child)
    }
}

impl Default for WorkerPoolConfig {
    fn default() -> Self {
        WorkerPoolConfig {
            worker_count: 10,
            max_retries: 3,
            retry_delay: Duration::from_secs(5),
            grace_period: Duration::from_secs(30),
            lease: Duration::from_secs(30),
            progress_interval: crate::progress::DEFAULT_PROGRESS_INTERVAL,
            prefetch: None,
            sandbox: SandboxConfig::default(),
        }
    }
}

/// `jobs.scheduler`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Whether pools built by [`Config::pool_builder`](super::Config::pool_builder)
    /// run the recurring-job scheduler (default true).
    #[serde(with = "de::flag")]
    pub enabled: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { enabled: true }
    }
}

/// `jobs.archive`: where pools built by
/// [`Config::pool_builder`](super::Config::pool_builder) archive the jobs
/// that the retention of a queue with `archive: true` deletes (see
/// [`crate::archive`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// The folder of the JSON-lines archive (`DIR/QUEUE/YYYY-MM-DD.N.jsonl`);
    /// absent: pools run no archiver, and archiving queues keep their
    /// backlog (their retention stops once it is full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<std::path::PathBuf>,
    /// The size in bytes past which a day's file is closed and the next
    /// begun (default 64 MiB).
    pub max_file_size: u64,
    /// How often a pool's archiver looks at the backlogs when its own
    /// fetches did not wake it (default `"10s"`).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// Entries written per step (default 500, at least 1).
    pub batch: usize,
    /// How long a queue stays one archiver's after each step (default
    /// `"30s"`).
    #[serde(with = "de::duration")]
    pub lease: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        let s = crate::archive::ArchiveSettings::default();
        ArchiveConfig {
            dir: None,
            max_file_size: crate::archive::DEFAULT_ARCHIVE_FILE_SIZE,
            interval: s.interval,
            batch: s.batch,
            lease: s.lease,
        }
    }
}

impl ArchiveConfig {
    /// The archiver's settings.
    pub fn settings(&self) -> crate::archive::ArchiveSettings {
        crate::archive::ArchiveSettings { interval: self.interval, batch: self.batch, lease: self.lease }
    }
}

/// `jobs.metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether Prometheus metrics are kept and served (default true).
    #[serde(with = "de::flag")]
    pub enabled: bool,
    /// The prefix of every metric name (default `jobs_`).
    pub prefix: String,
}

/// The metrics prefix unless configured (the same as `JobMetrics`' default).
const DEFAULT_METRICS_PREFIX: &str = "jobs_";

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, prefix: DEFAULT_METRICS_PREFIX.to_owned() }
    }
}

/// `jobs.http`.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Refuse enqueues past this many pending and scheduled jobs (at least 1;
    /// absent: no bound).
    pub max_jobs: Option<u64>,
    /// Accept only these priorities (`low`, `normal`, `high`, `critical`);
    /// empty or absent: all.
    pub priority_levels: Vec<Priority>,
    /// Run at most this many of the queue's jobs at once, across every
    /// pool and process (at least 1; absent: no bound).
    pub max_running: Option<u64>,
    /// Start at most this many of the queue's jobs per window, across every
    /// pool and process: `"100/1m"` (absent: no bound).
    pub rate: Option<crate::queue::Rate>,
    /// Run at most this many jobs of one group at once, for every group of
    /// the queue, overriding the jobs' own `concurrency` (at least 1;
    /// absent: each job's own).
    pub group_concurrency: Option<u32>,
    /// Start at most this many jobs of one group per window, for every
    /// group of the queue, overriding the jobs' own `rate`: `"10/1s"`
    /// (absent: each job's own).
    pub group_rate: Option<crate::queue::Rate>,
    /// Stop starting the queue's jobs for a while when they keep failing:
    /// `"5/1m:30s"` (five failed attempts within a minute, then thirty
    /// seconds without starts, then one probe); absent: no breaker.
    pub breaker: Option<crate::queue::Breaker>,
    /// A breaker of the same form for each group of the queue, on its own:
    /// a failing group stops while the others run on; absent: none.
    pub group_breaker: Option<crate::queue::Breaker>,
    /// The queue's own bounds on its finished jobs, overriding the
    /// backend's: `{ succeeded: "1h", succeeded_max: 1000, dead_age:
    /// "30days", dead_max: 100 }`, any of them (absent: the backend's).
    pub retention: crate::queue::QueueRetention,
    /// Archive every finished job the retention deletes (default false):
    /// see `jobs.archive` for where the archiver writes them.
    #[serde(with = "de::flag")]
    pub archive: bool,
}

impl QueueConfig {
    /// The backend policy this entry sets.
    pub fn policy(&self) -> QueuePolicy {
        QueuePolicy {
            max_jobs: self.max_jobs,
            priority_levels: self.priority_levels.clone(),
            max_running: self.max_running,
            rate: self.rate,
            group_concurrency: self.group_concurrency,
            group_rate: self.group_rate,
            breaker: self.breaker,
            group_breaker: self.group_breaker,
            retention: self.retention,
            archive: self.archive,
        }
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
