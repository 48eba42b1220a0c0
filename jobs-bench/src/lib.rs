//! The benchmark program of `jobs` (`cargo run --release -p jobs-bench`).
//!
//! It measures, on `RedisQueue` and on `MemoryQueue`: enqueue rates (single
//! awaited calls, many in flight, `enqueue_many` batches), end-to-end
//! throughput of no-op jobs with producers and a worker pool running
//! together, enqueue-to-start latency at a fixed moderate rate, lateness of
//! delayed jobs, and memory per pending job; and it runs `redis-benchmark`
//! against the same server for the machine's ceiling. [`run`] does it all
//! and returns a [`Report`]; the binary prints it as a table and JSON.
//!
//! One measurement runs only when asked for (`--only partitions`, see
//! [`partitions`]): the end-to-end run on a Redis Cluster of three masters
//! it starts itself (whatever `--redis` says), with the bench queue in one
//! partition and then spread over partitions on every master, and each
//! master's share of Redis's CPU.
//!
//! With `JOBS_BENCH_DEBUG` set, the latency measurement also prints every
//! sample over 5 ms, with its index (at 500/s, index / 500 is the second).

pub mod job;
pub mod partitions;
pub mod peers;
pub mod processes;
pub mod report;
pub mod scenario;
pub mod server;

use std::io::Write;
use std::time::Duration;

use jobs_core::SharedQueue;
use jobs_redis::{RedisConfig, RedisQueue};
use serde::Serialize;

pub use report::{Ceiling, Figures, Machine, Report};
pub use server::Target;

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A queue call failed.
    #[error("queue: {0}")]
    Queue(#[from] jobs_core::Error),
    /// Talking to Redis directly (INFO, cleanup) failed.
    #[error("redis: {0}")]
    Redis(String),
    /// `redis-benchmark` could not run or said nothing useful.
    #[error("redis-benchmark: {0}")]
    RedisBenchmark(String),
    /// Jobs did not all run in time.
    #[error("stuck: {0}")]
    Stuck(String),
    /// A producer task ended abnormally.
    #[error("task: {0}")]
    Task(String),
    /// Reading or writing a file failed.
    #[error("io: {0}")]
    Io(String),
}

/// Sizes of the measurements.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Single awaited enqueues.
    pub single_n: usize,
    /// Single enqueues with many in flight, and how many at a time.
    pub in_flight_n: usize,
    /// Concurrent single enqueues.
    pub in_flight: usize,
    /// Jobs sent with `enqueue_many`, batch size, and batches in flight.
    pub batch_n: usize,
    /// Jobs per `enqueue_many` call.
    pub batch: usize,
    /// `enqueue_many` calls in flight.
    pub batches_in_flight: usize,
    /// Jobs of the end-to-end run.
    pub e2e_n: usize,
    /// The pool's workers (jobs running at once).
    pub workers: usize,
    /// Jobs a pool takes ahead of its free workers, always
    /// (`WorkerPoolBuilder::prefetch`; 0 takes none); `None`: the pools'
    /// default, as their pace calls for them.
    pub prefetch: Option<usize>,
    /// Partitions every queue of the Redis runs is spread over (all on the
    /// one server: what partitioning costs, apart from where the
    /// partitions live); `None`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u16>,
    /// Worker processes of the `processes` run, which share `workers`
    /// among them.
    pub processes: usize,
    /// The program run as each worker process (`jobs-bench
    /// --worker-process`); `None`: this program, which must be jobs-bench.
    #[serde(skip)]
    pub worker_exe: Option<std::path::PathBuf>,
    /// Producer tasks of the end-to-end run, each sending batches of
    /// `producer_batch` one after another.
    pub producers: usize,
    /// Jobs per `enqueue_many` call of the end-to-end producers.
    pub producer_batch: usize,
    /// Jobs timed for latency (after a 5 % warm-up), and their rate.
    pub latency_n: usize,
    /// Jobs per second of the latency run.
    pub latency_rate: u32,
    /// Delayed jobs timed for lateness, their rate, and the longest delay.
    pub delayed_n: usize,
    /// Delayed jobs enqueued per second.
    pub delayed_rate: u32,
    /// Longest delay (ms); delays are spread over 10 ms ..= this.
    pub delayed_max_ms: u64,
    /// Pending jobs for the memory figure.
    pub memory_n: usize,
    /// Groups held out of the turn beside the `groups-idle` run.
    pub idle_groups: usize,
    /// Steps of the `fan-in` workflow between its first and last step.
    pub fan_in_width: usize,
    /// Seconds of each window of the `rate-wait` measurement.
    pub rate_wait_secs: f64,
    /// Rounds of the events comparison, each an end-to-end run without a
    /// listener, one with every event recorded for a listener elsewhere
    /// and one with every event followed in this process (each cost
    /// reported is the median round's).
    pub events_rounds: usize,
    /// Requests per `redis-benchmark` test (0: do not run it).
    pub redis_benchmark_n: usize,
    /// Only these measurements (`single`, `inflight`, `many`, `e2e`,
    /// `processes`, `groups`, `groups-idle`, `fan-in`, `rate-wait`,
    /// `events`, `latency`, `delayed`, `memory`, and `partitions` and
    /// `groups-live`, which run only when named here); empty: all but
    /// those two. Skipped ones are absent from the JSON and have no row in
    /// the table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

/// Measurements run only when [`Settings::only`] names them: `partitions`
/// starts servers of its own, which a default run should not; `groups-live`
/// is the control of `groups-idle`, for when that one is slower.
const ON_REQUEST: &[&str] = &["partitions", "groups-live"];

impl Settings {
    pub(crate) fn runs(&self, name: &str) -> bool {
        if self.only.is_empty() {
            !ON_REQUEST.contains(&name)
        } else {
            self.only.iter().any(|o| o == name)
        }
    }
}

impl Settings {
    /// The full run (a few minutes).
    pub fn full() -> Self {
        Settings {
            single_n: 20_000,
            in_flight_n: 200_000,
            in_flight: 64,
            batch_n: 1_000_000,
            batch: 1_000,
            batches_in_flight: 4,
            e2e_n: 1_000_000,
            workers: 512,
            prefetch: None,
            partitions: None,
            processes: 4,
            worker_exe: None,
            producers: 2,
            producer_batch: 500,
            latency_n: 10_000,
            latency_rate: 500,
            delayed_n: 3_000,
            delayed_rate: 500,
            delayed_max_ms: 1_000,
            memory_n: 100_000,
            idle_groups: 100_000,
            fan_in_width: 10_000,
            rate_wait_secs: 10.0,
            events_rounds: 3,
            redis_benchmark_n: 1_000_000,
            only: Vec::new(),
        }
    }

    /// `--quick`: every figure, small sizes, under a minute.
    pub fn quick() -> Self {
        Settings {
            single_n: 2_000,
            in_flight_n: 20_000,
            batch_n: 100_000,
            e2e_n: 100_000,
            latency_n: 1_000,
            delayed_n: 300,
            delayed_max_ms: 500,
            memory_n: 100_000,
            idle_groups: 100_000,
            rate_wait_secs: 10.0,
            redis_benchmark_n: 100_000,
            ..Self::full()
        }
    }

    /// Tiny sizes for the smoke test: every code path, no meaningful figure.
    pub fn smoke() -> Self {
        Settings {
            single_n: 50,
            in_flight_n: 200,
            in_flight: 8,
            batch_n: 2_000,
            batch: 100,
            batches_in_flight: 2,
            e2e_n: 2_000,
            workers: 32,
            prefetch: None,
            partitions: None,
            processes: 2,
            worker_exe: None,
            producers: 2,
            producer_batch: 100,
            latency_n: 40,
            latency_rate: 500,
            delayed_n: 20,
            delayed_rate: 500,
            delayed_max_ms: 50,
            memory_n: 1_000,
            idle_groups: 1_000,
            fan_in_width: 200,
            rate_wait_secs: 0.2,
            events_rounds: 1,
            redis_benchmark_n: 2_000,
            only: Vec::new(),
        }
    }
}

/// Progress on stderr: one line per measurement, updated in place on a
/// terminal (elsewhere only its result is printed).
#[derive(Debug, Clone)]
pub struct Progress {
    label: String,
    quiet: bool,
    live: bool,
}

impl Progress {
    /// Progress lines prefixed with `label` (nothing when `quiet`).
    pub fn new(label: &str, quiet: bool) -> Self {
        use std::io::IsTerminal;
        Progress { label: label.to_owned(), quiet, live: std::io::stderr().is_terminal() }
    }

    fn sub(&self, what: &str) -> Progress {
        let p = Progress { label: format!("{} {what}", self.label), ..self.clone() };
        p.say("...");
        p
    }

    fn say(&self, msg: &str) {
        if !self.quiet && self.live {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{}: {msg}", self.label);
            let _ = e.flush();
        }
    }

    /// `done` of `total`.
    pub fn step(&self, done: usize, total: usize) {
        self.say(&format!("{:.0}% ({done}/{total})", done as f64 * 100.0 / total.max(1) as f64));
    }

    /// The measurement's result; ends the line.
    pub fn done(&self, result: &str) {
        match (self.quiet, self.live) {
            (true, _) => {}
            (false, true) => eprintln!("\r\x1b[2K{}: {result}", self.label),
            (false, false) => eprintln!("{}: {result}", self.label),
        }
    }
}

/// `Settings::partitions` for the stores made from now on (0: none).
static EVERY_QUEUE_PARTITIONS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Spreads every queue of the Redis stores made from now on over `n`
/// partitions (`None`: none).
pub fn set_every_queue_partitions(n: Option<u16>) {
    EVERY_QUEUE_PARTITIONS.store(n.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

fn every_queue_partitions() -> Option<u16> {
    Some(EVERY_QUEUE_PARTITIONS.load(std::sync::atomic::Ordering::Relaxed)).filter(|&n| n > 1)
}

/// A fresh set of handles for one measurement: producers and workers use
/// handles of their own (on Redis: their own connections), as separate
/// processes would.
pub struct Store {
    /// The producers' handle.
    pub producer: SharedQueue,
    /// The pool's handle.
    pub worker: SharedQueue,
    prefix: Option<String>,
}

impl Store {
    /// Its key prefix (Redis only).
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
}

/// Which backend to measure.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'a> {
    /// `RedisQueue` on this server.
    Redis(&'a Target),
    /// The embedded `MemoryQueue`.
    Memory,
}

impl Backend<'_> {
    /// Handles on an empty store (on Redis: a key prefix of its own).
    pub async fn store(&self, scenario: &str) -> Result<Store, BenchError> {
        self.store_with_history(scenario, jobs_core::backend::DEFAULT_EVENT_HISTORY).await
    }

    /// [`Backend::store`] keeping `events` job events per queue: the events
    /// run keeps every event of its jobs, so that a reader behind the
    /// producers is measured rather than told it missed some.
    pub async fn store_with_history(&self, scenario: &str, events: usize) -> Result<Store, BenchError> {
        match self {
            Backend::Memory => {
                let mem = jobs_core::MemoryQueue::new();
                mem.set_event_history(events);
                let q = scenario::shared(mem);
                Ok(Store { producer: q.clone(), worker: q, prefix: None })
            }
            Backend::Redis(t) => {
                let prefix = format!("jobs-bench-{}-{scenario}", std::process::id());
                t.delete_prefix(&prefix).await?;
                let partitions = match every_queue_partitions() {
                    Some(n) => [("*".to_owned(), n)].into(),
                    None => std::collections::BTreeMap::new(),
                };
                let config = RedisConfig {
                    prefix: prefix.clone(),
                    event_history: events,
                    partitions,
                    ..RedisConfig::new(t.url())
                };
                let producer = scenario::shared(RedisQueue::from_config(&config).await?);
                let worker = scenario::shared(RedisQueue::from_config(&config).await?);
                Ok(Store { producer, worker, prefix: Some(prefix) })
            }
        }
    }

    /// Zeroes Redis's command statistics (Redis only).
    async fn reset_stats(&self) -> Result<(), BenchError> {
        if let Backend::Redis(t) = self {
            t.reset_stats().await?;
        }
        Ok(())
    }

    /// Keeps Redis's busiest commands of measurement `name` of `jobs` jobs.
    async fn collect_stats(&self, name: &str, jobs: usize, f: &mut Figures) -> Result<(), BenchError> {
        if let Backend::Redis(t) = self {
            let mut c = t.command_stats(jobs).await?;
            c.truncate(10);
            f.commands.insert(name.to_owned(), c);
        }
        Ok(())
    }

    /// Redis's CPU seconds so far (none on MemoryQueue): the start of a
    /// [`Backend::redis_cpu_us_per`] measurement.
    async fn redis_cpu(&self) -> Result<Option<f64>, BenchError> {
        Ok(match self {
            Backend::Redis(t) => Some(t.cpu_seconds().await?),
            Backend::Memory => None,
        })
    }

    /// Redis's CPU microseconds per unit of work since `before` (from
    /// [`Backend::redis_cpu`]), over `units`.
    async fn redis_cpu_us_per(&self, before: Option<f64>, units: usize) -> Result<Option<f64>, BenchError> {
        Ok(match (self, before) {
            (Backend::Redis(t), Some(before)) => Some((t.cpu_seconds().await? - before) * 1e6 / units as f64),
            _ => None,
        })
    }

    /// Deletes what a measurement stored.
    pub async fn release(&self, store: Store) -> Result<(), BenchError> {
        let Store { producer, worker, prefix } = store;
        drop((producer, worker));
        if let (Backend::Redis(t), Some(prefix)) = (self, prefix) {
            t.delete_prefix(&prefix).await?;
        }
        Ok(())
    }
}

/// What an end-to-end run's queue holds before the run, if anything.
#[derive(Clone, Copy)]
enum Beside {
    /// [`Settings::idle_groups`] groups held out of the turn
    /// ([`scenario::idle_groups`]).
    IdleGroups,
    /// The jobs those groups hold, without groups
    /// ([`scenario::live_jobs`]): what their memory costs a fetch, apart
    /// from the groups.
    LiveJobs,
}

impl Beside {
    /// What the queue holds, for the progress lines.
    fn what(self, idle: usize) -> String {
        match self {
            Beside::IdleGroups => format!("{idle} idle groups"),
            Beside::LiveJobs => format!("{} ungrouped jobs of an idle group's kind", 2 * idle),
        }
    }
}

/// One end-to-end run in a store of its own named `name` (its stats
/// collected under that name): `groups` groups of jobs or none, in a
/// queue that holds `beside` first (if any); `label` names it in the
/// progress.
#[allow(clippy::too_many_arguments)] // one call per measurement, each naming every part
async fn end_to_end_in(
    backend: &Backend<'_>,
    s: &Settings,
    name: &str,
    groups: Option<usize>,
    beside: Option<Beside>,
    label: &str,
    progress: &Progress,
    f: &mut Figures,
) -> Result<scenario::EndToEnd, BenchError> {
    let st = backend.store(name).await?;
    let mut label = label.to_owned();
    if let Some(b) = beside {
        let (idle, what) = (s.idle_groups, b.what(s.idle_groups));
        let p = progress.sub(&what);
        match b {
            Beside::IdleGroups => scenario::idle_groups(&*st.producer, idle, &p).await?,
            Beside::LiveJobs => scenario::live_jobs(&*st.producer, idle, &p).await?,
        }
        p.done("held for an hour");
        label = format!("{label} beside {what}");
    }
    backend.reset_stats().await?;
    let p = progress.sub(&label);
    let redis_cpu = backend.redis_cpu().await?;
    let shape = (s.producer_batch, s.producers);
    let mut run = scenario::end_to_end(&st, s.e2e_n, s.workers, shape, groups, &p).await?;
    // Includes the last status polls and the pool's shutdown: a slight
    // overestimate.
    run.redis_cpu_us_per_job = backend.redis_cpu_us_per(redis_cpu, s.e2e_n).await?;
    p.done(&format!(
        "{:.0} jobs/s (producers {:.0}/s; CPU per job: {:.1} µs here, {} µs in Redis)",
        run.per_s,
        run.produced_per_s,
        run.client_cpu_us_per_job,
        run.redis_cpu_us_per_job.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into())
    ));
    backend.collect_stats(name, s.e2e_n, f).await?;
    backend.release(st).await?;
    Ok(run)
}

/// Every measurement on one backend.
pub async fn measure(backend: Backend<'_>, s: &Settings, progress: &Progress) -> Result<Figures, BenchError> {
    let mut f = Figures::default();

    // First, while the process has freed nothing yet that MemoryQueue's
    // records could reuse (its figure is the process's growth).
    if s.runs("memory") {
        let st = backend.store("memory").await?;
        backend.reset_stats().await?;
        let p = progress.sub(&format!("memory, {} pending jobs", s.memory_n));
        let per_job = match backend {
            Backend::Redis(t) => {
                f.memory_measure = "redis INFO used_memory".into();
                scenario::pending_memory(&st, s.memory_n, || t.used_memory(), &p).await?
            }
            Backend::Memory => {
                f.memory_measure = "process RSS (indicative)".into();
                scenario::pending_memory(&st, s.memory_n, scenario::process_rss, &p).await?
            }
        };
        let beyond = per_job - job::PAYLOAD_BYTES as f64;
        f.memory_per_job_bytes = Some(per_job);
        f.memory_beyond_payload_bytes = Some(beyond);
        p.done(&format!("{per_job:.0} bytes per job ({beyond:.0} beyond the payload)"));
        backend.collect_stats("memory", s.memory_n, &mut f).await?;
        backend.release(st).await?;
    }

    if s.runs("single") {
        let st = backend.store("single").await?;
        backend.reset_stats().await?;
        let p = progress.sub("enqueue, single awaited");
        f.enqueue_single = scenario::enqueue_single(&st.producer, s.single_n, &p).await?;
        p.done(&format!("{:.0} jobs/s, {:.1} µs each", f.enqueue_single.per_s, f.enqueue_single.mean_us));
        backend.collect_stats("single", s.single_n, &mut f).await?;
        backend.release(st).await?;
    }

    if s.runs("inflight") {
        let st = backend.store("inflight").await?;
        backend.reset_stats().await?;
        let p = progress.sub(&format!("enqueue, {} in flight", s.in_flight));
        f.enqueue_in_flight = scenario::enqueue_in_flight(&st.producer, s.in_flight_n, s.in_flight, &p).await?;
        p.done(&format!("{:.0} jobs/s", f.enqueue_in_flight.per_s));
        backend.collect_stats("inflight", s.in_flight_n, &mut f).await?;
        backend.release(st).await?;
    }

    if s.runs("many") {
        let st = backend.store("many").await?;
        backend.reset_stats().await?;
        let p = progress.sub(&format!("enqueue_many, batches of {}", s.batch));
        f.enqueue_many = scenario::enqueue_batches(&st.producer, s.batch_n, s.batch, s.batches_in_flight, &p).await?;
        p.done(&format!("{:.0} jobs/s", f.enqueue_many.per_s));
        backend.collect_stats("many", s.batch_n, &mut f).await?;
        backend.release(st).await?;
    }

    if s.runs("e2e") {
        let label = format!("end to end, {} workers", s.workers);
        f.end_to_end = end_to_end_in(&backend, s, "e2e", None, None, &label, progress, &mut f).await?;
    }

    if let (true, Backend::Redis(t)) = (s.runs("processes"), backend) {
        // The same run with the workers spread over worker processes.
        let st = backend.store("processes").await?;
        backend.reset_stats().await?;
        let each = (s.workers / s.processes.max(1)).max(1);
        let p = progress.sub(&format!("end to end, {} processes of {each} workers", s.processes));
        let redis_cpu = backend.redis_cpu().await?;
        let shape = (s.producer_batch, s.producers);
        f.end_to_end_processes = processes::end_to_end(&st, s, t.url(), (s.processes.max(1), each), shape, &p).await?;
        f.end_to_end_processes.redis_cpu_us_per_job = backend.redis_cpu_us_per(redis_cpu, s.e2e_n).await?;
        p.done(&format!("{:.0} jobs/s", f.end_to_end_processes.per_s));
        backend.collect_stats("processes", s.e2e_n, &mut f).await?;
        backend.release(st).await?;
    }

    // The same run with every job in a group: 10 jobs per group; then
    // beside idle groups, and beside their jobs without their groups.
    let groups = (s.e2e_n / 10).max(1);
    let label = format!("end to end, {} workers, {groups} groups of 10 jobs", s.workers);
    if s.runs("groups") {
        f.end_to_end_groups =
            end_to_end_in(&backend, s, "groups", Some(groups), None, &label, progress, &mut f).await?;
    }
    if s.runs("groups-idle") {
        f.end_to_end_groups_idle =
            end_to_end_in(&backend, s, "groups-idle", Some(groups), Some(Beside::IdleGroups), &label, progress, &mut f)
                .await?;
    }
    if s.runs("groups-live") {
        f.end_to_end_groups_live =
            end_to_end_in(&backend, s, "groups-live", Some(groups), Some(Beside::LiveJobs), &label, progress, &mut f)
                .await?;
    }

    if s.runs("fan-in") {
        // A workflow: one step, `fan_in_width` steps after it, one after all
        // of them. Redis CPU per step against a plain job's (e2e).
        let width = s.fan_in_width;
        let st = backend.store("fan-in").await?;
        backend.reset_stats().await?;
        let p = progress.sub(&format!("a workflow: 1 step, {width} after it, 1 after all ({} workers)", s.workers));
        let redis_cpu = backend.redis_cpu().await?;
        f.fan_in = scenario::fan_in(&st, width, s.workers, &p).await?;
        f.fan_in.redis_cpu_us_per_step = backend.redis_cpu_us_per(redis_cpu, width + 2).await?;
        p.done(&format!(
            "{:.0} steps/s, Redis CPU {} µs per step",
            f.fan_in.steps_per_s,
            f.fan_in.redis_cpu_us_per_step.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into())
        ));
        backend.collect_stats("fan-in", width + 2, &mut f).await?;
        backend.release(st).await?;
    }

    if let (true, Backend::Redis(t)) = (s.runs("rate-wait"), backend) {
        let st = backend.store("rate-wait").await?;
        let window = Duration::from_secs_f64(s.rate_wait_secs);
        let p = progress.sub(&format!("Redis CPU while {} workers wait on a queue limited to 1/1h", s.workers));
        f.rate_wait = scenario::rate_wait_cpu(&st, t, s.workers, 1000, window, &p).await?;
        p.done(&format!(
            "{:.2} ms/s idle, {:.2} ms/s with 1000 jobs held by the rate",
            f.rate_wait.idle_ms_per_s, f.rate_wait.waiting_ms_per_s
        ));
        backend.release(st).await?;
    }

    if s.runs("events") {
        let rounds = s.events_rounds.max(1);
        let shape = (s.producer_batch, s.producers);
        let p = progress.sub(&format!(
            "end to end, {} workers, without a listener, with every event recorded and with every event followed, {rounds} rounds",
            s.workers
        ));
        let mut followed = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let st = backend.store("events-plain").await?;
            let redis_cpu = backend.redis_cpu().await?;
            let plain = scenario::end_to_end(&st, s.e2e_n, s.workers, shape, None, &p).await?;
            let plain_cpu = backend.redis_cpu_us_per(redis_cpu, s.e2e_n).await?;
            backend.release(st).await?;
            // Recording kept on for a listener that reads elsewhere (it
            // lapses a minute after this call; a run takes seconds).
            let st = backend.store_with_history("events-recorded", 3 * s.e2e_n + 1_000).await?;
            jobs_core::QueueEvents::listen(&*st.producer, job::QUEUE, std::time::Duration::from_secs(60)).await?;
            let redis_cpu = backend.redis_cpu().await?;
            let recorded = scenario::end_to_end(&st, s.e2e_n, s.workers, shape, None, &p).await?;
            let recorded_cpu = backend.redis_cpu_us_per(redis_cpu, s.e2e_n).await?;
            backend.release(st).await?;
            // Every event of the run kept (three per job; a Redis stream
            // entry holds one or more).
            let st = backend.store_with_history("events", 3 * s.e2e_n + 1_000).await?;
            backend.reset_stats().await?;
            let redis_cpu = backend.redis_cpu().await?;
            let (mut e2e, events) =
                scenario::end_to_end_with_events(&st, s.e2e_n, s.workers, s.producer_batch, s.producers, &p).await?;
            // The reader's reads included: what following every event costs.
            e2e.redis_cpu_us_per_job = backend.redis_cpu_us_per(redis_cpu, s.e2e_n).await?;
            backend.collect_stats("events", s.e2e_n, &mut f).await?;
            backend.release(st).await?;
            f.events_rounds.push(scenario::EventRound {
                plain_per_s: plain.per_s,
                recorded_per_s: recorded.per_s,
                followed_per_s: e2e.per_s,
                plain_redis_cpu_us_per_job: plain_cpu,
                recorded_redis_cpu_us_per_job: recorded_cpu,
                followed_redis_cpu_us_per_job: e2e.redis_cpu_us_per_job,
                plain_client_cpu_us_per_job: plain.client_cpu_us_per_job,
                recorded_client_cpu_us_per_job: recorded.client_cpu_us_per_job,
                followed_client_cpu_us_per_job: e2e.client_cpu_us_per_job,
                recorded_cost_pct: (1.0 - recorded.per_s / plain.per_s) * 100.0,
                cost_pct: (1.0 - e2e.per_s / plain.per_s) * 100.0,
            });
            followed.push((e2e, events));
        }
        // The figures of the round whose cost is the median (the lower
        // middle one of an even number).
        let cost = scenario::EventRound::median_of(&f.events_rounds, |r| r.cost_pct);
        let median = (0..rounds)
            .min_by(|&a, &b| {
                let off = |i: usize| (f.events_rounds[i].cost_pct - cost).abs();
                off(a).total_cmp(&off(b))
            })
            .unwrap_or(0);
        let (e2e, mut events) = followed.swap_remove(median);
        events.cost_pct = cost;
        events.recorded_cost_pct = scenario::EventRound::median_of(&f.events_rounds, |r| r.recorded_cost_pct);
        let st = backend.store("event-delay").await?;
        events.delay = scenario::event_delay(&st, s.latency_n, s.latency_rate, &p).await?;
        f.end_to_end_events = e2e;
        f.events = events;
        p.done(&format!(
            "cost {cost:.1} % (median of {rounds}); {:.0} jobs/s ({} µs per job in Redis); {:.0} events/s received ({} gaps); event delay p50 {:.3} ms, p99 {:.3} ms",
            e2e.per_s,
            e2e.redis_cpu_us_per_job.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            events.per_s,
            events.gaps,
            events.delay.p50_ms,
            events.delay.p99_ms
        ));
        backend.release(st).await?;
    }

    if s.runs("latency") {
        let st = backend.store("latency").await?;
        backend.reset_stats().await?;
        let p = progress.sub(&format!("latency at {}/s", s.latency_rate));
        f.latency = scenario::latency(&st, s.latency_n, s.latency_rate, s.workers, &p).await?;
        p.done(&format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            f.latency.p50_ms, f.latency.p99_ms, f.latency.max_ms
        ));
        backend.collect_stats("latency", s.latency_n + s.latency_n / 20, &mut f).await?;
        backend.release(st).await?;
    }

    if s.runs("delayed") {
        let st = backend.store("delayed").await?;
        backend.reset_stats().await?;
        let p = progress.sub("delayed-job lateness");
        let max_delay = Duration::from_millis(s.delayed_max_ms);
        f.delayed_lateness = scenario::delayed(&st, s.delayed_n, s.delayed_rate, max_delay, s.workers, &p).await?;
        p.done(&format!("p50 {:.3} ms, p99 {:.3} ms", f.delayed_lateness.p50_ms, f.delayed_lateness.p99_ms));
        backend.collect_stats("delayed", s.delayed_n, &mut f).await?;
        backend.release(st).await?;
    }

    if let (true, Backend::Redis(_)) = (s.runs("partitions"), backend) {
        // Not on the target: on a cluster of its own.
        f.partitions = Some(partitions::measure(s, progress).await?);
    }

    Ok(f)
}

/// The ceiling of the machine: `redis-benchmark` against the target.
pub async fn ceiling(t: &Target, n: usize, progress: &Progress) -> Result<Ceiling, BenchError> {
    let p = progress.sub("redis-benchmark");
    let one = |rows: Vec<server::BenchmarkRow>, test: &str| {
        rows.into_iter().find(|r| r.test == test).ok_or_else(|| BenchError::RedisBenchmark(format!("no {test} figure")))
    };
    let round_trip = one(t.redis_benchmark("ping_mbulk", (n / 20).max(1_000), 1, 1).await?, "PING_MBULK")?;
    let concurrent = one(t.redis_benchmark("ping_mbulk", (n / 4).max(1_000), 50, 1).await?, "PING_MBULK")?;
    let rows = t.redis_benchmark("lpush,lpop", n, 4, 64).await?;
    let c = Ceiling {
        driver_round_trip: t.driver_round_trip((n / 50).max(500)).await?,
        round_trip,
        round_trips_concurrent: concurrent,
        lpush_pipelined: one(rows.clone(), "LPUSH")?,
        lpop_pipelined: one(rows, "LPOP")?,
    };
    p.done(&format!(
        "RTT p50 {:.3} ms ({:.3} ms through the Rust driver); {:.0} round trips/s with 50 clients; {:.0} LPUSH/s pipelined",
        c.round_trip.p50_ms, c.driver_round_trip.p50_ms, c.round_trips_concurrent.rps, c.lpush_pipelined.rps
    ));
    Ok(c)
}

/// The whole benchmark: the ceiling and the Redis figures when `target` is
/// given, the `MemoryQueue` figures when `memory` is set.
pub async fn run(
    s: &Settings,
    target: Option<&Target>,
    memory: bool,
    progress: &Progress,
) -> Result<Report, BenchError> {
    let mut report = Report {
        machine: Machine::now(),
        settings: s.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..Default::default()
    };
    // MemoryQueue first: its memory figure is this process's growth, which
    // memory freed by earlier measurements would hide.
    if memory {
        let p = Progress { label: format!("{} memory", progress.label), ..progress.clone() };
        report.memory = Some(measure(Backend::Memory, s, &p).await?);
    }
    if let Some(t) = target {
        report.machine.redis_version = Some(t.version().await?);
        if s.redis_benchmark_n > 0 {
            report.ceiling = Some(ceiling(t, s.redis_benchmark_n, progress).await?);
        }
        let p = Progress { label: format!("{} redis", progress.label), ..progress.clone() };
        report.redis = Some(measure(Backend::Redis(t), s, &p).await?);
    }
    report.machine.load_after = report::load_average();
    report.fractions = report.fractions();
    Ok(report)
}
