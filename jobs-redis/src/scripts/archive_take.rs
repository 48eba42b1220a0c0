//! `archive_take.lua`: the oldest entries of one queue's archive backlog
//! (the `archive` stream the retention appends to, see `archive()` in
//! common.lua), for the archiver that holds the queue or takes it now.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Value;

use super::read::StoredJob;
use super::{array, bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::{dur_ms, num};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "archive_take";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("archive_take"));

/// Read up to `max` entries for `holder`, taking or renewing its lease.
pub(crate) struct Take<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The archiver's name.
    pub(crate) holder: &'a str,
    /// Its lease.
    pub(crate) lease: Duration,
    /// The most entries to read.
    pub(crate) max: usize,
}

/// One backlog entry as stored.
pub(crate) struct Entry {
    /// Its position.
    pub(crate) seq: u64,
    /// The backlog's name.
    pub(crate) backlog: String,
    /// When it was archived (ms, server clock).
    pub(crate) at: u64,
    /// The job's ulid.
    pub(crate) ulid: Vec<u8>,
    /// The job's fields.
    pub(crate) job: StoredJob,
}

/// What archive_take.lua answered when the caller holds the queue.
pub(crate) struct Taken {
    /// Whether the lease was taken (not renewed).
    pub(crate) taken: bool,
    /// The backlog's length.
    pub(crate) backlog: u64,
    /// The oldest entries.
    pub(crate) entries: Vec<Entry>,
}

impl ScriptCall for Take<'_> {
    /// `None`: another archiver holds the queue.
    type Reply = Option<Taken>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.holder).arg(dur_ms(self.lease).max(1)).arg(self.max);
    }

    fn decode(self, reply: Value) -> Result<Option<Taken>, RedisQueueError> {
        if reply == Value::Nil {
            return Ok(None);
        }
        let mut items = array(OP, reply)?.into_iter();
        let (Some(taken), Some(backlog), Some(entries)) = (items.next(), items.next(), items.next()) else {
            return Err(RedisQueueError::reply(OP, "short answer"));
        };
        let entries = array(OP, entries)?.into_iter().map(entry).collect::<Result<_, _>>()?;
        Ok(Some(Taken { taken: num(OP, &bytes(OP, taken)?)? == 1, backlog: num(OP, &bytes(OP, backlog)?)?, entries }))
    }
}

/// One XRANGE entry: `{"<seq>-0", {field, value, ...}}`.
fn entry(v: Value) -> Result<Entry, RedisQueueError> {
    let mut parts = array(OP, v)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(RedisQueueError::reply(OP, "short entry"));
    };
    let id = bytes(OP, id)?;
    let seq = num(OP, id.split(|&b| b == b'-').next().unwrap_or_default())?;
    let mut e = Entry { seq, backlog: String::new(), at: 0, ulid: Vec::new(), job: StoredJob::default() };
    let mut fields = array(OP, fields)?.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let value = bytes(OP, value)?;
        let j = &mut e.job;
        match &bytes(OP, name)?[..] {
            b"id" => e.ulid = value,
            b"at" => e.at = num(OP, &value)?,
            b"b" => e.backlog = String::from_utf8_lossy(&value).into_owned(),
            b"r" => j.record = Some(value),
            b"s" => j.state = Some(value),
            b"l" => j.log = Some(value),
            b"o" => j.result = Some(value),
            b"n" => j.snoozes = Some(value),
            b"e" => j.expires = Some(value),
            b"c" => j.caller_id = Some(value),
            b"k" => j.key = Some(value),
            b"g" => j.group = Some(value),
            b"p" => j.progress = Some(value),
            _ => {}
        }
    }
    Ok(e)
}
