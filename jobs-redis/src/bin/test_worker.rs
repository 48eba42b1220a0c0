//! A worker process for the crash tests (feature `testing`): a pool on one
//! queue that runs the conformance suite's jobs until it is killed.
//!
//! `jobs-redis-test-worker URL QUEUE LEASE_MS`

use std::time::Duration;

// The suite's jobs (`ProbeJob`, ...) the crash tests enqueue are linked
// with jobs-core, whose `testing` feature this binary requires.
use jobs_core::WorkerPool;
use jobs_redis::RedisQueue;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, queue, lease_ms] = args.as_slice() else {
        return Err("usage: jobs-redis-test-worker URL QUEUE LEASE_MS".into());
    };
    let lease = Duration::from_millis(lease_ms.parse()?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let q = RedisQueue::connect(url).await?;
        let _pool = WorkerPool::builder(q).queues([queue.as_str()]).workers(4).lease(lease).start()?;
        // The test kills it long before this; the bound keeps a forgotten
        // process from living on.
        tokio::time::sleep(Duration::from_secs(120)).await;
        Ok(())
    })
}
