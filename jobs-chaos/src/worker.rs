//! Worker mode: `jobs-chaos worker ..`, one worker process of a run. A
//! [`WorkerPool`] over Redis on the chaos queue, recording every attempt in
//! its run log, until its stdin closes (then a clean shutdown) or it is
//! killed.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use jobs_core::{Backoff, WorkerPool};
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
}

/// How a chaos process talks to Redis: short timeouts, so that an outage
/// turns into errors (and retries) quickly rather than long hangs.
pub fn redis_config(url: &str) -> RedisConfig {
    RedisConfig {
        command_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
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
