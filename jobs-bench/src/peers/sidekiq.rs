//! rusty-sidekiq: `perform_async` for each job of a batch, all of a batch
//! in flight at once (the crate has no bulk call), a `Processor` of the
//! given number of workers.

use async_trait::async_trait;
use sidekiq::{Processor, ProcessorConfig, RedisConnectionManager, RedisPool, Worker};

use super::{BoxFuture, Peer, Producer, Stamp, Workers};

pub(super) fn peer() -> Peer {
    Peer {
        name: "rusty-sidekiq",
        version: "0.15.2",
        settings: "`ProcessorConfig::num_workers(n)`, a bb8 pool of n + 8 connections (each worker blocks one in \
                   BRPOP; the default 10 starves the producer); the producer sends a batch as concurrent \
                   `perform_async` calls",
        producer: |url| Box::pin(producer(url)),
        workers: |url, n| Box::pin(workers(url, n)),
    }
}

#[derive(Clone)]
struct Noop;

#[async_trait]
impl Worker<Stamp> for Noop {
    async fn perform(&self, stamp: Stamp) -> sidekiq::Result<()> {
        stamp.ran();
        Ok(())
    }
}

async fn pool(url: &str, size: usize) -> Result<RedisPool, String> {
    let manager = RedisConnectionManager::new(url).map_err(|e| e.to_string())?;
    let size = u32::try_from(size).map_err(|e| e.to_string())?;
    bb8::Pool::builder().max_size(size).build(manager).await.map_err(|e| e.to_string())
}

struct Sender(RedisPool);

impl Producer for Sender {
    fn send<'a>(&'a self, stamps: Vec<Stamp>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let redis = &self.0;
            let sends =
                stamps.into_iter().map(|s| async move { Noop::opts().queue("bench").perform_async(redis, s).await });
            for sent in futures_util::future::join_all(sends).await {
                sent.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

async fn producer(url: &str) -> Result<Box<dyn Producer>, String> {
    Ok(Box::new(Sender(pool(url, 10).await?)))
}

struct Running {
    /// Cancels the processor's token (kept as a closure: the token's type
    /// is the crate's own tokio-util).
    stop: Box<dyn FnOnce() + Send>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers for Running {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            (self.stop)();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        })
    }
}

async fn workers(url: &str, n: usize) -> Result<Box<dyn Workers>, String> {
    let mut p = Processor::new(pool(url, n + 8).await?, vec!["bench".to_owned()])
        .with_config(ProcessorConfig::default().num_workers(n));
    p.register(Noop);
    let token = p.get_cancellation_token();
    Ok(Box::new(Running { stop: Box::new(move || token.cancel()), task: tokio::spawn(p.run()) }))
}
