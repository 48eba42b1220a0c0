//! The worker process of the signal test (`tests/tests/signals.rs`): a pool
//! on a `MemoryQueue` running one job that never ends by itself, stopped by
//! `shutdown_signal()` with a grace period of 10 minutes. Prints `running`
//! once the job runs.

use std::time::Duration;

use jobs_core::prelude::*;

/// Runs until the process ends, ignoring cancellation.
#[job(name = "signals.forever", queue = "signals")]
async fn forever() -> Result<(), JobError> {
    println!("running");
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let signal = jobs_core::shutdown_signal()?;
    let q = MemoryQueue::new();
    let pool = WorkerPool::builder(q.clone()).queues(["signals"]).grace_period(Duration::from_secs(600)).start()?;
    Forever {}.enqueue(&q).await?;
    pool.run_until(signal).await?;
    println!("stopped");
    Ok(())
}
