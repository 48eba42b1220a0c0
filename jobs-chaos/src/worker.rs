//! Worker mode: `jobs-chaos worker ..`, one worker process of a run. A
//! [`WorkerPool`] over Redis on the chaos queue, recording every attempt in
//! its run log, until its stdin closes (then a clean shutdown) or it is
//! killed.
//!
//! Before its pool starts, the process measures its clock against Redis
//! `TIME` and records both the offset it was given and the measured one in
//! its run log; a process whose clock is not off by what it was given
//! (libfaketime not in effect) exits with [`CLOCK_EXIT`] and takes no job.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use jobs_core::{Backoff, JobQueue, Retention, WorkerPool};
use jobs_redis::{RedisConfig, RedisQueue};

use crate::error::ChaosError;
use crate::runlog;

/// The settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The Redis URL.
    pub redis: String,
    /// The queue to serve.
    pub queue: String,
    /// The pool's lease.
    pub lease: Duration,
    /// Jobs run at once.
    pub concurrency: usize,
    /// This process's run log.
    pub runlog: PathBuf,
    /// How far ahead this process's clock was set (ms; negative: behind;
    /// 0: the host's clock).
    pub clock_skew_ms: i64,
    /// The pool's crash budget.
    pub crash_budget: u32,
}

/// The exit code of a worker process whose clock is not off by what it
/// was given.
pub const CLOCK_EXIT: i32 = 87;

/// How far a measured clock offset may be from the given one: the reading
/// is bracketed by a round trip of at most [`MAX_ROUND_TRIP`], and skews
/// are minutes.
const SKEW_TOLERANCE_MS: i64 = 2_000;

/// The slowest `TIME` round trip a measurement is taken from (a frozen or
/// restarting Redis answers late: measure again).
const MAX_ROUND_TRIP: Duration = Duration::from_millis(500);

/// How long a starting worker keeps trying to measure its clock (Redis may
/// be down or frozen for a while).
const MEASURE_FOR: Duration = Duration::from_secs(60);

/// This process's clock minus the server's, in ms, from a `TIME` reading
/// bracketed by two of our own.
async fn measure_offset(queue: &RedisQueue) -> Result<i64, String> {
    let deadline = tokio::time::Instant::now() + MEASURE_FOR;
    let mut last = String::from("no reading");
    while tokio::time::Instant::now() < deadline {
        let sent = std::time::Instant::now();
        let before = runlog::raw_now_ms();
        let server = queue.now().await;
        let after = runlog::raw_now_ms();
        match server {
            Ok(t) if sent.elapsed() <= MAX_ROUND_TRIP => {
                let server_ms = match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                    Err(_) => return Err("the server's clock reads before 1970".into()),
                };
                return Ok(before + (after - before) / 2 - server_ms);
            }
            Ok(_) => last = format!("TIME took {:?}", sent.elapsed()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("could not read the server's clock within {MEASURE_FOR:?}: {last}"))
}

/// The most succeeded and the most dead jobs a chaos run keeps: more than
/// any run makes, since the check reads each acknowledged job's record at
/// the end and counts a missing one as lost. The backend's default drops
/// the oldest succeeded jobs past 100,000, which a 10-minute run passes on
/// a fast machine.
const KEEP_FINISHED: usize = 1_000_000_000;

/// How a chaos process talks to Redis: short timeouts, so that an outage
/// turns into errors (and retries) quickly rather than long hangs, and a
/// retention that keeps every finished job for the check
/// (`KEEP_FINISHED`).
pub fn redis_config(url: &str) -> RedisConfig {
    let year = Duration::from_secs(365 * 24 * 3600);
    RedisConfig {
        command_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        retention: Retention { succeeded: year, succeeded_max: KEEP_FINISHED, dead_age: year, dead_max: KEEP_FINISHED },
        ..RedisConfig::new(url)
    }
}

/// Connects, retrying while Redis is down (a worker may be restarted during
/// an outage).
pub async fn connect(url: &str) -> RedisQueue {
    let config = redis_config(url);
    let mut delay = Duration::from_millis(100);
    loop {
        match RedisQueue::from_config(&config).await {
            Ok(q) => return q,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to Redis yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The fields of each of the chaos queue's hashes `<base><suffix>` of
/// `suffixes` (in that order), over its `partitions` (1: not partitioned),
/// read raw through one connection: the backend's own counts that
/// `JobInfo` and the stats do not carry (see `jobs-redis`'s
/// `scripts/common.lua` and `scripts/groups.lua`).
pub(crate) async fn read_queue_hashes(
    url: &str,
    partitions: u16,
    suffixes: &[&str],
) -> Result<Vec<HashMap<String, String>>, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let prefix = redis_config(url).prefix;
    let bases: Vec<String> = (0..partitions.max(1))
        .map(|p| jobs_redis::keys::QueueKeys::of_partition(&prefix, crate::jobs::QUEUE, p).base().to_owned())
        .collect();
    let mut out = Vec::with_capacity(suffixes.len());
    for suffix in suffixes {
        let mut all = HashMap::new();
        for base in &bases {
            let part: HashMap<String, String> =
                redis::cmd("HGETALL").arg(format!("{base}{suffix}")).query_async(&mut c).await?;
            all.extend(part);
        }
        out.push(all);
    }
    Ok(out)
}

/// Serves as a sandbox child of a worker process (`chaos.sandboxed`): its
/// runs go to the worker's run log, on the host's clock like the worker's.
pub fn serve_sandbox_child(runlog_path: &std::path::Path, clock_skew_ms: i64) -> Result<(), ChaosError> {
    runlog::open(runlog_path)?;
    runlog::set_clock_offset(clock_skew_ms);
    if let Some(child) = jobs_core::sandbox::child() {
        child.serve();
    }
    Ok(())
}

/// Runs the worker process until its stdin closes.
pub fn run_worker(args: WorkerArgs) -> Result<(), ChaosError> {
    runlog::open(&args.runlog)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ChaosError::io(&args.runlog, e))?;
    rt.block_on(async move {
        let queue = connect(&args.redis).await;
        let measured = measure_offset(&queue).await.map_err(ChaosError::Config)?;
        runlog::clock(args.clock_skew_ms, measured);
        if (measured - args.clock_skew_ms).abs() > SKEW_TOLERANCE_MS {
            eprintln!(
                "jobs-chaos worker: this process's clock should be {} ms off the server's and is {measured} ms off: \
                 is libfaketime in effect?",
                args.clock_skew_ms
            );
            std::process::exit(CLOCK_EXIT);
        }
        // Run log times on the host's clock: the offset given is exact
        // (libfaketime adds it to every reading).
        runlog::set_clock_offset(args.clock_skew_ms);
        let pool = WorkerPool::builder(queue)
            .queues([args.queue.as_str()])
            .workers(args.concurrency)
            .lease(args.lease)
            .backoff(Backoff {
                base: Duration::from_millis(100),
                factor: 2.0,
                cap: Duration::from_secs(1),
                jitter: true,
            })
            .grace_period(Duration::from_secs(2))
            .crash_budget(args.crash_budget)
            .scheduler(false)
            .start()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            // EOF (or an error) on stdin: the chaos program closed it or died.
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = tx.send(());
        });
        let _ = rx.await;
        pool.shutdown().await?;
        Ok(())
    })
}
