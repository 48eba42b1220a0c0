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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
/// died without a word (a network split) is noticed and replaced within
/// this plus the connect timeout. A ping costs the server one reply.
const PING_EVERY: Duration = Duration::from_secs(15);

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
        Self::start_pinging(queue, channels, PING_EVERY, Arc::default())
    }

    /// [`start`](Self::start), pinging every `ping_every` and counting the
    /// answered pings in `pongs`.
    fn start_pinging(
        queue: &RedisQueue,
        channels: Vec<String>,
        ping_every: Duration,
        pongs: Arc<AtomicU64>,
    ) -> Result<Self, Error> {
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
            ping_every,
            pongs,
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
    ping_every: Duration,
    /// Liveness pings answered.
    pongs: Arc<AtomicU64>,
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
        let mut ping = tokio::time::interval(self.ping_every);
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
                    // Any reply will do: on a subscribed connection the
                    // server answers `["pong", ""]`, not `PONG`.
                    in_flight = Some(Box::pin(async move { tokio::time::timeout(limit, sink.ping::<redis::Value>()).await }));
                }
                r = async { in_flight.as_mut().expect("guarded by is_some").await }, if in_flight.is_some() => {
                    in_flight = None;
                    r.map_err(|_| timed_out())??;
                    self.pongs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use std::time::Instant;

    use super::*;

    /// Liveness pings keep the subscription: however many are answered, the
    /// waiter is never woken without a message (a dropped subscription
    /// wakes it when it subscribes again), and a message still wakes it.
    #[tokio::test]
    async fn pings_keep_the_subscription() {
        let server = crate::testing::RedisServer::start();
        let q = RedisQueue::connect(&server.url()).await.unwrap();
        let channel = "jobs-test:pinged".to_owned();
        let pongs = Arc::new(AtomicU64::new(0));
        let mut w =
            RedisWaiter::start_pinging(&q, vec![channel.clone()], Duration::from_millis(10), pongs.clone()).unwrap();
        // The first wait returns once subscribed.
        w.wait(Duration::from_secs(10)).await.unwrap();
        assert!(w.subscribed, "subscribed within 10 s");
        let woken = *w.rx.borrow_and_update();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pongs.load(Ordering::Relaxed) < 20 {
            assert!(Instant::now() < deadline, "{} pings answered in 10 s", pongs.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*w.rx.borrow(), woken, "woken without a message while pinging");
        let mut conn = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        redis::cmd("PUBLISH").arg(&channel).arg("1").query_async::<()>(&mut conn).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), w.rx.changed()).await.expect("a message wakes it").unwrap();
    }
}
