//! A worker process for the crash and clock tests (feature `testing`): a
//! pool on some queues that runs `jobs_redis::testing::CrashJob` (its
//! handler is [`crash_job`], here) and `jobs_redis::testing::clock::ClockJob`
//! until it is killed. Warnings go to stderr (a refused result, a lost
//! lease).
//!
//! With `JOBS_REDIS_TEST_RUN_LOG` set, crash jobs (and failing jobs) append
//! their start and end lines to the run log at that path (see
//! `jobs_redis::testing::runlog`); with `JOBS_REDIS_TEST_DEAD_LOG` set, the
//! pool's `on_dead` handler appends every death it is told of to the dead
//! log at that path (see `jobs_redis::testing::deadlog`).
//!
//! `jobs-redis-test-worker URL QUEUES LEASE_MS [BACKOFF_MS]`
//!
//! QUEUES is comma-separated; BACKOFF_MS, when given, is a fixed retry
//! delay (no jitter).

use std::time::Duration;

// The clock tests' job comes with jobs-redis's own `testing` module, whose
// feature this binary requires (`use_test_jobs` adds it); the crash tests'
// handler is below.
use jobs_core::{Backoff, Job, JobContext, JobError, WorkerPool};
use jobs_redis::testing::{deadlog, runlog, Ran};
use jobs_redis::RedisQueue;

/// The handler of `jobs_redis::testing::CrashJob` (same name, same fields):
/// appends its start, sleeps, appends its end, and says which attempt in
/// which process produced the result.
#[jobs_core::job(name = "jobs_redis.testing.crash", queue = "crash", retries = 10)]
async fn crash_job(ctx: JobContext, seq: u64, sleep_ms: u64) -> Result<Ran, JobError> {
    let _ = seq;
    runlog::started(&ctx);
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    runlog::ended(&ctx);
    Ok(Ran { attempt: ctx.attempt(), pid: std::process::id() })
}

/// The handler of `jobs_redis::testing::GroupedCrashJob`: a crash job in a
/// group, two of a group at once.
#[jobs_core::job(name = "jobs_redis.testing.grouped_crash", queue = "crash", retries = 10, group = group, concurrency = 2)]
async fn grouped_crash_job(ctx: JobContext, seq: u64, group: String, sleep_ms: u64) -> Result<Ran, JobError> {
    let _ = (seq, group);
    runlog::started(&ctx);
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    runlog::ended(&ctx);
    Ok(Ran { attempt: ctx.attempt(), pid: std::process::id() })
}

/// The handler of `jobs_redis::testing::deadlog::FailingJob`: appends its
/// start, sleeps, appends its end, and fails.
#[jobs_core::job(name = "jobs_redis.testing.failing", queue = "crash", retries = 1)]
async fn failing_job(ctx: JobContext, seq: u64, sleep_ms: u64) -> Result<(), JobError> {
    let _ = seq;
    runlog::started(&ctx);
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    runlog::ended(&ctx);
    Err(JobError::retryable(deadlog::FAILING_ERROR))
}

/// Fails at start when the handler above and the type the tests enqueue
/// have drifted apart.
fn check_crash_job() -> Result<(), Box<dyn std::error::Error>> {
    type Enqueued = jobs_redis::testing::CrashJob;
    let same = CrashJob::NAME == Enqueued::NAME
        && CrashJob::QUEUE == Enqueued::QUEUE
        && CrashJob::MAX_RETRIES == Enqueued::MAX_RETRIES
        && CrashJob::TIMEOUT == Enqueued::TIMEOUT;
    if !same {
        return Err("`crash_job` and `jobs_redis::testing::CrashJob` differ in their attributes".into());
    }
    let sent = serde_json::to_vec(&Enqueued { seq: 7, sleep_ms: 11 })?;
    let got: CrashJob = serde_json::from_slice(&sent)?;
    if serde_json::to_vec(&got)? != sent {
        return Err("`crash_job` and `jobs_redis::testing::CrashJob` differ in their fields".into());
    }
    type Grouped = jobs_redis::testing::GroupedCrashJob;
    let same = GroupedCrashJob::NAME == Grouped::NAME
        && GroupedCrashJob::CONCURRENCY == Grouped::CONCURRENCY
        && GroupedCrashJob::MAX_RETRIES == Grouped::MAX_RETRIES;
    let sent = serde_json::to_vec(&Grouped { seq: 7, group: "g".into(), sleep_ms: 11 })?;
    let got: GroupedCrashJob = serde_json::from_slice(&sent)?;
    if !same || serde_json::to_vec(&got)? != sent || got.group().as_deref() != Some("g") {
        return Err("`grouped_crash_job` and `jobs_redis::testing::GroupedCrashJob` differ".into());
    }
    type Failing = deadlog::FailingJob;
    if FailingJob::NAME != Failing::NAME || FailingJob::MAX_RETRIES != Failing::MAX_RETRIES {
        return Err("`failing_job` and `jobs_redis::testing::deadlog::FailingJob` differ in their attributes".into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, queues, lease_ms, backoff_ms) = match args.as_slice() {
        [url, queues, lease_ms] => (url, queues, lease_ms, None),
        [url, queues, lease_ms, backoff_ms] => (url, queues, lease_ms, Some(backoff_ms)),
        _ => return Err("usage: jobs-redis-test-worker URL QUEUES LEASE_MS [BACKOFF_MS]".into()),
    };
    let lease = Duration::from_millis(lease_ms.parse()?);
    let backoff = match backoff_ms {
        Some(ms) => {
            let d = Duration::from_millis(ms.parse()?);
            Some(Backoff { base: d, factor: 1.0, cap: d, jitter: false })
        }
        None => None,
    };
    check_crash_job()?;
    // This program is a test's worker: it runs the test-support jobs.
    jobs_core::testing::use_suite_jobs();
    jobs_redis::testing::use_test_jobs();
    if let Some(path) = std::env::var_os("JOBS_REDIS_TEST_RUN_LOG") {
        runlog::open(path.as_ref())?;
    }
    let dead_log = std::env::var_os("JOBS_REDIS_TEST_DEAD_LOG");
    if let Some(path) = &dead_log {
        deadlog::open(path.as_ref())?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let q = RedisQueue::connect(url).await?;
        // JOBS_REDIS_TEST_WORKERS: workers per process (default 4).
        let workers = std::env::var("JOBS_REDIS_TEST_WORKERS").ok().and_then(|n| n.parse().ok()).unwrap_or(4);
        let mut pool = WorkerPool::builder(q).queues(queues.split(',')).workers(workers).lease(lease);
        // JOBS_REDIS_TEST_PREFETCH: jobs taken ahead of free workers, always
        // (unset: the pool's default, as its pace calls for them).
        if let Some(n) = std::env::var("JOBS_REDIS_TEST_PREFETCH").ok().and_then(|n| n.parse().ok()) {
            pool = pool.prefetch(n);
        }
        if let Some(b) = backoff {
            pool = pool.backoff(b);
        }
        if dead_log.is_some() {
            pool = pool.on_dead(deadlog::report);
        }
        let _pool = pool.start()?;
        // The test kills it long before this; the bound keeps a forgotten
        // process from living on.
        tokio::time::sleep(Duration::from_secs(120)).await;
        Ok(())
    })
}
