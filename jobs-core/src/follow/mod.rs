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
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::Error;
use crate::events::{EventFilter, EventHub, EventKind, Terminal};
use crate::queue::QueueEvents;
use crate::vocab::JobId;

pub use stream::EventStream;

/// The longest an idle follower waits before it checks whether any wait is
/// left.
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

/// The follower of one queue: an [`EventStream`] of the queue's final
/// events, delivered to their waits, until no wait is left. When the stream
/// reports missed events the waits read their jobs again; when it fails,
/// they do too, and the follower opens a new stream once the backend
/// answers (the waits that register meanwhile wait for it).
async fn follow(hub: EventHub, src: Arc<dyn QueueEvents>, queue: String) {
    let finals = EventFilter::queue(&queue).kinds(EventKind::ALL.into_iter().filter(|k| k.is_final()));
    let mut backoff = Duration::from_millis(100);
    while !hub.done(&queue) {
        let mut stream = match EventStream::open_shared(src.clone(), finals.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "following job events failed; waits look again");
                hub.recheck_all(&queue);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        hub.set_live(&queue, true);
        loop {
            match tokio::time::timeout(IDLE_WAIT, stream.next()).await {
                // Idle: stop once no wait is left.
                Err(_) if hub.done(&queue) => return,
                Err(_) => {}
                Ok(Some(Ok(e))) => hub.deliver(&queue, vec![(e.job, e.kind)]),
                Ok(Some(Err(Error::EventsMissed { .. }))) => hub.recheck_all(&queue),
                Ok(Some(Err(e))) => {
                    tracing::warn!(queue = %queue, error = %e, "following job events failed; waits look again");
                    hub.set_live(&queue, false);
                    hub.recheck_all(&queue);
                    break;
                }
                Ok(None) => break,
            }
        }
    }
}
