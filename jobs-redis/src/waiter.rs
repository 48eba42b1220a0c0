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
//! without a wake-up and a fetch. When its wait ends (timed by the waiter
//! itself, since Redis ends a `BLPOP` at its timeout only once its event
//! loop next wakes, up to 100 ms late on an idle server), or a message
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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jobs_core::backend::{BoxFuture, FetchRequest, Fetched, Waiter};
use jobs_core::Error;
use redis::Client;
use tokio::sync::{oneshot, watch};
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

/// The waiter of one fetch loop.
pub(crate) struct RedisWaiter {
    /// The handle it waits for (whose partition counts a wake-up may
    /// outdate).
    queue: RedisQueue,
    rx: watch::Receiver<u64>,
    task: JoinHandle<()>,
    /// Whether a wait has seen the subscription in place (the counter moves
    /// off 0 when it is).
    subscribed: bool,
    /// For a waiter of one queue: its parked fetches.
    park: Option<Parking>,
}

/// A waiter's parked fetches (see the module's "One hop").
struct Parking {
    queue: RedisQueue,
    keys: QueueKeys,
    /// Its id in the queue's `parked` set.
    id: String,
    /// Its connection for `BLPOP`, between waits (dropped after an error).
    conn: Option<BlockingConn>,
    /// The parked wait under way, kept here rather than in the caller's
    /// future, so that a wait dropped half way (the pool stopping) neither
    /// loses what it fetched or was handed nor leaves the waiter listed:
    /// `settle` ends it early (the sender) and polls it to its end. (Polled
    /// by the caller, not a task of its own: a task would add a task switch
    /// to the pickup of every job handed over.)
    running: Option<(ParkedFuture, oneshot::Sender<()>)>,
    /// Until when it does not park (a `BLPOP` failed): it waits for
    /// wake-ups instead, rather than park and fail again at once.
    off_until: Option<tokio::time::Instant>,
}

/// A parked wait on its way ([`ParkedWait::run`]).
type ParkedFuture = Pin<Box<dyn Future<Output = Parked> + Send>>;

/// A parked wait's end: its connection, when still good; what it fetched
/// or was handed; and, after a failed `BLPOP`, how long not to park.
struct Parked {
    conn: Option<BlockingConn>,
    fetched: Result<Fetched, Error>,
    off: Option<Duration>,
}

/// One parked wait (see the module's "One hop"): the fetch that parks, the
/// `BLPOP` until a hand-off, `wait`, a message on `wake` or `stop`, and the
/// unparking that takes what was handed meanwhile.
struct ParkedWait {
    queue: RedisQueue,
    keys: QueueKeys,
    id: String,
    req: FetchRequest,
    wait: Duration,
    conn: Option<BlockingConn>,
    wake: watch::Receiver<u64>,
    stop: oneshot::Receiver<()>,
}

impl ParkedWait {
    async fn run(mut self) -> Parked {
        let mut off = None;
        let fetched = self.fetch(&mut off).await;
        Parked { conn: self.conn.take(), fetched, off }
    }

    async fn fetch(&mut self, off: &mut Option<Duration>) -> Result<Fetched, Error> {
        let (mut fetched, parked) =
            self.queue.fetch_or_park(&self.keys, &self.req, &self.id, self.wait + PARK_SLACK).await?;
        if !parked {
            return Ok(fetched);
        }
        let wait = fetched.next_due.map_or(self.wait, |d| d.min(self.wait));
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => match self.queue.inner.blocking.open(self.queue.inner.connect_timeout).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(queue = self.keys.queue(), error = %self.queue.inner.redactor.clean(&e.to_string()), "cannot park: waiting for wake-ups instead");
                    *off = Some(PARK_AGAIN_IN);
                    fetched.absorb(self.queue.unpark(&self.keys, &self.id, false).await?);
                    return Ok(fetched);
                }
            },
        };
        let inbox = self.keys.inbox(&self.id);
        let limit = wait + self.queue.inner.command_timeout;
        // Whether it is unlisted already (woken or stopped).
        let mut unlisted = false;
        let popped = {
            let blpop = async {
                match tokio::time::timeout(limit, conn.blpop(&inbox, wait)).await {
                    Ok(r) => r,
                    Err(_) => Err(crate::conn::timed_out(limit)),
                }
            };
            tokio::pin!(blpop);
            let popped = tokio::select! {
                popped = &mut blpop => Some(popped),
                _ = self.wake.changed() => None,
                _ = &mut self.stop => None,
                // The due time, on this side: Redis ends a BLPOP at its
                // timeout only once its event loop wakes, which on an idle
                // server is its next cron tick (every 100 ms at the default
                // `hz`), so a job due meanwhile would start up to that late.
                () = tokio::time::sleep(wait) => None,
            };
            match popped {
                Some(p) => p,
                None => {
                    // Unlisted first; then the BLPOP ends at once, on unpark's
                    // mark or on a hand-off that was already on its way.
                    fetched.absorb(self.queue.unpark(&self.keys, &self.id, true).await?);
                    unlisted = true;
                    blpop.await
                }
            }
        };
        match popped {
            // Handed over: the listing went with it.
            Ok(Some(entry)) if !entry.is_empty() => {
                self.conn = Some(conn);
                fetched.absorb(self.queue.handed(&self.keys, &entry).await?);
                return Ok(fetched);
            }
            Ok(_) => self.conn = Some(conn),
            Err(e) => {
                // Refused for good (an ACL without BLPOP): never again on this
                // waiter; else (a connection lost) not for a while.
                let refused = e.code() == Some("NOPERM");
                let pause = if refused { Duration::from_secs(365 * 24 * 3600) } else { PARK_AGAIN_IN };
                *off = Some(pause);
                tracing::warn!(queue = self.keys.queue(), error = %self.queue.inner.redactor.clean(&e.to_string()), parks_again_in = ?pause, "waiting on the job inbox failed; waiting for wake-ups instead");
            }
        }
        // Timed out or failed: unlisted, with what was handed meanwhile
        // (woken, stopped or due, that was done above).
        if !unlisted {
            fetched.absorb(self.queue.unpark(&self.keys, &self.id, false).await?);
        }
        Ok(fetched)
    }
}

/// How long a waiter whose `BLPOP` failed (a lost connection) waits for
/// wake-ups before it parks again.
const PARK_AGAIN_IN: Duration = Duration::from_secs(5);

impl Parking {
    /// The parked wait under way, if any, ended at once and its answer
    /// taken (nothing when none was under way).
    async fn stop(&mut self) -> Result<Fetched, Error> {
        let Some((wait, stopper)) = self.running.take() else { return Ok(Fetched::default()) };
        let _ = stopper.send(());
        self.take(wait.await)
    }

    /// A parked wait's answer: its connection kept, its pause noted, what it
    /// fetched returned.
    fn take(&mut self, parked: Parked) -> Result<Fetched, Error> {
        self.conn = parked.conn;
        if let Some(off) = parked.off {
            self.off_until = Some(tokio::time::Instant::now() + off);
        }
        parked.fetched
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
            running: None,
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
            partitions: Arc::clone(&queue.inner.partitions),
        };
        Ok(RedisWaiter { queue: queue.clone(), rx, task: handle.spawn(sub.run()), subscribed: false, park: None })
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
            // Woken by a partition this handle does not know: the caller's
            // fetch must see it.
            self.queue.reread_if_outdated().await;
            Ok(())
        })
    }

    /// Parks: fetches `req` and, finding nothing, blocks on the inbox (see
    /// the module's "One hop"); the wait is kept in the waiter and polled
    /// by the caller (see `Parking::running`). Only waits for a
    /// request of another queue than its own, before the subscription is in
    /// place, and after a `BLPOP` failed: for good when refused (an ACL
    /// user without it), 5 s after a lost connection.
    fn wait_fetch<'a>(
        &'a mut self,
        req: &'a FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Fetched>, Error>> {
        Box::pin(async move {
            if self.park.as_ref().is_some_and(|p| p.running.is_none()) {
                self.queue.reread_if_outdated().await;
                let partitioned = |p: &Parking| self.queue.inner.partitions.known(p.keys.queue()) > 1;
                if self.park.as_ref().is_some_and(partitioned) {
                    // Partitioned since: one inbox cannot span the
                    // partitions' slots, so the waiter only listens from now
                    // on (counts never go down), and the caller's fetches
                    // visit the partitions in turn.
                    self.park = None;
                    return Ok(None);
                }
            }
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
            if p.running.is_none() {
                // Wake-ups from here on count.
                rx.borrow_and_update();
                let (stop, stopped) = oneshot::channel();
                let wait = ParkedWait {
                    queue: p.queue.clone(),
                    keys: p.keys.clone(),
                    id: p.id.clone(),
                    req: req.clone(),
                    // A Cluster connection answers within command_timeout.
                    wait: timeout.min((p.queue.inner.command_timeout / 2).max(Duration::from_secs(1))),
                    conn: p.conn.take(),
                    wake: rx.clone(),
                    stop: stopped,
                };
                p.running = Some((Box::pin(wait.run()), stop));
            }
            // Awaited through the field: a wait dropped here leaves its
            // answer to the next wait or to settle().
            let Some((wait, _)) = p.running.as_mut() else { return Ok(None) };
            let done = wait.as_mut().await;
            p.running = None;
            p.take(done).map(Some)
        })
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<Fetched, Error>> {
        Box::pin(async move {
            match self.park.as_mut() {
                Some(p) => p.stop().await,
                None => Ok(Fetched::default()),
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
    /// Told of each wake-up's partition.
    partitions: Arc<crate::partitions::Partitions>,
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
                    Some(msg) => {
                        if let Some(p) = std::str::from_utf8(msg.get_payload_bytes()).ok().and_then(|t| t.parse().ok()) {
                            self.partitions.heard(msg.get_channel_name(), p);
                        }
                        self.wake();
                    }
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
