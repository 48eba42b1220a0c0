//! What happens to jobs: the events a backend records while someone
//! listens, as data (what readers, [`EventStream`](crate::EventStream), and
//! typed waits, [`JobHandle`](crate::JobHandle), are built on).
//!
//! A backend records a queue's events only while a listener keeps them on
//! ([`QueueEvents::listen`](crate::QueueEvents::listen), refreshed by every
//! reader): with no one listening, the hot path writes nothing more than it
//! did. The history is bounded per queue (a capped stream on Redis, a ring
//! in [`MemoryQueue`](crate::MemoryQueue)); a reader resumes from the last
//! cursor it saw, and is told when events it had not read were dropped.
//! Following them is `crate::follow`'s.

mod hub;

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use smol_str::{SmolStr, SmolStrBuilder};

use crate::vocab::JobId;

pub use hub::EventHub;
pub(crate) use hub::Terminal;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EventKind {
    /// Stored (pending, delayed or scheduled), or put back from the
    /// dead-letter set.
    Enqueued,
    /// A worker took it: an attempt starts.
    Started,
    /// The running job reported progress.
    Progress,
    /// An attempt failed; it runs again later.
    Retrying,
    /// It succeeded (final).
    Succeeded,
    /// It failed for good and is in the dead-letter set (final until an
    /// operator retries it).
    Dead,
    /// It was cancelled (final).
    Cancelled,
    /// It was not started before its expiry (final).
    Expired,
}

impl EventKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Enqueued,
        EventKind::Started,
        EventKind::Progress,
        EventKind::Retrying,
        EventKind::Succeeded,
        EventKind::Dead,
        EventKind::Cancelled,
        EventKind::Expired,
    ];

    /// Lowercase name (as stored and as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Enqueued => "enqueued",
            EventKind::Started => "started",
            EventKind::Progress => "progress",
            EventKind::Retrying => "retrying",
            EventKind::Succeeded => "succeeded",
            EventKind::Dead => "dead",
            EventKind::Cancelled => "cancelled",
            EventKind::Expired => "expired",
        }
    }

    /// Whether the job's run ends with it (a wait returns).
    pub const fn is_final(self) -> bool {
        matches!(self, EventKind::Succeeded | EventKind::Dead | EventKind::Cancelled | EventKind::Expired)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths and alignment (`{:<9}`) apply.
        f.pad(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown event kind `{s}`: expected one of {}", all.join(", "))
        })
    }
}

/// Where a reader is in a queue's events: the position of the last event it
/// saw. Opaque; ordered within one queue and one backend.
///
/// Its text is kept inline when short (as a backend's positions are), so a
/// reader following a busy queue does not allocate one per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventCursor(SmolStr);

impl EventCursor {
    /// Before every event the backend still holds.
    pub fn start() -> Self {
        EventCursor(SmolStr::new_static("0"))
    }

    /// A cursor from a backend's own position text.
    pub fn from_backend(pos: impl Into<String>) -> Self {
        EventCursor(SmolStr::from(pos.into()))
    }

    /// A cursor whose text is `pieces` joined, built without allocating
    /// when it is short: what a backend calls once per event.
    ///
    /// ```
    /// use jobs_core::EventCursor;
    /// assert_eq!(EventCursor::from_pieces(&["1733320000000-0", ".", "17"]).as_str(), "1733320000000-0.17");
    /// ```
    pub fn from_pieces(pieces: &[&str]) -> Self {
        let mut text = SmolStrBuilder::new();
        for piece in pieces {
            text.push_str(piece);
        }
        EventCursor(text.finish())
    }

    /// The backend's position text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EventCursor {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventCursor(SmolStr::new(s)))
    }
}

/// One event of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Its position: resume after it with [`QueueEvents::read_events`](crate::QueueEvents::read_events).
    pub cursor: EventCursor,
    /// What happened.
    pub kind: EventKind,
    /// The job.
    pub job: JobId,
    /// The job's name.
    pub name: String,
    /// The attempt it concerns (0 before the first).
    pub attempt: u32,
    /// When, on the backend's clock (millisecond precision).
    pub at: SystemTime,
    /// The error of a failed attempt (`retrying`, `dead`), or a progress
    /// note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fraction done (0.0 to 1.0) of a `progress` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f32>,
}

/// A page of events from [`QueueEvents::read_events`](crate::QueueEvents::read_events).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventPage {
    /// The events after the cursor, oldest first.
    pub events: Vec<JobEvent>,
    /// Events after the cursor were dropped from the bounded history before
    /// they were read: the reader missed some.
    pub missed: bool,
}

/// Which events an [`EventStream`](crate::EventStream) yields: one queue's, optionally only
/// some job names, job ids or kinds.
///
/// ```
/// use jobs_core::{EventFilter, EventKind};
/// let f = EventFilter::queue("email").name("send_welcome").kinds([EventKind::Succeeded, EventKind::Dead]);
/// # let _ = f;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub(crate) queue: String,
    pub(crate) names: Vec<String>,
    pub(crate) jobs: Vec<JobId>,
    pub(crate) kinds: Vec<EventKind>,
}

impl EventFilter {
    /// Every event of `queue`.
    pub fn queue(queue: &str) -> Self {
        EventFilter { queue: queue.to_owned(), names: Vec::new(), jobs: Vec::new(), kinds: Vec::new() }
    }

    /// Only jobs of this name (may be given several times: any of them).
    pub fn name(mut self, name: &str) -> Self {
        self.names.push(name.to_owned());
        self
    }

    /// Only this job (may be given several times: any of them). Its queue
    /// must be the filter's.
    pub fn job(mut self, id: &JobId) -> Self {
        self.jobs.push(id.clone());
        self
    }

    /// Only these kinds.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = EventKind>) -> Self {
        self.kinds.extend(kinds);
        self
    }

    /// The queue it reads.
    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &JobEvent) -> bool {
        (self.names.is_empty() || self.names.contains(&e.name))
            && (self.jobs.is_empty() || self.jobs.contains(&e.job))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
    }
}

/// What [`QueueEvents::listen`](crate::QueueEvents::listen) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The newest event the backend holds for the queue (or
    /// [`EventCursor::start`] when none): what is recorded from now on comes
    /// after it.
    pub cursor: EventCursor,
    /// Whether recording was on already (some listener kept it alive). When
    /// `false`, events of the time before were not recorded: a reader that
    /// had been following the queue may have missed some.
    pub was_on: bool,
}

/// The detail of the `enqueued` event of a dead job put back by an operator.
pub const RETRIED_DEAD: &str = "retried from the dead-letter set";

/// How many events a backend keeps per queue by default.
pub const DEFAULT_EVENT_HISTORY: usize = 10_000;
