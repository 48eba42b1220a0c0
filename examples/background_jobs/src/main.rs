//! The example application of `jobs`: email and cleanup jobs on the embedded
//! `MemoryQueue`. Run it with `cargo run -p background-jobs`.
//!
//! It writes welcome mails as `.eml` files into `./outbox` (override with
//! `OUTBOX_DIR`), cleans old files from a scratch folder, and reports what
//! ran, what retried and what ended dead.

mod jobs;

use std::path::PathBuf;
use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::QueueStats;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,jobs_core=warn".into()),
        )
        .init();

    let outbox = PathBuf::from(std::env::var("OUTBOX_DIR").unwrap_or_else(|_| "outbox".into()));
    std::fs::create_dir_all(&outbox)?;
    jobs::set_outbox(outbox.clone());

    let queue = MemoryQueue::new();
    let pool = WorkerPool::builder(queue.clone())
        .workers(4)
        .queues(["email", "maintenance"])
        .retry_delay(Duration::from_millis(200))
        .start()?;

    let users = [("ann@example.com", "Ann"), ("bob@example.com", "Bob"), ("chen@example.org", "Chen")];
    for (to, name) in users {
        let id = jobs::SendWelcomeEmail::new(to.into(), name.into()).enqueue(&queue).await?;
        tracing::info!(%id, to, "welcome mail enqueued");
    }
    // Refused before anything is written: the payload breaks its rules.
    if let Err(e) = jobs::SendWelcomeEmail::new("not-an-address".into(), String::new()).enqueue(&queue).await {
        tracing::warn!("refused as expected: {e}");
    }
    let scratch = std::env::temp_dir().join(format!("background-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    std::fs::write(scratch.join("old.tmp"), b"stale")?;
    let cleanup = jobs::CleanupTempFiles::new(scratch.display().to_string(), 0)
        .enqueue_with(&queue, JobOptions::new().priority(Priority::Low))
        .await?;

    // Wait until every job has finished one way or the other.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = queue.stats().await?;
        if pending_work(&s) == 0 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "jobs did not finish within 30 s: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.shutdown().await?;

    let stats = queue.stats().await?;
    for (name, q) in &stats.queues {
        let t = q.total();
        println!("queue {name:<12} processed {:>3}  failed attempts {:>3}  dead {:>3}", t.processed, t.failed, t.dead);
    }
    let info = queue.job(&cleanup).await?.expect("the cleanup job is kept for the retention period");
    println!("cleanup result: {}", info.result.unwrap_or_default());
    println!("mails written to {}", outbox.display());
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

fn pending_work(s: &QueueStats) -> u64 {
    s.queues.values().map(|q| q.total()).map(|t| t.pending + t.scheduled + t.running + t.retrying).sum()
}
