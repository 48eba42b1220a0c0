//! bullmq-official, the BullMQ team's Rust port: `Queue::add_bulk` of each
//! batch, a `Worker` of the given concurrency.

use bullmq::options::RedisConnectionOptions;
use bullmq::{BulkJob, Job, Queue, QueueOptions, Worker, WorkerOptions};

use super::{BoxFuture, Peer, Producer, Stamp, Workers};

pub(super) fn peer() -> Peer {
    Peer {
        name: "bullmq-official",
        version: "1.4.4",
        settings: "`WorkerOptions::concurrency = n`; the producer sends each batch with one `Queue::add_bulk`",
        producer: |url| Box::pin(producer(url)),
        workers: |url, n| Box::pin(workers(url, n)),
    }
}

fn connection(url: &str) -> RedisConnectionOptions {
    RedisConnectionOptions { url: url.to_owned(), ..Default::default() }
}

struct Sender(Queue);

impl Producer for Sender {
    fn send<'a>(&'a self, stamps: Vec<Stamp>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let jobs = stamps.into_iter().map(|s| BulkJob::new("noop", s)).collect();
            self.0.add_bulk(jobs).await.map(drop).map_err(|e| e.to_string())
        })
    }
}

async fn producer(url: &str) -> Result<Box<dyn Producer>, String> {
    let opts = QueueOptions { connection: connection(url), ..Default::default() };
    Ok(Box::new(Sender(Queue::with_options("bench", opts).await.map_err(|e| e.to_string())?)))
}

struct Running(Worker);

impl Workers for Running {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.0.close(5_000).await;
        })
    }
}

async fn workers(url: &str, n: usize) -> Result<Box<dyn Workers>, String> {
    let opts = WorkerOptions { connection: connection(url), concurrency: n, ..Default::default() };
    let worker = Worker::with_options(
        "bench",
        |job: Job, _token| async move {
            let stamp: Stamp = serde_json::from_value(job.data().clone()).map_err(bullmq::Error::from)?;
            stamp.ran();
            Ok(serde_json::Value::Null)
        },
        opts,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Box::new(Running(worker)))
}
