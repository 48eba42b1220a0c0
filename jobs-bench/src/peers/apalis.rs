//! apalis with apalis-redis: `push_bulk` of each batch into a
//! `RedisStorage`, a worker limited to the given concurrency.

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use apalis_redis::RedisStorage;

use super::{BoxFuture, Peer, Producer, Stamp, Workers};

pub(super) fn peer() -> Peer {
    Peer {
        name: "apalis-redis",
        version: "1.0.0",
        settings: "`WorkerBuilder::concurrency(n)` (apalis 1.0.0, feature `limit`), the workers on the \
                   producer's storage; the producer sends each batch with one `push_bulk`. With this payload \
                   (`{\"sent\":<19 digits>,\"pad\":\"..\"}`) each job runs about 30 s after its push; \
                   with `{}` or `{\"sent\":1,..}` at once (not investigated further)",
        producer: |url| Box::pin(producer(url)),
        workers: |url, n| Box::pin(workers(url, n)),
    }
}

/// The storage of the last producer: its workers take a clone of it, as
/// an application that produces and works in one process does (a push
/// through the same storage reaches its workers at once; another
/// storage's is found by their poll).
static SHARED: std::sync::Mutex<Option<RedisStorage<Stamp>>> = std::sync::Mutex::new(None);

fn shared() -> std::sync::MutexGuard<'static, Option<RedisStorage<Stamp>>> {
    // Nothing panics while holding it.
    SHARED.lock().unwrap_or_else(|p| p.into_inner())
}

async fn storage(url: &str) -> Result<RedisStorage<Stamp>, String> {
    Ok(RedisStorage::new(apalis_redis::connect(url).await.map_err(|e| e.to_string())?))
}

struct Sender(tokio::sync::Mutex<RedisStorage<Stamp>>);

impl Producer for Sender {
    fn send<'a>(&'a self, stamps: Vec<Stamp>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.lock().await.push_bulk(stamps).await.map_err(|e| format!("{e:?}")) })
    }
}

async fn producer(url: &str) -> Result<Box<dyn Producer>, String> {
    let storage = storage(url).await?;
    let sending = storage.clone();
    *shared() = Some(storage);
    Ok(Box::new(Sender(tokio::sync::Mutex::new(sending))))
}

async fn noop(stamp: Stamp) -> Result<(), BoxDynError> {
    stamp.ran();
    Ok(())
}

struct Running {
    stop: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers for Running {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.stop.notify_one();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        })
    }
}

async fn workers(url: &str, n: usize) -> Result<Box<dyn Workers>, String> {
    let taken = shared().take();
    let backend = match taken {
        Some(s) => s,
        None => storage(url).await?,
    };
    let worker = WorkerBuilder::new("bench").backend(backend).concurrency(n).build(noop);
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let _ = worker
            .run_until(async move {
                stopped.notified().await;
                Ok::<(), std::io::Error>(())
            })
            .await;
    });
    Ok(Box::new(Running { stop, task }))
}
