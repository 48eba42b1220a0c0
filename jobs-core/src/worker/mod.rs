//! [`WorkerPool`]: runs linked jobs from a [`JobQueue`].
//!
//! One fetch loop per pool takes batches of leased jobs as worker slots free
//! up, and waits on the backend's wake-up or the next due time when idle
//! (never a sleep-poll). Each job runs in its own task (a panic is caught as
//! a failed attempt) under its timeout. Results are acknowledged in batches;
//! leases of all running jobs are extended in one call per heartbeat, on a
//! thread of its own so that job code blocking the runtime cannot starve it.

mod ahead;
mod backoff;
mod exec;
mod failing;
mod heartbeat;
mod inflight;
mod run;
mod sandbox;
mod shared;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use backoff::Backoff;
pub use shared::UnknownJobs;

use crate::error::Error;
use crate::hooks::pool::PoolHooks;
use crate::hooks::{DeadJob, FailedAttempt, JobLayer};
use crate::parse::validate_queue_name;
use crate::queue::{JobQueue, PoolInfo};
use inflight::InFlight;
use shared::Core;

/// How long jobs still running when the grace period ends get, once
/// signalled through `JobContext::cancelled()`, to return before they are
/// dropped; and how long shutdown then waits for them to stop.
pub const STOP_AFTER_SIGNAL: Duration = Duration::from_secs(1);

/// Entry point: `WorkerPool::builder(queue)`.
///
/// ```no_run
/// # use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)] async fn noop() -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main] async fn main() -> Result<(), jobs_core::Error> {
/// let queue = MemoryQueue::new();
/// let workers = WorkerPool::builder(queue.clone()).workers(16).queues(["email", "default"]).start()?;
/// // ... on SIGTERM:
/// workers.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WorkerPool;

impl WorkerPool {
    /// A builder for a pool on `queue` (any backend; clone it first if you
    /// keep using it).
    pub fn builder<Q: JobQueue>(queue: Q) -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            queue: Arc::new(queue),
            workers: 10,
            queues: None,
            weights: None,
            grace: Duration::from_secs(30),
            lease: Duration::from_secs(30),
            backoff: Backoff::default(),
            max_retries: 3,
            unknown: UnknownJobs::DeadLetter,
            fetch_batch: 256,
            prefetch: None,
            max_result: crate::queue::DEFAULT_MAX_PAYLOAD,
            max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
            max_snoozes: crate::queue::DEFAULT_MAX_SNOOZES,
            progress_interval: crate::progress::DEFAULT_PROGRESS_INTERVAL,
            job_backoff: HashMap::new(),
            data: crate::context::Extensions::default(),
            hooks: PoolHooks::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            #[cfg(feature = "cron")]
            scheduler: true,
            archive: None,
            archive_settings: crate::archive::ArchiveSettings::default(),
            #[cfg(all(unix, feature = "sandbox"))]
            sandbox: crate::sandbox::Sandbox::default(),
        }
    }
}

/// Settings of a [`WorkerPool`]; [`WorkerPoolBuilder::start`] runs it.
#[must_use = "a pool runs only once started"]
pub struct WorkerPoolBuilder {
    queue: Arc<dyn JobQueue>,
    workers: usize,
    queues: Option<Vec<String>>,
    weights: Option<Vec<u32>>,
    grace: Duration,
    lease: Duration,
    backoff: Backoff,
    max_retries: u32,
    unknown: UnknownJobs,
    fetch_batch: usize,
    /// `None`: adaptive (see `ahead::Allowance`).
    prefetch: Option<usize>,
    max_result: usize,
    max_crashes: u32,
    max_snoozes: u32,
    progress_interval: Duration,
    job_backoff: HashMap<String, Backoff>,
    data: crate::context::Extensions,
    hooks: PoolHooks,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::JobMetrics>,
    #[cfg(feature = "cron")]
    scheduler: bool,
    archive: Option<Arc<dyn crate::archive::ArchiveSink>>,
    archive_settings: crate::archive::ArchiveSettings,
    #[cfg(all(unix, feature = "sandbox"))]
    sandbox: crate::sandbox::Sandbox,
}

impl WorkerPoolBuilder {
    /// Runs an [`Archiver`](crate::archive::Archiver) over the pool's
    /// queues, writing to `sink` the jobs that the retention of a queue
    /// whose policy archives deletes (see [`crate::archive`]). Several pools
    /// may run one: one at a time writes each queue. `start` fails when the
    /// backend keeps no archive backlog.
    pub fn archive(mut self, sink: impl crate::archive::ArchiveSink) -> Self {
        self.archive = Some(Arc::new(sink));
        self
    }

    /// How the pool's archiver works (see [`WorkerPoolBuilder::archive`]).
    pub fn archive_settings(mut self, settings: crate::archive::ArchiveSettings) -> Self {
        self.archive_settings = settings;
        self
    }

    /// How many jobs run at once (default 10).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// The queues to serve, in strict order: a queue's jobs are taken only
    /// when every queue before it is empty. Default: every queue a linked
    /// job declares.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = Some(queues.into_iter().map(Into::into).collect());
        self.weights = None;
        self
    }

    /// The queues to serve with weights: each fetch orders the queues at
    /// random in proportion to their weights, so no queue starves.
    pub fn weighted_queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = (S, u32)>,
        S: Into<String>,
    {
        let (q, w): (Vec<String>, Vec<u32>) = queues.into_iter().map(|(q, w)| (q.into(), w)).unzip();
        self.queues = Some(q);
        self.weights = Some(w);
        self
    }

    /// How long `shutdown` waits for running jobs before it cancels them and
    /// hands them back (default 30 s).
    pub fn grace_period(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// How long a taken job stays leased without a heartbeat (default 30 s);
    /// a crashed worker's jobs run again elsewhere after it.
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// The backoff base (default 5 s; factor 2, cap 1 h).
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.backoff.base = d;
        self
    }

    /// The whole backoff: base, factor, cap and jitter.
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }

    /// A backoff for one job type (by job name, e.g. `Job::NAME`), instead of
    /// the pool's.
    pub fn job_backoff(mut self, job_name: &str, b: Backoff) -> Self {
        self.job_backoff.insert(job_name.to_owned(), b);
        self
    }

    /// Whether this pool runs the scheduler (default on): it adds the
    /// schedules declared with `#[job(cron = ..)]` and enqueues every due
    /// tick, once across all processes however many run one. (Feature `cron`.)
    #[cfg(feature = "cron")]
    pub fn scheduler(mut self, enabled: bool) -> Self {
        self.scheduler = enabled;
        self
    }

    /// Shares a value with every job of the pool: a job function receives
    /// it by taking a [`Data<T>`](crate::Data) parameter (also readable with
    /// [`JobContext::data`](crate::JobContext::data)). One value per type:
    /// wrap settings in a type of your own.
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// Shares every value of `data` with the pool's jobs, as
    /// [`WorkerPoolBuilder::data`] does for one (a later value of the same
    /// type replaces an earlier one).
    pub fn extensions(mut self, data: crate::context::Extensions) -> Self {
        self.data.extend(data);
        self
    }

    /// Wraps every attempt of the pool's jobs in `layer` (see [`JobLayer`]).
    /// Layers run in the order they are added: the first is the outermost,
    /// it sees each attempt first and its outcome last.
    pub fn layer(mut self, layer: impl JobLayer) -> Self {
        self.hooks.layers.push(Arc::new(layer));
        self
    }

    /// Calls `f` after every failed attempt this pool runs (an error, a
    /// panic, a timeout), once its layers have had their say, with whether
    /// the job will run again. Runs on the job's task: keep it quick (spawn
    /// anything slow); a panic in it is logged.
    ///
    /// ```no_run
    /// # use jobs_core::prelude::*;
    /// # fn f(queue: MemoryQueue) -> jobs_core::WorkerPoolBuilder {
    /// WorkerPool::builder(queue).on_failure(|failed| {
    ///     tracing::warn!(job = %failed.id, retry = failed.will_retry, "{}", failed.error);
    /// })
    /// # }
    /// ```
    pub fn on_failure(mut self, f: impl Fn(&FailedAttempt) + Send + Sync + 'static) -> Self {
        self.hooks.add_failure(f);
        self
    }

    /// Calls `f` once for every job that ends dead through this pool — the
    /// place for an error reporter. That is each attempt of the pool's that
    /// ends dead (a permanent error, the last retry failed, an unknown job
    /// name), called once the backend has recorded it (an attempt whose
    /// lease was lost meanwhile is another pool's to report), and each job
    /// the pool's fetches find dead in the lease of a pool that died (its
    /// last attempt's worker crashed, or it kept losing leases before it
    /// started). So across any number of pools and crashes, each death is
    /// reported by one pool, once — unless the reporting process itself
    /// dies in the instant between the backend's answer and the call.
    /// Runs on the pool's acknowledgement or fetch task: keep it quick
    /// (spawn anything slow); a panic in it is logged.
    ///
    /// ```no_run
    /// # use jobs_core::prelude::*;
    /// # fn f(queue: MemoryQueue) -> jobs_core::WorkerPoolBuilder {
    /// WorkerPool::builder(queue).on_dead(|dead| {
    ///     tracing::error!(job = %dead.id, name = %dead.name, attempts = dead.attempts, "dead: {}", dead.error);
    /// })
    /// # }
    /// ```
    pub fn on_dead(mut self, f: impl Fn(&DeadJob) + Send + Sync + 'static) -> Self {
        self.hooks.add_dead(f);
        self
    }

    /// Retries for jobs whose attribute and options set none (default 3).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// What to do with jobs no linked handler knows.
    pub fn unknown_jobs(mut self, policy: UnknownJobs) -> Self {
        self.unknown = policy;
        self
    }

    /// Records this pool's attempts, durations, retries, dead jobs and busy
    /// workers in `metrics` (see [`JobMetrics`](crate::JobMetrics)). (Feature `metrics`.)
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: &crate::metrics::JobMetrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The largest result (a job function's `Ok` value, serialized) that is
    /// stored (default 512 KiB). An attempt whose result is larger ends dead
    /// with an error that says so: the result would be as large again.
    pub fn max_result(mut self, bytes: usize) -> Self {
        self.max_result = bytes;
        self
    }

    /// The crash budget (default 10): how many times a job may lose its
    /// lease before its handler was known to start — its worker died while
    /// the job waited to run — until it ends dead. Such a loss is not an
    /// attempt. A job whose handler started and whose worker then died has
    /// had an attempt; a job that keeps killing its workers ends dead when
    /// its retries run out.
    pub fn crash_budget(mut self, n: u32) -> Self {
        self.max_crashes = n;
        self
    }

    /// How many times one job may snooze ([`JobError::retry_in`](crate::JobError::retry_in);
    /// default 100, [`DEFAULT_MAX_SNOOZES`](crate::backend::DEFAULT_MAX_SNOOZES)).
    /// A snooze is not an attempt, so without a bound a job that always
    /// snoozes would never end; the snooze past this one ends it dead with
    /// an error that says it snoozed too often.
    pub fn max_snoozes(mut self, n: u32) -> Self {
        self.max_snoozes = n;
        self
    }

    /// The shortest time between two progress writes of one job (default
    /// 250 ms, [`DEFAULT_PROGRESS_INTERVAL`](crate::backend::DEFAULT_PROGRESS_INTERVAL)):
    /// a job that calls [`JobContext::progress`](crate::JobContext::progress)
    /// in a tight loop costs the backend at most one write per interval, of
    /// its latest value, and the last value is written before the attempt's
    /// end. Zero writes every call.
    pub fn progress_interval(mut self, d: Duration) -> Self {
        self.progress_interval = d;
        self
    }

    /// How the pool runs sandboxed jobs: each attempt in a child process
    /// under limits (see [`crate::sandbox`]; default
    /// [`Sandbox::default`](crate::sandbox::Sandbox::default)). With
    /// [`Sandbox::every_job`](crate::sandbox::Sandbox::every_job) every job
    /// of the pool is sandboxed. (Feature `sandbox`, Unix.)
    #[cfg(all(unix, feature = "sandbox"))]
    pub fn sandbox(mut self, sandbox: crate::sandbox::Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The most jobs one fetch takes (default 256).
    pub fn fetch_batch(mut self, n: usize) -> Self {
        self.fetch_batch = n;
        self
    }

    /// How many jobs the pool takes ahead of its free workers: always `n`
    /// (0: a fetch takes at most as many jobs as workers are free).
    ///
    /// With short jobs, a pool whose workers are all busy spends much of its
    /// time waiting for a fetch's round trip once one frees; jobs taken
    /// ahead are ready the moment it does, and the next fetch is already on
    /// its way. A job taken ahead starts as soon as a worker is free, in the
    /// order fetched. One that finds no free worker within half the
    /// [lease](WorkerPoolBuilder::lease) is handed back (not an attempt)
    /// for another pool, as are those still waiting when the pool shuts
    /// down: a job is never held by a pool that cannot start it within its
    /// lease. A job enqueued after them (more urgent, or of a group whose
    /// turn it is) may wait behind up to `n` of them.
    ///
    /// Without this setting the pool takes jobs ahead as its pace calls for
    /// them: as many as its recent rate of job ends would start within
    /// about 10 ms, at most 256 or one per worker, whichever is more. An
    /// idle pool takes none ahead, nor one ending fewer than 100 jobs a
    /// second; a pool running short jobs keeps a fetch on its way while its
    /// workers run. Once it serves a queue with groups it takes at most one
    /// job per worker ahead, so that a group's jobs that arrive later wait
    /// behind few of the others' (set here, `n` holds for every queue).
    ///
    /// ```no_run
    /// # use jobs_core::prelude::*;
    /// # async fn f() -> Result<(), jobs_core::Error> {
    /// let pool = WorkerPool::builder(MemoryQueue::new()).workers(32).prefetch(32).start()?;
    /// # let _ = pool; Ok(()) }
    /// ```
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }

    /// Starts the pool on the current tokio runtime.
    ///
    /// Fails on duplicate job names (naming both definitions), when no job is
    /// linked, when a linked job takes a [`Data<T>`](crate::Data) the pool was
    /// not given (naming the job and the type), on a bad setting, and outside
    /// a tokio runtime. Logs a warning for a served queue that no linked job
    /// declares. With sandboxed jobs, also fails in a process started as a
    /// sandbox child (its `main` does not serve children first), and when
    /// the sandbox is set to run without network and this machine does not
    /// allow it.
    pub fn start(self) -> Result<WorkerHandle, Error> {
        let registry = crate::registry::registry()?;
        #[cfg(all(unix, feature = "sandbox"))]
        let sandbox = sandbox::children(
            &self.sandbox,
            #[cfg(feature = "metrics")]
            self.metrics.as_ref(),
            &registry,
        )?;
        #[cfg(not(all(unix, feature = "sandbox")))]
        let sandbox = sandbox::children(&registry)?;
        // Any linked job can arrive on a served queue, so every one's data
        // must be here before the first fetch.
        let mut names: Vec<&&str> = registry.keys().collect();
        names.sort_unstable();
        for name in names {
            let d = registry[*name];
            if let Some(need) = d.data.iter().find(|n| !self.data.contains((n.type_id)())) {
                return Err(Error::InvalidArgument(format!(
                    "job `{}` ({}) takes `Data<{}>`, but the pool was given no value of that type: \
                     add it with `WorkerPoolBuilder::data(..)`",
                    d.name,
                    d.location(),
                    (need.type_name)()
                )));
            }
        }
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidArgument("WorkerPool::start must be called inside a tokio runtime".into()))?;
        if self.workers == 0 {
            return Err(Error::InvalidArgument("workers must be at least 1".into()));
        }
        // Without a fixed prefetch, places ahead used as the pool's pace
        // calls for them.
        let (prefetch, adaptive) =
            self.prefetch.map_or((self.workers.max(ahead::ADAPTIVE_AHEAD), true), |n| (n, false));
        if self.workers.saturating_add(prefetch) > Semaphore::MAX_PERMITS {
            return Err(Error::InvalidArgument(format!(
                "workers and prefetch together must be at most {}",
                Semaphore::MAX_PERMITS
            )));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(Error::InvalidArgument("lease must be at least 100 ms".into()));
        }
        let declared: BTreeSet<&str> = registry.values().map(|d| d.queue).collect();
        let queues = match self.queues {
            Some(q) if q.is_empty() => {
                return Err(Error::InvalidArgument("queues must name at least one queue".into()))
            }
            Some(q) => q,
            None => declared.iter().map(|q| q.to_string()).collect(),
        };
        for q in &queues {
            validate_queue_name(q)?;
            if !declared.contains(q.as_str()) {
                tracing::warn!(queue = %q, "served queue is declared by no linked job; it runs only jobs sent there with JobOptions::queue");
            }
        }
        if let Some(w) = &self.weights {
            if w.iter().all(|w| *w == 0) {
                return Err(Error::InvalidArgument("queue weights must not all be zero".into()));
            }
        }
        #[cfg(feature = "cron")]
        let schedule_store = match (self.scheduler, self.queue.schedule_store()) {
            (false, _) => None,
            (true, Some(store)) => Some(store),
            (true, None) => match registry.values().find(|d| d.cron.is_some()) {
                Some(d) => {
                    return Err(Error::InvalidArgument(format!(
                        "job `{}` declares a cron schedule, but this backend stores no schedules: \
                         use a backend with schedules or turn the pool's scheduler off",
                        d.name
                    )))
                }
                None => None,
            },
        };
        let archive = match (self.archive, self.queue.archive()) {
            (None, _) => None,
            (Some(sink), Some(backlog)) => Some((sink, backlog)),
            (Some(_), None) => {
                return Err(Error::InvalidArgument(
                    "the pool was given an archive sink, but this backend keeps no archive backlog".into(),
                ))
            }
        };
        let mut job_names: Vec<String> = registry.keys().map(|n| n.to_string()).collect();
        job_names.sort_unstable();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let hard = CancellationToken::new();
        let abort = CancellationToken::new();
        let killed = CancellationToken::new();
        let archive_wake = archive.as_ref().map(|_| Arc::new(tokio::sync::Notify::new()));
        let flow_store = self.queue.flow_store();
        let flow_wake = flow_store.as_ref().map(|_| Arc::new(tokio::sync::Notify::new()));
        let core = Arc::new(Core {
            queue: self.queue.clone(),
            archive_wake: archive_wake.clone(),
            flow_wake: flow_wake.clone(),
            presence: self.queue.presence(),
            registry,
            queues: queues.clone(),
            weights: self.weights,
            lease: self.lease,
            backoff: self.backoff,
            max_retries: self.max_retries,
            unknown: self.unknown,
            fetch_batch: self.fetch_batch.max(1),
            prefetch,
            adaptive,
            ends: std::sync::atomic::AtomicU64::new(0),
            ahead: std::sync::atomic::AtomicUsize::new(0),
            max_result: self.max_result,
            max_crashes: self.max_crashes,
            max_snoozes: self.max_snoozes,
            progress_interval: self.progress_interval,
            quarantine: tokio::sync::Mutex::new(()),
            returning: Arc::default(),
            job_backoff: self.job_backoff,
            data: Arc::new(self.data),
            hooks: self.hooks,
            #[cfg(feature = "metrics")]
            metrics: self.metrics.as_ref().map(|m| m.pool(self.workers)),
            #[cfg(all(unix, feature = "sandbox"))]
            sandbox_every_job: self.sandbox.every_job,
            #[cfg(all(unix, feature = "sandbox"))]
            sandbox,
            identity: PoolInfo {
                id: format!("pool-{}", ulid::Ulid::new()),
                host: host_name(),
                pid: std::process::id(),
                queues: queues.clone(),
                workers: self.workers,
                running: 0,
                running_jobs: Vec::new(),
                ahead: 0,
                started_at: std::time::SystemTime::now(),
                last_seen: std::time::SystemTime::now(),
                jobs: job_names,
            },
            inflight: InFlight::default(),
            acks: ack_tx,
            hard: hard.clone(),
            abort,
            killed: killed.clone(),
        });
        #[cfg(not(all(unix, feature = "sandbox")))]
        let () = sandbox;
        sandbox::warm_up(&core);
        let tracker = TaskTracker::new();
        let sem = Arc::new(Semaphore::new(self.workers));
        let fetch_task = rt.spawn(run::fetch_loop(core.clone(), sem, tracker.clone(), stop.clone()));
        let acks_closing = CancellationToken::new();
        let ack_task = rt.spawn(run::ack_loop(core.clone(), ack_rx, acks_closing.clone()));
        let heartbeat = heartbeat::spawn_heartbeat(core.clone())?;
        let archiver = archive.map(|(sink, backlog)| {
            let mut archiver = crate::archive::Archiver::new(backlog, sink, core.identity.id.clone(), queues.clone())
                .settings(self.archive_settings);
            if let Some(wake) = archive_wake {
                archiver = archiver.wake_on(wake);
            }
            #[cfg(feature = "metrics")]
            let archiver = match &self.metrics {
                Some(m) => archiver.metrics(m),
                None => archiver,
            };
            let done = CancellationToken::new();
            (done.clone(), rt.spawn(archiver.run(done)))
        });
        let relay = flow_store.zip(flow_wake).map(|(store, wake)| {
            let done = CancellationToken::new();
            let task = crate::flow::relay::run(core.queue.clone(), store, queues.clone(), wake, done.clone());
            (done, rt.spawn(task))
        });
        #[cfg(feature = "cron")]
        let scheduler = schedule_store.map(|store| {
            #[cfg(not(feature = "metrics"))]
            let lateness: Option<crate::schedule::LatenessHook> = None;
            #[cfg(feature = "metrics")]
            let lateness = self
                .metrics
                .clone()
                .map(|m| Arc::new(move |late| m.observe_schedule_lateness(late)) as crate::schedule::LatenessHook);
            crate::schedule::start_for_pool(store, &core.registry, lateness)
        });
        Ok(WorkerHandle {
            #[cfg(feature = "cron")]
            scheduler,
            core,
            stop,
            grace: self.grace,
            tracker,
            fetch_task,
            ack_task,
            acks_closing,
            heartbeat,
            archiver,
            relay,
        })
    }
}

/// A running pool. Call [`WorkerHandle::shutdown`] to stop it cleanly;
/// dropping it leaves the pool running until the runtime ends.
pub struct WorkerHandle {
    core: Arc<Core>,
    stop: CancellationToken,
    grace: Duration,
    tracker: TaskTracker,
    fetch_task: tokio::task::JoinHandle<Result<(), Error>>,
    ack_task: tokio::task::JoinHandle<()>,
    acks_closing: CancellationToken,
    heartbeat: heartbeat::Heartbeat,
    #[cfg(feature = "cron")]
    scheduler: Option<crate::schedule::SchedulerHandle>,
    /// The archiver's stop signal and task.
    archiver: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// The flow relay's stop signal and task.
    relay: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl WorkerHandle {
    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.core.inflight.len()
    }

    /// The queues this pool serves.
    pub fn queues(&self) -> &[String] {
        &self.core.queues
    }

    /// Stops fetching, waits for running jobs up to the grace period, then
    /// signals the rest through `JobContext::cancelled()`, gives them
    /// [`STOP_AFTER_SIGNAL`] to return, and drops those that did not. A job
    /// is handed back to pending (not counted as an attempt) only once it
    /// has stopped, so no other pool can start it while it still runs here;
    /// one stuck in blocking code that cannot be dropped stays leased and
    /// runs again when its lease expires. Then flushes results.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.stop_gracefully(true).await
    }

    /// Runs the pool until `signal` resolves, then shuts it down as
    /// [`WorkerHandle::shutdown`] does: the way to run a worker process.
    ///
    /// Should the pool stop taking jobs by itself first (its backend cannot
    /// wait for jobs, or its fetch loop panicked), it is shut down the same
    /// way, and the error is [`Error::PoolStopped`] with the cause.
    ///
    /// ```no_run
    /// # use jobs_core::prelude::*;
    /// # #[job(crate = jobs_core)] async fn noop() -> Result<(), JobError> { Ok(()) }
    /// # #[tokio::main] async fn main() -> Result<(), jobs_core::Error> {
    /// let queue = MemoryQueue::new();
    /// let workers = WorkerPool::builder(queue.clone()).start()?;
    /// // Until SIGINT (Ctrl-C) or SIGTERM; running jobs get the grace period.
    /// workers.run_until(jobs_core::shutdown_signal()?).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_until<S: Future<Output = ()>>(mut self, signal: S) -> Result<(), Error> {
        let ended = tokio::select! {
            // The fetch loop first: when both are ready, a pool that failed
            // must not look like one that was merely asked to stop.
            biased;
            ended = &mut self.fetch_task => ended,
            () = signal => {
                tracing::info!(jobs = self.running(), "shutdown signal: stopping the worker pool");
                return self.stop_gracefully(true).await;
            }
        };
        let cause: Box<dyn std::error::Error + Send + Sync> = match ended {
            Ok(Err(e)) => Box::new(e),
            Ok(Ok(())) => "its fetch loop ended without being asked to".into(),
            Err(e) => Box::new(e),
        };
        tracing::error!(error = %cause, "the worker pool stopped taking jobs by itself: shutting it down");
        // The fetch loop's end was just awaited: a JoinHandle must not be
        // polled again.
        self.stop_gracefully(false).await?;
        Err(Error::PoolStopped(cause))
    }

    /// [`WorkerHandle::shutdown`]; `fetching` is false when the fetch loop
    /// has already ended and been awaited.
    async fn stop_gracefully(self, fetching: bool) -> Result<(), Error> {
        #[cfg(feature = "cron")]
        if let Some(s) = self.scheduler {
            s.stop().await;
        }
        self.stop.cancel();
        if fetching {
            let _ = self.fetch_task.await;
        }
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait()).await.is_err() {
            let running = self.core.inflight.len();
            tracing::info!(jobs = running, "grace period over: stopping running jobs to hand them back");
            // From here on every job that ends is handed back, whatever it
            // returns (see `exec`).
            self.core.hard.cancel();
            self.core.inflight.cancel_all();
            if tokio::time::timeout(STOP_AFTER_SIGNAL, self.tracker.wait()).await.is_err() {
                self.core.abort.cancel();
                if tokio::time::timeout(STOP_AFTER_SIGNAL, self.tracker.wait()).await.is_err() {
                    tracing::warn!(
                        jobs = self.core.inflight.len(),
                        "jobs blocked in code that cannot be stopped: not handed back; they run again when their leases expire"
                    );
                }
            }
        }
        sandbox::close(&self.core);
        self.acks_closing.cancel();
        let _ = self.ack_task.await;
        // After the last acks: the steps they ended are applied.
        if let Some((done, task)) = self.relay {
            done.cancel();
            let _ = task.await;
        }
        // Last: what this pool's fetches deleted is archived before it goes.
        if let Some((done, task)) = self.archiver {
            done.cancel();
            let _ = task.await;
        }
        self.heartbeat.stop().await;
        if let Some(presence) = &self.core.presence {
            if let Err(e) = presence.remove_pool(&self.core.identity.id).await {
                tracing::warn!(error = %e, "could not remove the pool's presence record; it expires by itself");
            }
        }
        Ok(())
    }

    /// This pool's unique id (as listed by [`PoolPresence::pools`](crate::PoolPresence::pools)).
    pub fn id(&self) -> &str {
        &self.core.identity.id
    }

    /// Stops the pool the way a crash would: no acknowledgement, no hand
    /// back, no heartbeat. Its jobs run again after their leases expire. For
    /// tests of crash recovery.
    #[doc(hidden)]
    pub async fn kill(self) {
        #[cfg(feature = "cron")]
        if let Some(s) = self.scheduler {
            s.stop().await;
        }
        self.core.killed.cancel();
        sandbox::close(&self.core);
        self.stop.cancel();
        if let Some((_, task)) = self.archiver {
            task.abort();
        }
        if let Some((_, task)) = self.relay {
            task.abort();
        }
        let _ = self.fetch_task.await;
        let _ = self.ack_task.await;
        self.heartbeat.stop().await;
    }
}

/// The machine's host name, for presence records.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into())
}
