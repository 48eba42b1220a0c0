//! Jobs read values the pool shares and enqueue follow-up jobs through the
//! queue they came from.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::prelude::*;

struct Seen(Arc<AtomicU32>);

#[job(queue = "fanout")]
async fn campaign(ctx: JobContext, recipients: Vec<String>) -> Result<(), JobError> {
    let queue = ctx.queue_handle().ok_or_else(|| JobError::permanent("no queue handle"))?;
    for to in recipients {
        Deliver { to }.enqueue(queue.as_ref()).await.map_err(JobError::retryable)?;
    }
    Ok(())
}

#[job(queue = "fanout")]
async fn deliver(seen: Data<Seen>, to: String) -> Result<(), JobError> {
    seen.0.fetch_add(1, Ordering::SeqCst);
    let _ = to;
    Ok(())
}

#[tokio::test]
async fn a_job_fans_out_through_its_queue_and_reads_pool_data() {
    let queue = MemoryQueue::new();
    let seen = Arc::new(AtomicU32::new(0));
    let pool = WorkerPool::builder(queue.clone())
        .queues(["fanout"])
        .scheduler(false)
        .data(Seen(seen.clone()))
        .start()
        .unwrap();
    Campaign { recipients: vec!["a@x.org".into(), "b@x.org".into(), "c@x.org".into()] }.enqueue(&queue).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the three deliveries did not run");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pool.shutdown().await.unwrap();
    assert_eq!(queue.stats().await.unwrap().queue("fanout").processed, 4);
}
