//! `read_events.lua`: a page of a queue's job events after a cursor.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use jobs_core::{EventCursor, EventKind, EventPage, JobEvent};
use redis::Value;

use super::progress::event_detail;
use super::{source, Args, ScriptCall};
use crate::decode::job_id;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "read_events";

/// The script.
pub(crate) static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| source(&[include_str!("read_events.lua")]));

/// Read up to `max` events of the queue of `keys` after `after`.
pub(crate) struct ReadEvents<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The cursor (a stream id).
    pub(crate) after: &'a EventCursor,
    /// The most events to return.
    pub(crate) max: usize,
}

/// One stream entry as XRANGE returns it.
type Entry = (String, Vec<(String, Vec<u8>)>);

impl ScriptCall for ReadEvents<'_> {
    type Reply = EventPage;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.after.as_str()).arg(self.max.max(1));
    }

    /// `{missed, entries}`; an entry whose kind this version does not know
    /// (written by a newer one) is skipped.
    fn decode(self, reply: Value) -> Result<EventPage, RedisQueueError> {
        let (missed, entries): (String, Vec<Entry>) =
            redis::from_redis_value(reply).map_err(|e| RedisQueueError::reply(OP, e.to_string()))?;
        let mut events = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice());
            let text = |name: &str| field(name).map(|v| String::from_utf8_lossy(v).into_owned());
            let Some(kind) = text("k").and_then(|k| k.parse::<EventKind>().ok()) else { continue };
            let ulid = field("j").ok_or_else(|| RedisQueueError::reply(OP, "an event without a job"))?;
            let ms: u64 = id.split('-').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            let (detail, progress) = event_detail(kind, text("d"));
            events.push(JobEvent {
                kind,
                job: job_id(OP, self.keys.queue(), ulid)?,
                name: text("n").unwrap_or_default(),
                attempt: text("a").and_then(|a| a.parse().ok()).unwrap_or(0),
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
                detail,
                progress,
                cursor: EventCursor::from_backend(id),
            });
        }
        Ok(EventPage { events, missed: missed == "1" })
    }
}
