//! What running a job in a warm sandbox child costs, against running it in
//! the worker: the same trivial job, on a `MemoryQueue`, one at a time
//! (enqueue to result: the round trip through the child) and in a batch
//! (jobs per second with as many warm children as workers).
//!
//! `cargo run --release -p jobs-core --example sandbox_overhead -- [JOBS]`
//! (default 300 per kind and measure). Prints a Markdown table.

use std::time::{Duration, Instant};

use jobs_core::prelude::*;
use jobs_core::sandbox::Sandbox;
use jobs_core::JobHandle;

/// Workers, and warm children.
const WORKERS: usize = 4;
const WAIT: Duration = Duration::from_secs(60);

/// Returns its input, in a child.
#[job(name = "overhead.sandboxed", queue = "overhead", sandbox)]
async fn sandboxed(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// Returns its input, in the worker.
#[job(name = "overhead.in_worker", queue = "overhead")]
async fn in_worker(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    jobs_core::sandbox::serve_if_child();
    let jobs: u32 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(measure(jobs))
}

async fn measure(jobs: u32) -> Result<(), Box<dyn std::error::Error>> {
    let q = MemoryQueue::new();
    let pool =
        WorkerPool::builder(q.clone()).workers(WORKERS).sandbox(Sandbox::default().warm_children(WORKERS)).start()?;
    // Every child started and warm before anything is measured.
    batch(&q, WORKERS as u32 * 4, Sandboxed::new).await?;
    let rows = [
        ("in the worker", one_at_a_time(&q, jobs, InWorker::new).await?, batch(&q, jobs, InWorker::new).await?),
        (
            "sandboxed (warm child)",
            one_at_a_time(&q, jobs, Sandboxed::new).await?,
            batch(&q, jobs, Sandboxed::new).await?,
        ),
    ];
    pool.shutdown().await?;
    println!("| job | one at a time: p50 | p99 | mean | batch of {jobs}: jobs/s |");
    println!("|---|---|---|---|---|");
    for (name, mut lat, rate) in rows {
        lat.sort_unstable();
        let mean = lat.iter().sum::<Duration>() / lat.len().max(1) as u32;
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!("| {name} | {:?} | {:?} | {:?} | {rate:.0} |", pct(0.50), pct(0.99), mean);
    }
    Ok(())
}

/// Enqueue to result, one job after the other.
async fn one_at_a_time<J>(
    q: &MemoryQueue,
    n: u32,
    make: fn(u32) -> J,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>>
where
    J: Job<Output = u32> + JobExt,
{
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = Instant::now();
        let id = make(i).enqueue(q).await?;
        let got = JobHandle::<J>::new(q, id).wait(WAIT).await?;
        lat.push(start.elapsed());
        assert_eq!(got, i);
    }
    Ok(lat)
}

/// Jobs per second for `n` jobs enqueued at once.
async fn batch<J>(q: &MemoryQueue, n: u32, make: fn(u32) -> J) -> Result<f64, Box<dyn std::error::Error>>
where
    J: Job<Output = u32> + JobExt,
{
    let start = Instant::now();
    let ids = J::enqueue_all(q, (0..n).map(make)).await?;
    for id in ids {
        JobHandle::<J>::new(q, id).wait(WAIT).await?;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}
