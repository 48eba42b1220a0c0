//! The measurements, each on a fresh store (see [`crate::Store`]) and
//! against any backend.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jobs_core::prelude::*;
use jobs_core::{SharedQueue, WorkerHandle};
use serde::Serialize;

use crate::job::{now_ns, ns_of, BenchNoop, QUEUE, SINK};
use crate::{BenchError, Progress, Store};

/// How long any one wait may take before the scenario is declared stuck.
const STUCK: Duration = Duration::from_secs(300);

/// A rate, and the mean time of one call when calls were awaited one by one.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rate {
    /// Jobs per second.
    pub per_s: f64,
    /// Mean time per awaited call, microseconds.
    pub mean_us: f64,
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
    produce(q, n, batch, in_flight).await?;
    let s = start.elapsed().as_secs_f64();
    p.step(n, n);
    Ok(Rate { per_s: n as f64 / s, mean_us: s * 1e6 * in_flight as f64 / n.div_ceil(batch) as f64 })
}

/// `n` jobs in batches, from `in_flight` tasks.
async fn produce(q: &SharedQueue, n: usize, batch: usize, in_flight: usize) -> Result<(), BenchError> {
    let batches = n.div_ceil(batch);
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let q = q.clone();
            tokio::spawn(async move {
                for b in (t..batches).step_by(in_flight) {
                    let size = batch.min(n - b * batch);
                    let jobs = (0..size).map(|_| BenchNoop::now().new_job()).collect::<Result<Vec<_>, _>>()?;
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

/// A pool of `workers` on the store's worker handle, serving [`QUEUE`].
fn pool(store: &Store, workers: usize) -> Result<WorkerHandle, BenchError> {
    Ok(WorkerPool::builder(store.worker.clone()).workers(workers).queues([QUEUE]).scheduler(false).start()?)
}

/// `n` no-op jobs through a pool of `workers` while `producers` tasks
/// enqueue them in batches of `batch`.
pub async fn end_to_end(
    store: &Store,
    n: usize,
    workers: usize,
    batch: usize,
    producers: usize,
    p: &Progress,
) -> Result<EndToEnd, BenchError> {
    let handle = pool(store, workers)?;
    // Let the pool reach its idle wait before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    SINK.reset(false);
    let cpu_before = process_cpu_s();
    let start = Instant::now();
    let q = store.producer.clone();
    let producing = tokio::spawn(async move {
        produce(&q, n, batch, producers).await?;
        Ok::<_, BenchError>(start.elapsed())
    });
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
    Ok(EndToEnd {
        per_s: n as f64 / seconds,
        produced_per_s: n as f64 / produced.as_secs_f64(),
        seconds,
        client_cpu_us_per_job: cpu * 1e6 / n as f64,
        redis_cpu_us_per_job: None,
    })
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
    produce(&store.producer, n, 1000, 1).await?;
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
fn process_cpu_s() -> f64 {
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
