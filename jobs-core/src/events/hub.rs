//! [`EventHub`]: the result waits of a backend, per queue, and the state of
//! each queue's follower (the follower itself is `crate::follow`).
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

use tokio::sync::{oneshot, watch};

use super::EventKind;
use crate::vocab::JobId;

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

    /// Adds a wait for `id`'s final event; `true` when the queue has no
    /// follower yet (the caller starts one: it is marked running). Returns
    /// the receiver and a watch of whether recording is on.
    pub(crate) fn add_wait(&self, id: &JobId) -> (oneshot::Receiver<Terminal>, watch::Receiver<bool>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut g = self.lock();
        let f = g.entry(id.queue().to_owned()).or_insert_with(|| Follower {
            waits: HashMap::new(),
            running: false,
            live: watch::channel(false).0,
        });
        f.waits.entry(id.clone()).or_default().push(tx);
        let start = !f.running;
        if start {
            f.running = true;
            f.live.send_replace(false);
        }
        (rx, f.live.subscribe(), start)
    }

    /// Tells every wait of `queue` to look again, and forgets closed ones.
    pub(crate) fn recheck_all(&self, queue: &str) {
        let mut g = self.lock();
        if let Some(f) = g.get_mut(queue) {
            for (_, waits) in f.waits.drain() {
                for w in waits {
                    let _ = w.send(Terminal::Recheck);
                }
            }
        }
    }

    pub(crate) fn set_live(&self, queue: &str, on: bool) {
        if let Some(f) = self.lock().get_mut(queue) {
            f.live.send_replace(on);
        }
    }

    /// Hands final events to their waits.
    pub(crate) fn deliver(&self, queue: &str, finals: Vec<(JobId, EventKind)>) {
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
    pub(crate) fn done(&self, queue: &str) -> bool {
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
