//! [`RedisWaiter`]: idle fetchers block on pub/sub, never poll.
//!
//! Scripts that make work available (enqueue, a retry or hand-back in
//! finish, retry_dead, resume) `PUBLISH` on the queue's `wake` channel. Each
//! waiter owns a task holding a dedicated pub/sub connection subscribed to
//! the channels of the queues it serves; every message bumps a counter in a
//! `watch` channel. `arm()` marks the counter seen; `wait()` returns when it
//! moves. A message that arrives between the two stays visible as a newer
//! value, so no wake-up is lost.
//!
//! While the connection is down nothing can be heard, so after every
//! (re)subscription the task bumps the counter itself: the fetcher looks
//! once more, and misses nothing that was published meanwhile. A lost
//! subscription is logged and retried with back-off (100 ms doubling to 5 s).
//!
//! On Redis Cluster the scripts' `PUBLISH` is forwarded by the cluster bus
//! to every node, so the task subscribes on any one node and, when that one
//! fails, moves on to the next node of the configuration. (Sharded pub/sub,
//! `SPUBLISH`, measured about 25% cheaper per message on a local
//! three-master cluster, but needs Redis 7 and resubscribing whenever a
//! queue's slot moves; a wake-up is sent once per script call, not per job,
//! so the broadcast's cost does not matter at these rates.)

use std::time::Duration;

use futures_util::StreamExt;
use jobs_core::backend::{BoxFuture, Waiter};
use jobs_core::Error;
use redis::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Redactor, RedisQueueError};
use crate::queue::RedisQueue;

/// How often an idle subscription is checked with a PING: a connection that
/// died without a word (a network split) is noticed and replaced. Each ping
/// holds the subscription's messages back for up to ~50 ms (jobs-bench: with
/// a ping every 15 s the latency p99.9 is 30 ms, with none in the run 1 ms;
/// the stall comes from inside the driver's pub/sub handling, its cause
/// unidentified), so it is rare; the pool's idle re-fetch (half a lease)
/// covers the gap.
const PING_EVERY: Duration = Duration::from_secs(60);

/// The waiter of one fetch loop.
pub(crate) struct RedisWaiter {
    rx: watch::Receiver<u64>,
    task: JoinHandle<()>,
    /// Whether a wait has seen the subscription in place (the counter moves
    /// off 0 when it is).
    subscribed: bool,
}

impl RedisWaiter {
    /// Starts the subscriber task on the current Tokio runtime.
    pub(crate) fn start(queue: &RedisQueue, channels: Vec<String>) -> Result<Self, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::from(RedisQueueError::Config {
                url: queue.inner.url.clone(),
                reason: "a waiter needs a Tokio runtime: call waiter() from async code".to_owned(),
            })
        })?;
        let (tx, rx) = watch::channel(0u64);
        let sub = Subscriber {
            clients: queue.inner.pubsub.clone(),
            channels,
            timeout: queue.inner.connect_timeout,
            redactor: queue.inner.redactor.clone(),
            tx,
        };
        Ok(RedisWaiter { rx, task: handle.spawn(sub.run()), subscribed: false })
    }
}

impl Drop for RedisWaiter {
    fn drop(&mut self) {
        // Closes the pub/sub connection.
        self.task.abort();
    }
}

impl Waiter for RedisWaiter {
    fn arm(&mut self) {
        self.rx.borrow_and_update();
    }

    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if !self.subscribed {
                // The first wait returns once the subscription is in place,
                // whenever `arm` ran: work published before it was missed,
                // so the caller must look again.
                let _ = tokio::time::timeout(timeout, self.rx.wait_for(|n| *n > 0)).await;
                self.subscribed = *self.rx.borrow_and_update() > 0;
                return Ok(());
            }
            match tokio::time::timeout(timeout, self.rx.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                // The task ended (it never does on its own; the runtime is
                // shutting down): degrade to the timeout rather than spin.
                Ok(Err(_)) => tokio::time::sleep(timeout).await,
            }
            Ok(())
        })
    }
}

struct Subscriber {
    /// The server, or the Cluster nodes given, tried in turn.
    clients: Vec<Client>,
    channels: Vec<String>,
    timeout: Duration,
    redactor: Redactor,
    tx: watch::Sender<u64>,
}

impl Subscriber {
    fn wake(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Subscribes, listens, and starts over after any failure, until the
    /// waiter is dropped.
    async fn run(self) {
        let mut delay = Duration::from_millis(100);
        let mut node = 0;
        loop {
            let client = &self.clients[node % self.clients.len()];
            match self.listen(client, &mut delay).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %self.redactor.clean(&e.to_string()), retry_in = ?delay, "job wake-up subscription lost; reconnecting");
                }
            }
            node += 1;
            tokio::select! {
                _ = self.tx.closed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Returns `Ok` when the waiter is gone, `Err` when the connection is.
    /// Once subscribed, the back-off starts over.
    async fn listen(&self, client: &Client, delay: &mut Duration) -> Result<(), redis::RedisError> {
        let timed_out = || crate::conn::timed_out(self.timeout);
        let pubsub = tokio::time::timeout(self.timeout, client.get_async_pubsub()).await.map_err(|_| timed_out())??;
        let (mut sink, mut stream) = pubsub.split();
        for ch in &self.channels {
            tokio::time::timeout(self.timeout, sink.subscribe(ch)).await.map_err(|_| timed_out())??;
        }
        // Anything published while we were not subscribed was missed.
        self.wake();
        *delay = Duration::from_millis(50);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        // The liveness ping runs beside the message stream, never in place of
        // it, so a slow ping cannot hold wake-ups back.
        let mut in_flight = None;
        loop {
            tokio::select! {
                _ = self.tx.closed() => return Ok(()),
                msg = stream.next() => match msg {
                    Some(_) => self.wake(),
                    None => return Err(redis::RedisError::from((redis::ErrorKind::Io, "subscription closed"))),
                },
                _ = ping.tick(), if in_flight.is_none() => {
                    let mut sink = sink.clone();
                    let limit = self.timeout;
                    in_flight = Some(Box::pin(async move { tokio::time::timeout(limit, sink.ping::<String>()).await }));
                }
                r = async { in_flight.as_mut().expect("guarded by is_some").await }, if in_flight.is_some() => {
                    in_flight = None;
                    r.map_err(|_| timed_out())??;
                }
            }
        }
    }
}
