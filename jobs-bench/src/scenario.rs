//! The measurements, each on a fresh store (see [`crate::Store`]) and
//! against any backend.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jobs_core::prelude::*;
use jobs_core::{NewJob, SharedQueue, WorkerHandle, WorkerPoolBuilder};
use serde::Serialize;

use crate::job::{now_ns, ns_of, BenchNoop, QUEUE, SINK};
use crate::{BenchError, Progress, Store};

/// How long any one wait may take before the scenario is declared stuck.
pub(crate) const STUCK: Duration = Duration::from_secs(300);

/// A rate, and the mean time of one call when calls were awaited one by one.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rate {
    /// Jobs per second.
    pub per_s: f64,
    /// Mean time per awaited call, microseconds.
    pub mean_us: f64,
}

impl Rate {
    /// Whether this measurement was left out (`--only`): a run of any jobs
    /// has a rate above zero. Left out of the JSON, not written as zero.
    pub fn unmeasured(&self) -> bool {
        self.per_s == 0.0
    }
}

/// Percentiles of a sample, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples taken.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// Whether no sample was taken (the measurement was left out).
    pub fn unmeasured(&self) -> bool {
        self.n == 0
    }

    /// Of samples in nanoseconds.
    pub fn of(mut ns: Vec<i64>) -> Percentiles {
        if ns.is_empty() {
            return Percentiles::default();
        }
        ns.sort_unstable();
        let at = |q: f64| {
            let i = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len()) - 1;
            ns[i] as f64 / 1e6
        };
        Percentiles { n: ns.len(), p50_ms: at(0.5), p99_ms: at(0.99), p999_ms: at(0.999), max_ms: at(1.0) }
    }
}

/// End to end: jobs produced and run at the same time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EndToEnd {
    /// Jobs run and acknowledged per second, from the first enqueue until
    /// the last result was recorded.
    pub per_s: f64,
    /// Jobs enqueued per second by the producers meanwhile.
    pub produced_per_s: f64,
    /// Seconds the run took.
    pub seconds: f64,
    /// CPU time of this process (producers and pool) per job, microseconds.
    pub client_cpu_us_per_job: f64,
    /// CPU time of the Redis server per job, microseconds (Redis only).
    pub redis_cpu_us_per_job: Option<f64>,
}

impl EndToEnd {
    /// Whether this run was left out (`--only`, or no worker processes).
    pub fn unmeasured(&self) -> bool {
        self.seconds == 0.0
    }

    /// The figures of `n` jobs run in `seconds`, produced in `produced`,
    /// with `cpu` seconds of CPU on the client side (Redis's is added by
    /// the caller).
    pub(crate) fn of(n: usize, seconds: f64, produced: Duration, cpu: f64) -> Self {
        EndToEnd {
            per_s: n as f64 / seconds,
            produced_per_s: n as f64 / produced.as_secs_f64(),
            seconds,
            client_cpu_us_per_job: cpu * 1e6 / n as f64,
            redis_cpu_us_per_job: None,
        }
    }
}

/// Jobs per second of `n` enqueues awaited one after another.
pub async fn enqueue_single(q: &SharedQueue, n: usize, p: &Progress) -> Result<Rate, BenchError> {
    let start = Instant::now();
    for i in 0..n {
        BenchNoop::now().enqueue(&**q).await?;
        if i % 5000 == 4999 {
            p.step(i + 1, n);
        }
    }
    let s = start.elapsed().as_secs_f64();
    Ok(Rate { per_s: n as f64 / s, mean_us: s * 1e6 / n as f64 })
}

/// Jobs per second of `n` single enqueues, `in_flight` at a time (one task
/// each, awaiting its calls one by one).
pub async fn enqueue_in_flight(q: &SharedQueue, n: usize, in_flight: usize, p: &Progress) -> Result<Rate, BenchError> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let q = q.clone();
            let count = n / in_flight + usize::from(t < n % in_flight);
            tokio::spawn(async move {
                for _ in 0..count {
                    BenchNoop::now().enqueue(&*q).await?;
                }
                Ok::<_, BenchError>(())
            })
        })
        .collect();
    join_all(tasks).await?;
    let s = start.elapsed().as_secs_f64();
    p.step(n, n);
    Ok(Rate { per_s: n as f64 / s, mean_us: s * 1e6 * in_flight as f64 / n as f64 })
}

/// Jobs per second of `n` jobs sent with `enqueue_many` in batches of
/// `batch`, `in_flight` batches at a time. Building the jobs (validation and
/// serialization) is part of the time, as it is for a real producer.
pub async fn enqueue_batches(
    q: &SharedQueue,
    n: usize,
    batch: usize,
    in_flight: usize,
    p: &Progress,
) -> Result<Rate, BenchError> {
    let start = Instant::now();
    produce(q, n, batch, in_flight, None).await?;
    let s = start.elapsed().as_secs_f64();
    p.step(n, n);
    Ok(Rate { per_s: n as f64 / s, mean_us: s * 1e6 * in_flight as f64 / n.div_ceil(batch) as f64 })
}

/// `n` jobs in batches, from `in_flight` tasks.
pub(crate) async fn produce(
    q: &SharedQueue,
    n: usize,
    batch: usize,
    in_flight: usize,
    groups: Option<usize>,
) -> Result<(), BenchError> {
    let batches = n.div_ceil(batch);
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let q = q.clone();
            tokio::spawn(async move {
                for b in (t..batches).step_by(in_flight) {
                    let size = batch.min(n - b * batch);
                    // Job i of the run is in group i mod `groups`.
                    let job = |i: usize| match groups {
                        None => BenchNoop::now().new_job(),
                        Some(g) => BenchNoop::now().into_new_job(JobOptions::new().group(format!("g{}", i % g))),
                    };
                    let jobs = (0..size).map(|i| job(b * batch + i)).collect::<Result<Vec<_>, _>>()?;
                    q.enqueue_many(jobs).await?;
                }
                Ok::<_, BenchError>(())
            })
        })
        .collect();
    join_all(tasks).await
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<Result<(), BenchError>>>) -> Result<(), BenchError> {
    for t in tasks {
        t.await.map_err(|e| BenchError::Task(e.to_string()))??;
    }
    Ok(())
}

/// Jobs every pool this process starts takes ahead of its free workers
/// (`--prefetch`; `usize::MAX`: not set, the pools' default).
static POOL_PREFETCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Sets the prefetch of every pool of jobs started from now on
/// (`WorkerPoolBuilder::prefetch`; `None`: the pools' default).
pub fn set_pool_prefetch(n: Option<usize>) {
    POOL_PREFETCH.store(n.unwrap_or(usize::MAX), std::sync::atomic::Ordering::Relaxed);
}

/// The prefetch of the pools (see [`set_pool_prefetch`]).
pub fn pool_prefetch() -> Option<usize> {
    Some(POOL_PREFETCH.load(std::sync::atomic::Ordering::Relaxed)).filter(|&n| n != usize::MAX)
}

/// `builder` with the pools' prefetch (see [`set_pool_prefetch`]).
pub fn with_pool_prefetch(builder: WorkerPoolBuilder) -> WorkerPoolBuilder {
    match pool_prefetch() {
        Some(n) => builder.prefetch(n),
        None => builder,
    }
}

/// A pool of `workers` on the store's worker handle, serving [`QUEUE`],
/// taking jobs ahead as [`pool_prefetch`] says.
fn pool(store: &Store, workers: usize) -> Result<WorkerHandle, BenchError> {
    Ok(with_pool_prefetch(WorkerPool::builder(store.worker.clone()).workers(workers))
        .queues([QUEUE])
        .scheduler(false)
        .start()?)
}

/// The producers of an end-to-end run, started once the pools had time to
/// reach their idle wait: when the clock started, this process's CPU
/// seconds then, and the producers' task (its result: how long producing
/// took).
pub(crate) struct Producing {
    pub(crate) start: Instant,
    pub(crate) cpu_before: f64,
    pub(crate) producing: tokio::task::JoinHandle<Result<Duration, BenchError>>,
}

/// Waits 200 ms (the pools reach their idle wait), then starts `producers`
/// tasks enqueuing `n` jobs in batches of `batch` (with `groups`, job i in
/// group `i mod groups`).
pub(crate) async fn start_producing(
    store: &Store,
    n: usize,
    (batch, producers): (usize, usize),
    groups: Option<usize>,
) -> Producing {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu_before = process_cpu_s();
    let start = Instant::now();
    let q = store.producer.clone();
    let producing = tokio::spawn(async move {
        produce(&q, n, batch, producers, groups).await?;
        Ok::<_, BenchError>(start.elapsed())
    });
    Producing { start, cpu_before, producing }
}

/// `n` no-op jobs through a pool of `workers` while `producers` tasks
/// enqueue them in batches of `batch`; with `groups`, job i in group
/// `i mod groups` (served in turn).
pub async fn end_to_end(
    store: &Store,
    n: usize,
    workers: usize,
    (batch, producers): (usize, usize),
    groups: Option<usize>,
    p: &Progress,
) -> Result<EndToEnd, BenchError> {
    let handle = pool(store, workers)?;
    SINK.reset(false);
    let Producing { start, cpu_before, producing } = start_producing(store, n, (batch, producers), groups).await;
    let target = n as u64;
    if !SINK.wait_for(target, STUCK, |d| p.step(d as usize, n)).await {
        return Err(BenchError::Stuck(format!("end to end: {} of {n} jobs ran", SINK.done())));
    }
    let produced = producing.await.map_err(|e| BenchError::Task(e.to_string()))??;
    // Finished when every result is recorded, not when the last job ran.
    let deadline = Instant::now() + STUCK;
    loop {
        let stats = store.producer.stats().await?;
        if stats.queue(QUEUE).processed >= target {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stuck("end to end: results were not all recorded".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu_s() - cpu_before;
    handle.shutdown().await?;
    Ok(EndToEnd::of(n, seconds, produced, cpu))
}

/// What the `fan-in` run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FanIn {
    /// Steps between the first and the last.
    pub width: usize,
    /// From the enqueue of the workflow to its end.
    pub seconds: f64,
    /// Steps (width + 2) per second.
    pub steps_per_s: f64,
    /// Redis CPU per step (Redis only).
    pub redis_cpu_us_per_step: Option<f64>,
}

impl FanIn {
    /// Whether this run was left out (`--only`).
    pub fn unmeasured(&self) -> bool {
        self.seconds == 0.0
    }
}

/// A workflow of one step, `width` steps after it and one step after all
/// of them (a fan-out and its fan-in), through a pool of `workers`.
pub async fn fan_in(store: &Store, width: usize, workers: usize, p: &Progress) -> Result<FanIn, BenchError> {
    let handle = pool(store, workers)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    SINK.reset(false);
    let wide: Vec<String> = (0..width).map(|i| format!("w{i}")).collect();
    let mut flow = Workflow::new(format!("fan-in-{}", now_ns())).step("first", BenchNoop::now());
    for name in &wide {
        flow = flow.step_after(name.as_str(), BenchNoop::now(), ["first"]);
    }
    flow = flow.step_after("last", BenchNoop::now(), wide);
    let start = Instant::now();
    let run = flow.enqueue(&store.producer).await?;
    let steps = width + 2;
    if !SINK.wait_for(steps as u64, STUCK, |d| p.step(d as usize, steps)).await {
        return Err(BenchError::Stuck(format!("fan-in: {} of {steps} steps ran", SINK.done())));
    }
    let done = run.wait(STUCK).await?;
    let seconds = start.elapsed().as_secs_f64();
    handle.shutdown().await?;
    if done.status != jobs_core::FlowStatus::Succeeded || done.succeeded != steps as u64 {
        return Err(BenchError::Stuck(format!("fan-in: the workflow ended {:?}", done)));
    }
    Ok(FanIn { width, seconds, steps_per_s: steps as f64 / seconds, redis_cpu_us_per_step: None })
}

/// Enqueue-to-start latency of `n` jobs enqueued one at a time at `rate`
/// per second (each enqueue awaited) with idle workers. The first 5 % are
/// a warm-up and not counted.
pub async fn latency(
    store: &Store,
    n: usize,
    rate: u32,
    workers: usize,
    p: &Progress,
) -> Result<Percentiles, BenchError> {
    let handle = pool(store, workers)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warmup = n / 20;
    SINK.reset(true);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..n + warmup {
        tick.tick().await;
        BenchNoop::at(now_ns()).enqueue(&*store.producer).await?;
        if i % 1000 == 999 {
            p.step(i + 1, n + warmup);
        }
    }
    if !SINK.wait_for((n + warmup) as u64, STUCK, |_| {}).await {
        return Err(BenchError::Stuck(format!("latency: {} of {} jobs ran", SINK.done(), n + warmup)));
    }
    let mut samples = SINK.take();
    if std::env::var_os("JOBS_BENCH_DEBUG").is_some() {
        for (i, v) in samples.iter().enumerate().filter(|(_, v)| **v > 5_000_000) {
            eprintln!("slow start #{i}: {:.1} ms", *v as f64 / 1e6);
        }
    }
    handle.shutdown().await?;
    // Runs are recorded in start order, close enough to enqueue order here
    // (one job at a time, idle workers).
    samples.drain(..warmup.min(samples.len()));
    Ok(Percentiles::of(samples))
}

/// Lateness of `n` delayed jobs (start minus due time), enqueued at `rate`
/// per second with delays spread over 10 ms ..= `max_delay`.
pub async fn delayed(
    store: &Store,
    n: usize,
    rate: u32,
    max_delay: Duration,
    workers: usize,
    p: &Progress,
) -> Result<Percentiles, BenchError> {
    let handle = pool(store, workers)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    SINK.reset(true);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let spread = u64::try_from(max_delay.as_micros()).unwrap_or(u64::MAX).saturating_sub(10_000).max(1);
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..n {
        tick.tick().await;
        // xorshift64: a spread of delays without a dependency.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let due = SystemTime::now() + Duration::from_micros(10_000 + rng % spread);
        BenchNoop::at(ns_of(due)).enqueue_with(&*store.producer, JobOptions::new().scheduled_at(due)).await?;
        if i % 500 == 499 {
            p.step(i + 1, n);
        }
    }
    if !SINK.wait_for(n as u64, STUCK, |_| {}).await {
        return Err(BenchError::Stuck(format!("delayed: {} of {n} jobs ran", SINK.done())));
    }
    let samples = SINK.take();
    handle.shutdown().await?;
    Ok(Percentiles::of(samples))
}

/// Bytes per pending job: `measure` before and after `n` pending jobs are
/// enqueued (batches of 1,000; no pool runs).
pub async fn pending_memory<F, Fut>(store: &Store, n: usize, measure: F, p: &Progress) -> Result<f64, BenchError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, BenchError>>,
{
    let before = measure().await?;
    produce(&store.producer, n, 1000, 1, None).await?;
    let after = measure().await?;
    p.step(n, n);
    let stats = store.producer.stats().await?;
    if stats.queue(QUEUE).pending != n as u64 {
        return Err(BenchError::Stuck(format!("memory: {} jobs pending, expected {n}", stats.queue(QUEUE).pending)));
    }
    Ok((after as f64 - before as f64) / n as f64)
}

/// CPU time (user and system) this process used so far, in seconds
/// (`/proc/self/stat`; 0 where unavailable).
pub(crate) fn process_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces): state is the
    // first, utime and stime the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process, in bytes (`/proc/self/statm`).
pub async fn process_rss() -> Result<u64, BenchError> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| BenchError::Io(e.to_string()))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| BenchError::Io("unreadable /proc/self/statm".into()))?;
    Ok(pages * 4096)
}

/// A shared handle as a plain `Arc`, for spawning.
pub(crate) fn shared<Q: Backend>(q: Q) -> SharedQueue {
    Arc::new(q)
}

/// Job events while they are followed: how many a reader got per second and
/// how long after the change each reached it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EventFigures {
    /// Events a reader received per second during an end-to-end run with
    /// events on (three per job: enqueued, started, succeeded).
    pub per_s: f64,
    /// Events received in that run.
    pub received: usize,
    /// Gaps reported (events dropped from the history before they were
    /// read): 0 when the reader kept up.
    pub gaps: usize,
    /// From before the enqueue call to the reader's receipt of the job's
    /// `enqueued` event, jobs enqueued one at a time at the latency rate.
    pub delay: Percentiles,
    /// What following every event costs end to end: the median of the
    /// rounds' costs (see [`EventRound`]), in percent of the throughput
    /// without a listener.
    pub cost_pct: f64,
    /// What recording every event costs end to end while the listener is
    /// elsewhere (recording on, nothing read in this process): the median
    /// of the rounds' [`EventRound::recorded_cost_pct`].
    pub recorded_cost_pct: f64,
}

impl EventFigures {
    /// Whether the events were left out (`--only`): a followed run
    /// receives events and a delay run takes samples.
    pub fn unmeasured(&self) -> bool {
        self.received == 0 && self.delay.unmeasured()
    }
}

/// One round of the events comparison: the same end-to-end run without a
/// listener, with every event recorded for a listener elsewhere (recording
/// kept on, nothing read here), then with a reader in this process
/// following every event, each on a fresh store. Rounds alternate the
/// three so that all see the machine's load of the moment; one pair on a
/// shared 2-core machine moves by more than the cost it measures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EventRound {
    /// Jobs per second with no listener.
    pub plain_per_s: f64,
    /// Jobs per second with every event recorded, read elsewhere.
    pub recorded_per_s: f64,
    /// Jobs per second with every event followed.
    pub followed_per_s: f64,
    /// Redis CPU per job with no listener, recorded and followed (Redis
    /// only).
    pub plain_redis_cpu_us_per_job: Option<f64>,
    /// See `plain_redis_cpu_us_per_job`.
    pub recorded_redis_cpu_us_per_job: Option<f64>,
    /// See `plain_redis_cpu_us_per_job`.
    pub followed_redis_cpu_us_per_job: Option<f64>,
    /// CPU of this process (producers, pool and, when followed, the
    /// reader) per job with no listener, recorded and followed: where the
    /// machine's noise moves the throughput, this shows the reader's own
    /// cost.
    pub plain_client_cpu_us_per_job: f64,
    /// See `plain_client_cpu_us_per_job`.
    pub recorded_client_cpu_us_per_job: f64,
    /// See `plain_client_cpu_us_per_job`.
    pub followed_client_cpu_us_per_job: f64,
    /// `1 - recorded / plain`, in percent.
    pub recorded_cost_pct: f64,
    /// `1 - followed / plain`, in percent.
    pub cost_pct: f64,
}

impl EventRound {
    /// The median of `each` round's figure (0 when there is none).
    pub fn median_of(rounds: &[EventRound], each: impl Fn(&EventRound) -> f64) -> f64 {
        median(&mut rounds.iter().map(each).collect::<Vec<_>>())
    }
}

/// The median of `values` (sorted in place; the mean of the middle two of
/// an even number; 0 for none).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A reader of every event of [`QUEUE`], counting them (and the gaps it was
/// told of) until `expected` arrived; returns when the last one came.
async fn count_events(
    q: SharedQueue,
    expected: usize,
) -> Result<tokio::task::JoinHandle<Result<(usize, usize, Instant), BenchError>>, BenchError> {
    let mut stream = jobs_core::EventStream::open(&q, jobs_core::EventFilter::queue(QUEUE)).await?;
    Ok(tokio::spawn(async move {
        let (mut got, mut gaps) = (0, 0);
        let deadline = tokio::time::Instant::now() + STUCK;
        while got < expected {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(_))) => got += 1,
                Ok(Some(Err(jobs_core::Error::EventsMissed { .. }))) => gaps += 1,
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(None) | Err(_) => {
                    return Err(BenchError::Stuck(format!("events: {got} of {expected} received")));
                }
            }
        }
        Ok((got, gaps, Instant::now()))
    }))
}

/// [`end_to_end`] while a reader follows every event of the queue; the
/// events figures besides.
pub async fn end_to_end_with_events(
    store: &Store,
    n: usize,
    workers: usize,
    batch: usize,
    producers: usize,
    p: &Progress,
) -> Result<(EndToEnd, EventFigures), BenchError> {
    let reader = count_events(store.producer.clone(), 3 * n).await?;
    let start = Instant::now();
    let e2e = end_to_end(store, n, workers, (batch, producers), None, p).await?;
    // The end-to-end run waits for the pool's warm-up first: events count
    // from then on.
    let warmup = Duration::from_millis(200);
    let (received, gaps, last) = reader.await.map_err(|e| BenchError::Task(e.to_string()))??;
    let seconds = (last - start).saturating_sub(warmup).as_secs_f64();
    Ok((e2e, EventFigures { per_s: received as f64 / seconds, received, gaps, ..EventFigures::default() }))
}

/// Delay from before each enqueue call to the receipt of the job's
/// `enqueued` event, for `n` jobs enqueued one at a time at `rate` (the
/// first 5 % a warm-up).
pub async fn event_delay(store: &Store, n: usize, rate: u32, p: &Progress) -> Result<Percentiles, BenchError> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let warmup = n / 20;
    let sent: Arc<Mutex<HashMap<JobId, Instant>>> = Arc::default();
    let filter = jobs_core::EventFilter::queue(QUEUE).kinds([jobs_core::EventKind::Enqueued]);
    let mut stream = jobs_core::EventStream::open(&store.producer, filter).await?;
    let seen = sent.clone();
    let total = n + warmup;
    let reader = tokio::spawn(async move {
        let mut delays = Vec::with_capacity(total);
        let deadline = tokio::time::Instant::now() + STUCK;
        while delays.len() < total {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(e))) => {
                    let now = Instant::now();
                    // The sender notes the job before its enqueue call.
                    let at = seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&e.job);
                    if let Some(at) = at {
                        delays.push(i64::try_from((now - at).as_nanos()).unwrap_or(i64::MAX));
                    }
                }
                Ok(Some(Err(e))) => return Err(BenchError::Queue(e)),
                Ok(None) | Err(_) => return Err(BenchError::Stuck(format!("event delay: {} events", delays.len()))),
            }
        }
        Ok(delays)
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..total {
        tick.tick().await;
        let job = BenchNoop::now().new_job()?;
        sent.lock().unwrap_or_else(|p| p.into_inner()).insert(job.id.clone(), Instant::now());
        store.producer.enqueue_many(vec![job]).await?;
        if i % 1000 == 999 {
            p.step(i + 1, total);
        }
    }
    let mut delays = reader.await.map_err(|e| BenchError::Task(e.to_string()))??;
    delays.drain(..warmup.min(delays.len()));
    Ok(Percentiles::of(delays))
}

/// Enqueues the `n` jobs a scenario puts in place before its measured run,
/// job i made by `job(i)`, in batches of 1,000 one after the other
/// (unlike [`produce`], which times its tasks), reporting how many are
/// sent after each batch.
async fn enqueue_setup<Q: JobQueue + ?Sized>(
    q: &Q,
    n: usize,
    mut job: impl FnMut(usize) -> Result<NewJob, BenchError>,
    mut step: impl FnMut(usize),
) -> Result<(), BenchError> {
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(1000);
        let jobs = (sent..sent + k).map(&mut job).collect::<Result<Vec<_>, _>>()?;
        q.enqueue_many(jobs).await?;
        sent += k;
        step(sent);
    }
    Ok(())
}

/// A fetch of up to `max` jobs of [`QUEUE`] leased for an hour: jobs
/// fetched so never run within a benchmark.
fn hour_lease(max: usize) -> jobs_core::backend::FetchRequest {
    jobs_core::backend::FetchRequest { lease: Duration::from_secs(3600), ..crate::job::fetch_request(max) }
}

/// Fetches with `req` until `n` jobs are leased (`what` names them in the
/// error when a fetch comes back empty first), reporting the count so far.
async fn lease_all<Q: JobQueue + ?Sized>(
    q: &Q,
    req: &jobs_core::backend::FetchRequest,
    n: usize,
    what: &str,
    mut step: impl FnMut(usize),
) -> Result<(), BenchError> {
    let mut leased = 0;
    while leased < n {
        let got = q.fetch(req).await?.jobs.len();
        if got == 0 {
            return Err(BenchError::Stuck(format!("{what}: {leased} of {n} leased")));
        }
        leased += got;
        step(leased);
    }
    Ok(())
}

/// Puts `n` groups out of the turn for an hour beside the run that follows:
/// two jobs each with `rate = "1/1h"`, the first leased for an hour by
/// direct fetches (so it never runs) and the second waiting for the rate.
/// A fetch must not pay for them. `q` is the producers' handle
/// ([`Store::producer`]) or any other.
pub async fn idle_groups<Q: JobQueue + ?Sized>(q: &Q, n: usize, p: &Progress) -> Result<(), BenchError> {
    let hourly: jobs_core::Rate = "1/1h".parse().map_err(BenchError::Task)?;
    let job = |i: usize| {
        let mut job = BenchNoop::now().new_job()?;
        job.group = Some(jobs_core::JobGroup { key: format!("idle{}", i % n), concurrency: None, rate: Some(hourly) });
        Ok(job)
    };
    enqueue_setup(q, 2 * n, job, |sent| p.step(sent, 3 * n)).await?;
    let req = hour_lease(1000);
    lease_all(q, &req, n, "idle groups: first jobs", |leased| p.step(2 * n + leased, 3 * n)).await?;
    // Groups whose first job was just leased are still in the turn until a
    // fetch finds them at their rate: one more fetch moves them out, so the
    // measured run starts with every idle group out of the turn.
    let extra = q.fetch(&req).await?.jobs.len();
    if extra > 0 {
        return Err(BenchError::Stuck(format!("idle groups: {extra} second jobs leased despite the rate")));
    }
    Ok(())
}

/// The jobs [`idle_groups`] puts beside a run, without groups: `n` leased
/// for an hour by direct fetches (so they never run) and `n` due in an
/// hour. Against [`idle_groups`], it tells what the idle groups' jobs cost
/// a fetch from what their groups do.
pub async fn live_jobs<Q: JobQueue + ?Sized>(q: &Q, n: usize, p: &Progress) -> Result<(), BenchError> {
    enqueue_setup(q, n, |_| Ok(BenchNoop::now().new_job()?), |sent| p.step(sent, 3 * n)).await?;
    lease_all(q, &hour_lease(1000), n, "live jobs", |leased| p.step(n + leased, 3 * n)).await?;
    let later = |_| Ok(BenchNoop::now().into_new_job(JobOptions::new().delay(Duration::from_secs(3600)))?);
    enqueue_setup(q, n, later, |sent| p.step(2 * n + sent, 3 * n)).await
}

/// Redis CPU while a pool waits on the queue, per second of wall time, over
/// `window`: first with nothing to do, then with `backlog` jobs pending
/// behind a queue `rate` of one start per hour (the first job ran).
pub async fn rate_wait_cpu(
    store: &Store,
    target: &crate::server::Target,
    workers: usize,
    backlog: usize,
    window: Duration,
    p: &Progress,
) -> Result<RateWait, BenchError> {
    let handle = pool(store, workers)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = target.cpu_seconds().await?;
    tokio::time::sleep(window).await;
    let idle = target.cpu_seconds().await? - before;
    p.step(1, 3);
    let hourly: jobs_core::Rate = "1/1h".parse().map_err(BenchError::Task)?;
    let policy = jobs_core::QueuePolicy { rate: Some(hourly), ..Default::default() };
    store.producer.set_policy(QUEUE, policy).await?;
    SINK.reset(false);
    let jobs = (0..backlog).map(|_| BenchNoop::now().new_job()).collect::<Result<Vec<_>, _>>()?;
    store.producer.enqueue_many(jobs).await?;
    if !SINK.wait_for(1, STUCK, |_| {}).await {
        return Err(BenchError::Stuck("rate wait: the first job did not run".into()));
    }
    // The pools learn when the window frees and wait for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.step(2, 3);
    let before = target.cpu_seconds().await?;
    tokio::time::sleep(window).await;
    let waiting = target.cpu_seconds().await? - before;
    let ran = SINK.done();
    handle.shutdown().await?;
    p.step(3, 3);
    let per_s = |cpu: f64| cpu * 1e3 / window.as_secs_f64();
    Ok(RateWait { seconds: window.as_secs_f64(), idle_ms_per_s: per_s(idle), waiting_ms_per_s: per_s(waiting), ran })
}

/// Redis CPU while a pool waits (see [`rate_wait_cpu`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RateWait {
    /// The length of each window, seconds.
    pub seconds: f64,
    /// Redis CPU, milliseconds per second, while the pool idles on an empty
    /// queue.
    pub idle_ms_per_s: f64,
    /// The same while a backlog waits behind the queue's rate.
    pub waiting_ms_per_s: f64,
    /// Jobs that ran in all (1: the rate held every other one).
    pub ran: u64,
}

impl RateWait {
    /// Whether this run was left out (`--only`, or `MemoryQueue`).
    pub fn unmeasured(&self) -> bool {
        self.seconds == 0.0
    }
}
