//! [`EventStream`]: a queue's events as they happen, without polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::events::{EventCursor, EventFilter, JobEvent};
use crate::queue::QueueEvents;

/// How long recording stays on after a stream's last renewal.
const LISTEN_TTL: Duration = Duration::from_secs(60);
/// How often a stream renews it.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Events read per call.
const PAGE: usize = 500;
/// The least time between the starts of two reads while events keep
/// coming: each step of the backend that records events wakes the readers,
/// and a busy queue makes thousands a second. A reader woken less than this
/// after a read that found events waits out the rest before it reads
/// again, and so takes the events of several steps in one round trip; a
/// read after a quiet spell is not held back.
const READ_GAP: Duration = Duration::from_millis(1);
/// Pages buffered between the reader task and the stream's owner (each of
/// at most [`PAGE`] events): a slow owner holds the reader back (it resumes
/// from its cursor), nothing is dropped on the way. Pages, not events, cross
/// the channel: a busy queue makes hundreds of thousands of events a
/// second, and a channel's send and receive cost more than the decoding of
/// an event.
const BUFFER: usize = 4;

/// What the reader task hands the stream's owner: a page of events that
/// passed the filter, or an error.
type Item = Result<Vec<JobEvent>, Error>;

/// A queue's events, filtered, as they are recorded: from
/// [`EventStream::open`] (events after now) or [`EventStream::resume`]
/// (events after a cursor an earlier stream handed out).
///
/// A task reads the backend and waits on its event waiter, never polling.
/// A failed read is yielded as an error and retried with back-off from the
/// last event yielded, so a short disconnect loses nothing the backend's
/// history still holds; when the history dropped events this stream had not
/// read yet, or recording lapsed while the backend was away, it yields
/// [`Error::EventsMissed`] once and goes on. Dropping the stream stops its
/// task.
///
/// ```
/// # use jobs_core::prelude::*;
/// # use jobs_core::{EventFilter, EventKind, EventStream};
/// # #[job(crate = jobs_core)]
/// # async fn ping(host: String) -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
/// let queue = MemoryQueue::new();
/// let mut events = EventStream::open(&queue, EventFilter::queue("default")).await?;
/// let id = Ping { host: "example.org".into() }.enqueue(&queue).await?;
/// let e = events.next().await.expect("a stream never ends")?;
/// assert_eq!((e.kind, &e.job), (EventKind::Enqueued, &id));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Item>,
    /// The rest of the page received last.
    page: std::vec::IntoIter<JobEvent>,
    task: JoinHandle<()>,
}

impl EventStream {
    /// Follows `filter`'s queue from now on: every event recorded after this
    /// returns.
    pub async fn open<Q: QueueEvents + Clone>(queue: &Q, filter: EventFilter) -> Result<Self, Error> {
        Self::open_shared(Arc::new(queue.clone()), filter).await
    }

    /// [`EventStream::open`] over a shared handle.
    pub(crate) async fn open_shared(src: Arc<dyn QueueEvents>, filter: EventFilter) -> Result<Self, Error> {
        let l = src.listen(&filter.queue, LISTEN_TTL).await?;
        Ok(Self::start(src, filter, l.cursor, false))
    }

    /// Follows `filter`'s queue from just after `after` (the
    /// [`cursor`](JobEvent::cursor) of the last event a reader handled), so
    /// that a reader that went away picks up where it stopped.
    pub async fn resume<Q: QueueEvents + Clone>(
        queue: &Q,
        filter: EventFilter,
        after: EventCursor,
    ) -> Result<Self, Error> {
        let src: Arc<dyn QueueEvents> = Arc::new(queue.clone());
        let l = src.listen(&filter.queue, LISTEN_TTL).await?;
        // When recording was off, what happened since `after` was not
        // recorded: the first item says so.
        Ok(Self::start(src, filter, after, !l.was_on))
    }

    /// The next event (or error); never `None` while the stream lives.
    pub async fn next(&mut self) -> Option<Result<JobEvent, Error>> {
        loop {
            if let Some(e) = self.page.next() {
                return Some(Ok(e));
            }
            match self.rx.recv().await? {
                Ok(page) => self.page = page.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn start(src: Arc<dyn QueueEvents>, filter: EventFilter, after: EventCursor, missed_first: bool) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = tokio::spawn(read_loop(src, filter, after, missed_first, tx));
        EventStream { rx, page: Vec::new().into_iter(), task }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_loop(
    src: Arc<dyn QueueEvents>,
    filter: EventFilter,
    mut cursor: EventCursor,
    missed_first: bool,
    tx: mpsc::Sender<Item>,
) {
    let queue = filter.queue.clone();
    if missed_first {
        missed(&tx, &queue).await;
    }
    let mut waiter = None;
    let mut renewed = Instant::now();
    let mut backoff = Duration::from_millis(100);
    // When the last read that found events started.
    let mut last_found: Option<tokio::time::Instant> = None;
    loop {
        let step = async {
            let w = match &mut waiter {
                Some(w) => w,
                None => waiter.insert(src.event_waiter(&queue)?),
            };
            if renewed.elapsed() >= RENEW_EVERY {
                let l = src.listen(&queue, LISTEN_TTL).await?;
                renewed = Instant::now();
                if !l.was_on {
                    missed(&tx, &queue).await;
                }
            }
            if let Some(at) = last_found {
                if at + READ_GAP > tokio::time::Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at + READ_GAP) => {}
                        _ = tx.closed() => return Ok(false),
                    }
                }
            }
            w.arm();
            let read_at = tokio::time::Instant::now();
            let page = src.read_events(&queue, &cursor, PAGE).await?;
            if page.missed {
                missed(&tx, &queue).await;
            }
            let more = page.events.len() == PAGE;
            // Resumes after the page's last event, passed on or filtered out
            // (the stream ends if its owner is gone).
            let last = page.events.last().map(|e| e.cursor.clone());
            let found = last.is_some();
            let mut events = page.events;
            events.retain(|e| filter.matches(e));
            if !events.is_empty() && tx.send(Ok(events)).await.is_err() {
                return Ok(false);
            }
            if let Some(last) = last {
                cursor = last;
            }
            // A full page: more to read at once, not held back.
            last_found = (found && !more).then_some(read_at);
            if !more {
                tokio::select! {
                    r = w.wait(RENEW_EVERY.saturating_sub(renewed.elapsed())) => r?,
                    _ = tx.closed() => return Ok(false),
                }
            }
            Ok::<bool, Error>(true)
        };
        match step.await {
            Ok(true) => backoff = Duration::from_millis(100),
            Ok(false) => return,
            Err(e) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                waiter = None;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tx.closed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                // Renew at once: recording may have lapsed while away.
                renewed = Instant::now() - RENEW_EVERY;
            }
        }
    }
}

async fn missed(tx: &mpsc::Sender<Item>, queue: &str) {
    let _ = tx.send(Err(Error::EventsMissed { queue: queue.to_owned() })).await;
}
