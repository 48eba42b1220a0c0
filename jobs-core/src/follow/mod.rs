//! Following a queue's events: the per-queue follower that result waits
//! share (over an [`EventHub`]), and [`EventStream`] for readers.
//!
//! However many [`JobHandle::wait`](crate::JobHandle::wait)s run, one
//! follower per queue and backend reads the queue's events once and tells
//! the waits whose job reached a final state. A wait registers *before* it
//! reads its job, and registration returns once recording is on, so an end
//! between the two is never lost. When the follower may have missed events
//! (the history dropped unread events, recording lapsed, the backend
//! failed) every wait is told to read its job again.

mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::Error;
use crate::events::{EventCursor, EventHub, Terminal};
use crate::queue::QueueEvents;
use crate::vocab::JobId;

pub use stream::EventStream;

/// How long recording stays on after the follower's last `listen`.
const LISTEN_TTL: Duration = Duration::from_secs(60);
/// How often the follower renews it (well within the TTL).
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Events read per call.
const PAGE: usize = 1000;
/// The longest an idle follower waits before it checks whether any wait is
/// left (and whether to renew).
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Registers a wait for `id`'s final event, starting the queue's follower
/// over `src` when none runs, and returns once recording is on: every final
/// event of `id` from then on reaches the receiver.
pub(crate) async fn register(
    hub: &EventHub,
    src: &Arc<dyn QueueEvents>,
    id: &JobId,
) -> Result<oneshot::Receiver<Terminal>, Error> {
    let (rx, mut live, start) = hub.add_wait(id);
    if start {
        tokio::spawn(follow(hub.clone(), src.clone(), id.queue().to_owned()));
    }
    // The hub keeps the sender as long as the queue has an entry.
    let _ = live.wait_for(|on| *on).await;
    Ok(rx)
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
