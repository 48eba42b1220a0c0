//! [`EventHub`]: one follower per queue for every result wait of a backend.
//!
//! Ten thousand [`JobHandle::wait`](crate::JobHandle::wait)s must not read
//! the queue's events ten thousand times. A wait registers its job id here;
//! the queue's follower (one task, started by the first registration and
//! ended once no wait is left) reads every event once and tells the waits
//! whose job reached a final state. A wait that registered is told of every
//! final event recorded after its registration took effect, or told to look
//! again ([`Terminal::Recheck`]) when the follower may have missed some
//! (the history dropped unread events, recording lapsed, the backend failed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::{EventCursor, EventKind};
use crate::error::Error;
use crate::queue::QueueEvents;
use crate::vocab::JobId;

/// How long recording stays on after the follower's last `listen`.
const LISTEN_TTL: Duration = Duration::from_secs(60);
/// How often the follower renews it (well within the TTL).
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Events read per call.
const PAGE: usize = 1000;
/// The longest an idle follower waits before it checks whether any wait is
/// left (and whether to renew).
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// What a registered wait is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Terminal {
    /// Its job reached this final state.
    Final(EventKind),
    /// Events may have been missed: read the job again.
    Recheck,
}

/// The result-wait followers of one backend (see the module docs). A backend
/// holds one and returns it from
/// [`QueueEvents::event_hub`](crate::QueueEvents::event_hub).
#[derive(Default, Clone)]
pub struct EventHub {
    queues: Arc<Mutex<HashMap<String, Follower>>>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").field("queues", &self.lock().len()).finish()
    }
}

/// One queue's waits and the state of its follower task.
struct Follower {
    waits: HashMap<JobId, Vec<oneshot::Sender<Terminal>>>,
    running: bool,
    /// `true` while recording is known to be on for the follower.
    live: watch::Sender<bool>,
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Follower>> {
        // Every change under this lock completes before anything that could
        // panic: a poisoned lock still holds consistent maps.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a wait for `id`'s final event, starting the queue's
    /// follower over `src` when none runs, and returns once recording is on:
    /// every final event of `id` from then on reaches the receiver.
    pub(crate) async fn register(
        &self,
        src: &Arc<dyn QueueEvents>,
        id: &JobId,
    ) -> Result<oneshot::Receiver<Terminal>, Error> {
        let (tx, rx) = oneshot::channel();
        let mut live = {
            let mut g = self.lock();
            let f = g.entry(id.queue().to_owned()).or_insert_with(|| Follower {
                waits: HashMap::new(),
                running: false,
                live: watch::channel(false).0,
            });
            f.waits.entry(id.clone()).or_default().push(tx);
            if !f.running {
                f.running = true;
                f.live.send_replace(false);
                tokio::spawn(follow(self.clone(), src.clone(), id.queue().to_owned()));
            }
            f.live.subscribe()
        };
        // The follower never drops its sender while waits are registered.
        let _ = live.wait_for(|on| *on).await;
        Ok(rx)
    }

    /// Tells every wait of `queue` to look again, and forgets closed ones.
    fn recheck_all(&self, queue: &str) {
        let mut g = self.lock();
        if let Some(f) = g.get_mut(queue) {
            for (_, waits) in f.waits.drain() {
                for w in waits {
                    let _ = w.send(Terminal::Recheck);
                }
            }
        }
    }

    fn set_live(&self, queue: &str, on: bool) {
        if let Some(f) = self.lock().get_mut(queue) {
            f.live.send_replace(on);
        }
    }

    /// Hands final events to their waits.
    fn deliver(&self, queue: &str, finals: Vec<(JobId, EventKind)>) {
        if finals.is_empty() {
            return;
        }
        let mut g = self.lock();
        let Some(f) = g.get_mut(queue) else { return };
        for (id, kind) in finals {
            for w in f.waits.remove(&id).into_iter().flatten() {
                let _ = w.send(Terminal::Final(kind));
            }
        }
    }

    /// Whether the follower of `queue` should stop: no wait left (closed
    /// ones dropped). Marks it stopped under the same lock a registration
    /// takes, so a new wait starts a new follower.
    fn done(&self, queue: &str) -> bool {
        let mut g = self.lock();
        let Some(f) = g.get_mut(queue) else { return true };
        f.waits.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
        if f.waits.is_empty() {
            f.running = false;
            f.live.send_replace(false);
            true
        } else {
            false
        }
    }
}

/// The follower of one queue: keeps recording on, reads every event once,
/// and delivers final ones, until no wait is left.
async fn follow(hub: EventHub, src: Arc<dyn QueueEvents>, queue: String) {
    let mut backoff = Duration::from_millis(100);
    let mut waiter = None;
    let mut cursor: Option<EventCursor> = None;
    let mut renewed = Instant::now();
    loop {
        if hub.done(&queue) {
            return;
        }
        let step = async {
            let w = match &mut waiter {
                Some(w) => w,
                None => waiter.insert(src.event_waiter(&queue)?),
            };
            let at = match &cursor {
                Some(c) if renewed.elapsed() < RENEW_EVERY => c.clone(),
                _ => {
                    let l = src.listen(&queue, LISTEN_TTL).await?;
                    renewed = Instant::now();
                    match &cursor {
                        Some(c) if l.was_on => c.clone(),
                        // Recording had lapsed: what happened meanwhile was
                        // not recorded, so every wait reads its job again.
                        Some(_) => {
                            hub.recheck_all(&queue);
                            cursor = Some(l.cursor.clone());
                            l.cursor
                        }
                        // Starting: the waits registered so far read their
                        // job once this returns, after recording is on.
                        None => {
                            hub.set_live(&queue, true);
                            cursor = Some(l.cursor.clone());
                            l.cursor
                        }
                    }
                }
            };
            w.arm();
            let page = src.read_events(&queue, &at, PAGE).await?;
            if page.missed {
                hub.recheck_all(&queue);
            }
            let more = page.events.len() == PAGE;
            if let Some(last) = page.events.last() {
                cursor = Some(last.cursor.clone());
            }
            hub.deliver(
                &queue,
                page.events.into_iter().filter(|e| e.kind.is_final()).map(|e| (e.job, e.kind)).collect(),
            );
            if !more {
                w.wait(IDLE_WAIT.min(RENEW_EVERY.saturating_sub(renewed.elapsed()))).await?;
            }
            Ok::<(), Error>(())
        };
        match step.await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "following job events failed; waits look again");
                hub.set_live(&queue, false);
                hub.recheck_all(&queue);
                waiter = None;
                cursor = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
