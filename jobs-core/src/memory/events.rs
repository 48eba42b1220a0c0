//! [`MemoryQueue`]'s job events: a bounded ring per queue, recorded while a
//! listener keeps it on, with a watch channel that wakes its readers.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::{MemoryQueue, MemoryWaiter};
use crate::error::Error;
use crate::events::{EventCursor, EventHub, EventKind, EventPage, JobEvent, Listening};
use crate::queue::{BoxFuture, QueueEvents, Waiter};
use crate::vocab::JobId;

/// The events of every queue, by queue name.
pub(super) type EventLogs = HashMap<String, EventLog>;

/// One queue's events.
pub(super) struct EventLog {
    /// Oldest first; the first has sequence number `dropped + 1`.
    entries: VecDeque<JobEvent>,
    /// How many events were dropped from the front (the highest sequence
    /// number gone).
    dropped: u64,
    /// Recording is on until then.
    on_until: Option<Instant>,
    wake: watch::Sender<u64>,
}

impl EventLog {
    fn new() -> Self {
        EventLog { entries: VecDeque::new(), dropped: 0, on_until: None, wake: watch::channel(0).0 }
    }

    fn last_seq(&self) -> u64 {
        self.dropped + self.entries.len() as u64
    }
}

/// Records an event of job `id` when its queue is listened to.
#[allow(clippy::too_many_arguments)] // One event's fields, each named at every call.
pub(super) fn emit(
    logs: &mut EventLogs,
    cap: usize,
    now: SystemTime,
    kind: EventKind,
    id: &JobId,
    name: &str,
    attempt: u32,
    detail: Option<&str>,
) {
    push(logs, cap, now, kind, id, name, attempt, detail, None);
}

/// Records a `progress` event of job `id` when its queue is listened to:
/// the fraction, and the note as its detail (none when empty).
#[allow(clippy::too_many_arguments)] // One event's fields, each named at every call.
pub(super) fn emit_progress(
    logs: &mut EventLogs,
    cap: usize,
    now: SystemTime,
    id: &JobId,
    name: &str,
    attempt: u32,
    fraction: f32,
    note: &str,
) {
    let note = Some(note).filter(|n| !n.is_empty());
    push(logs, cap, now, EventKind::Progress, id, name, attempt, note, Some(fraction));
}

#[allow(clippy::too_many_arguments)] // One event's fields, each named at every call.
fn push(
    logs: &mut EventLogs,
    cap: usize,
    now: SystemTime,
    kind: EventKind,
    id: &JobId,
    name: &str,
    attempt: u32,
    detail: Option<&str>,
    progress: Option<f32>,
) {
    let Some(log) = logs.get_mut(id.queue()) else { return };
    if log.on_until.is_none_or(|t| t <= Instant::now()) {
        return;
    }
    let seq = log.last_seq() + 1;
    log.entries.push_back(JobEvent {
        cursor: EventCursor::from_backend(seq.to_string()),
        kind,
        job: id.clone(),
        name: name.to_owned(),
        attempt,
        at: now,
        detail: detail.map(str::to_owned),
        progress,
    });
    while log.entries.len() > cap.max(1) {
        log.entries.pop_front();
        log.dropped += 1;
    }
    log.wake.send_modify(|v| *v = v.wrapping_add(1));
}

impl MemoryQueue {
    /// Keeps at most `events` job events per queue (default
    /// [`DEFAULT_EVENT_HISTORY`](crate::backend::DEFAULT_EVENT_HISTORY)),
    /// for every handle on this store.
    pub fn set_event_history(&self, events: usize) {
        self.shared.event_history.store(events, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn event_history(&self) -> usize {
        self.shared.event_history.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl QueueEvents for MemoryQueue {
    fn listen<'a>(&'a self, queue: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Listening, Error>> {
        let r = crate::parse::validate_queue_name(queue).map(|()| {
            let mut st = self.lock();
            let log = st.events.entry(queue.to_owned()).or_insert_with(EventLog::new);
            let now = Instant::now();
            let was_on = log.on_until.is_some_and(|t| t > now);
            log.on_until = Some(log.on_until.filter(|t| *t > now + ttl).unwrap_or(now + ttl));
            Listening { cursor: EventCursor::from_backend(log.last_seq().to_string()), was_on }
        });
        Box::pin(async move { r })
    }

    fn read_events<'a>(
        &'a self,
        queue: &'a str,
        after: &'a EventCursor,
        max: usize,
    ) -> BoxFuture<'a, Result<EventPage, Error>> {
        let r = after
            .as_str()
            .parse::<u64>()
            .map_err(|_| Error::InvalidArgument(format!("`{after}` is not an event cursor of this MemoryQueue")))
            .map(|after| {
                let st = self.lock();
                let Some(log) = st.events.get(queue) else { return EventPage::default() };
                let skip = after.saturating_sub(log.dropped);
                EventPage {
                    events: log
                        .entries
                        .iter()
                        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                        .take(max)
                        .cloned()
                        .collect(),
                    missed: after < log.dropped,
                }
            });
        Box::pin(async move { r })
    }

    fn event_waiter(&self, queue: &str) -> Result<Box<dyn Waiter>, Error> {
        crate::parse::validate_queue_name(queue)?;
        let mut st = self.lock();
        let log = st.events.entry(queue.to_owned()).or_insert_with(EventLog::new);
        Ok(Box::new(MemoryWaiter { rx: log.wake.subscribe() }))
    }

    fn event_hub(&self) -> &EventHub {
        &self.shared.hub
    }
}
