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
//! **One hop.** A waiter of one queue parks its fetches
//! ([`Waiter::wait_fetch`]): its fetch, finding nothing, lists it in the
//! queue's `parked` set (see "Parking" in `fetch.lua`), and it blocks on an
//! inbox of its own with `BLPOP` on a connection of its own, beside the
//! subscription. An enqueue then leases its jobs to the waiter in the
//! enqueue's own script and pushes them to the inbox: the pool starts them
//! without a wake-up and a fetch. When the `BLPOP` times out, or a message
//! wakes the waiter (work an enqueue did not hand over: a retry, a resume),
//! the waiter unlists itself and takes what its inbox holds in one script
//! (`unpark.lua`), so no job handed over is left behind. A waiter of
//! several queues only subscribes: one `BLPOP` cannot span Cluster slots,
//! and one listing per queue could hand it more jobs than it has slots.
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
use jobs_core::backend::{BoxFuture, FetchRequest, Fetched, Waiter};
use jobs_core::Error;
use redis::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connect::BlockingConn;
use crate::error::{Redactor, RedisQueueError};
use crate::keys::QueueKeys;
use crate::queue::RedisQueue;

/// How often an idle subscription is checked with a PING: a connection that
/// died without a word (a network split) is noticed and replaced within
/// this plus the connect timeout. A ping costs the server one reply.
const PING_EVERY: Duration = Duration::from_secs(15);

/// How much longer than its wait a parked fetcher stays listed: past its
/// `BLPOP`'s end, an enqueue may still hand it jobs, which its unparking
/// takes. A fetcher killed while parked is handed one enqueue's jobs at
/// most (the listing goes with them), which come back with their lease.
const PARK_SLACK: Duration = Duration::from_secs(1);

/// A `BLPOP`'s end: the connection it held, and what it popped.
type Popped = (BlockingConn, redis::RedisResult<Option<Vec<u8>>>);

/// The waiter of one fetch loop.
pub(crate) struct RedisWaiter {
    rx: watch::Receiver<u64>,
    task: JoinHandle<()>,
    /// Whether a wait has seen the subscription in place (the counter moves
    /// off 0 when it is).
    subscribed: bool,
    /// For a waiter of one queue: its parked fetches.
    park: Option<Parking>,
}

/// A parked fetch's part of a waiter (see the module's "One hop").
struct Parking {
    queue: RedisQueue,
    keys: QueueKeys,
    /// Its id in the queue's `parked` set.
    id: String,
    /// Its connection for `BLPOP`, once opened (dropped after an error).
    conn: Option<BlockingConn>,
    /// The `BLPOP` on its way, with the connection it holds; kept here so
    /// that a wait dropped half way leaves its result to [`Parking::settle`].
    pending: Option<JoinHandle<Popped>>,
    /// Whether it may still be listed as parked.
    listed: bool,
    /// Until when it does not park (a `BLPOP` failed): it waits for
    /// wake-ups instead, rather than park and fail again at once.
    off_until: Option<tokio::time::Instant>,
}

impl Parking {
    /// Starts a `BLPOP` of its inbox for up to `wait`.
    async fn block(&mut self, wait: Duration) -> Result<(), Error> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self
                .queue
                .inner
                .blocking
                .open(self.queue.inner.connect_timeout)
                .await
                .map_err(|e| self.queue.command_error("BLPOP (connect)", &e))?,
        };
        let inbox = self.keys.inbox(&self.id);
        let limit = wait + self.queue.inner.command_timeout;
        self.pending = Some(tokio::spawn(async move {
            let popped = match tokio::time::timeout(limit, conn.blpop(&inbox, wait)).await {
                Ok(r) => r,
                Err(_) => Err(crate::conn::timed_out(limit)),
            };
            (conn, popped)
        }));
        Ok(())
    }

    /// The `BLPOP`'s end: a handed fetch, or nothing (it timed out, got the
    /// mark unpark leaves, or failed: logged, and the connection dropped).
    async fn popped(&mut self, done: Result<Popped, tokio::task::JoinError>) -> Result<Option<Fetched>, Error> {
        self.pending = None;
        match done {
            Ok((conn, Ok(popped))) => {
                self.conn = Some(conn);
                match popped {
                    Some(entry) if !entry.is_empty() => Ok(Some(self.queue.handed(&self.keys, &entry).await?)),
                    _ => Ok(None),
                }
            }
            Ok((_, Err(e))) => {
                // Refused for good (an ACL without BLPOP): never again on this
                // waiter; else (a connection lost) not before a while.
                let refused = e.code() == Some("NOPERM");
                let off = if refused { Duration::from_secs(365 * 24 * 3600) } else { Duration::from_secs(5) };
                self.off_until = Some(tokio::time::Instant::now() + off);
                tracing::warn!(queue = self.keys.queue(), error = %self.queue.inner.redactor.clean(&e.to_string()), parks_again_in = ?off, "waiting on the job inbox failed; waiting for wake-ups instead");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(queue = self.keys.queue(), error = %e, "waiting on the job inbox failed");
                Ok(None)
            }
        }
    }

    /// Unlists it and takes what was handed to it: its inbox, and what a
    /// `BLPOP` still on its way returns (ended by unpark's mark).
    async fn settle(&mut self) -> Result<Fetched, Error> {
        let blocked = self.pending.is_some();
        let mut out = self.queue.unpark(&self.keys, &self.id, blocked).await?;
        self.listed = false;
        if let Some(task) = self.pending.take() {
            if let Some(handed) = self.popped(task.await).await? {
                out.absorb(handed);
            }
        }
        Ok(out)
    }
}

impl RedisWaiter {
    /// Starts the subscriber task on the current Tokio runtime.
    pub(crate) fn start(queue: &RedisQueue, channels: Vec<String>) -> Result<Self, Error> {
        Self::start_pinging(queue, channels, PING_EVERY, Arc::default())
    }

    /// A waiter of the jobs of the queue of `keys` alone, which parks its
    /// fetches (see the module's "One hop").
    pub(crate) fn parking(queue: &RedisQueue, keys: QueueKeys) -> Result<Self, Error> {
        let mut w = Self::start(queue, vec![keys.wake()])?;
        w.park = Some(Parking {
            queue: queue.clone(),
            keys,
            id: ulid::Ulid::new().to_string(),
            conn: None,
            pending: None,
            listed: false,
            off_until: None,
        });
        Ok(w)
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
        Ok(RedisWaiter { rx, task: handle.spawn(sub.run()), subscribed: false, park: None })
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

    /// Parks: fetches `req` and, finding nothing, blocks on the inbox (see
    /// the module's "One hop"). Only waits for a request of another queue
    /// than its own, before the subscription is in place, and after a
    /// `BLPOP` failed: for good when refused (an ACL user without it), 5 s
    /// after a lost connection.
    fn wait_fetch<'a>(
        &'a mut self,
        req: &'a FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Fetched>, Error>> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let ours = self.park.as_ref().is_some_and(|p| {
                req.max > 0
                    && req.queues.len() == 1
                    && req.queues[0] == p.keys.queue()
                    && p.off_until.is_none_or(|t| now >= t)
            });
            if !self.subscribed || !ours {
                return self.wait(timeout).await.map(|()| None);
            }
            let RedisWaiter { rx, park, .. } = self;
            let Some(p) = park.as_mut() else { return Ok(None) };
            if p.listed {
                // A wait dropped half way that was not settled.
                let left = p.settle().await?;
                if !left.jobs.is_empty() {
                    return Ok(Some(left));
                }
            }
            // Wake-ups from here on count.
            rx.borrow_and_update();
            // A Cluster connection answers within command_timeout.
            let wait = timeout.min((p.queue.inner.command_timeout / 2).max(Duration::from_secs(1)));
            let (mut fetched, parked) = p.queue.fetch_or_park(&p.keys, req, &p.id, wait + PARK_SLACK).await?;
            if !parked {
                return Ok(Some(fetched));
            }
            p.listed = true;
            let wait = fetched.next_due.map_or(wait, |d| d.min(wait));
            if let Err(e) = p.block(wait).await {
                let left = p.settle().await?;
                fetched.absorb(left);
                tracing::warn!(error = %e, "cannot park: waiting for a wake-up instead");
                return Ok(Some(fetched));
            }
            let woken = tokio::select! {
                // Polled through the field: a wait dropped here leaves the
                // `BLPOP` to settle().
                done = async {
                    #[allow(clippy::expect_used)] // block() just set it.
                    p.pending.as_mut().expect("set by block()").await
                } => Some(done),
                _ = rx.changed() => None,
            };
            match woken {
                Some(done) => match p.popped(done).await? {
                    // Handed over: the listing went with it.
                    Some(handed) => {
                        p.listed = false;
                        fetched.absorb(handed);
                    }
                    None => fetched.absorb(p.settle().await?),
                },
                None => fetched.absorb(p.settle().await?),
            }
            Ok(Some(fetched))
        })
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<Fetched, Error>> {
        Box::pin(async move {
            match self.park.as_mut() {
                Some(p) if p.listed => p.settle().await,
                _ => Ok(Fetched::default()),
            }
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
