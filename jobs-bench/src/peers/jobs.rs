//! jobs itself, as the comparison runs the peers: a `RedisQueue` producer
//! sending batches with `enqueue_many`, a `WorkerPool` of the given size.

use jobs_core::{JobQueue, WorkerHandle};
use jobs_redis::RedisQueue;

use super::{BoxFuture, Peer, Producer, Stamp, Workers};
use crate::job::{BenchNoop, QUEUE};

pub(super) fn peer() -> Peer {
    Peer {
        name: "jobs",
        version: env!("CARGO_PKG_VERSION"),
        settings: "`WorkerPool::workers(n)`, and `prefetch` as `--prefetch` gives it (by default, jobs taken ahead as the pool's pace calls for them); the producer sends each batch with one `enqueue_many`",
        producer: |url| Box::pin(producer(url)),
        workers: |url, n| Box::pin(workers(url, n)),
    }
}

struct Sender(RedisQueue);

impl Producer for Sender {
    fn send<'a>(&'a self, stamps: Vec<Stamp>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let jobs = stamps
                .into_iter()
                .map(|s| BenchNoop::at(s.sent).new_job())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            self.0.enqueue_many(jobs).await.map(drop).map_err(|e| e.to_string())
        })
    }
}

async fn producer(url: &str) -> Result<Box<dyn Producer>, String> {
    Ok(Box::new(Sender(RedisQueue::connect(url).await.map_err(|e| e.to_string())?)))
}

struct Pool(WorkerHandle);

impl Workers for Pool {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.0.shutdown().await;
        })
    }
}

async fn workers(url: &str, n: usize) -> Result<Box<dyn Workers>, String> {
    let queue = crate::scenario::shared(RedisQueue::connect(url).await.map_err(|e| e.to_string())?);
    let pool = crate::scenario::with_pool_prefetch(jobs_core::WorkerPool::builder(queue).workers(n))
        .queues([QUEUE])
        .scheduler(false)
        .start()
        .map_err(|e| e.to_string())?;
    Ok(Box::new(Pool(pool)))
}
