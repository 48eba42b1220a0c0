//! `read.lua`: what is stored of some jobs of one queue, read at one
//! instant.

use std::sync::LazyLock;

use redis::Value;

use super::{queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "job";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("read"));

/// Read jobs `ulids` of the queue of `keys`.
pub(crate) struct Read<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The jobs.
    pub(crate) ulids: &'a [Vec<u8>],
}

/// One job's fields as stored (each `None` when absent).
#[derive(Debug, Default)]
pub(crate) struct StoredJob {
    /// The record; `None`: no such job (deleted since its id was read).
    pub(crate) record: Option<Vec<u8>>,
    /// The state (absent: pending, never started).
    pub(crate) state: Option<Vec<u8>>,
    /// The attempt log.
    pub(crate) log: Option<Vec<u8>>,
    /// The result.
    pub(crate) result: Option<Vec<u8>>,
    /// How many times it snoozed.
    pub(crate) snoozes: Option<Vec<u8>>,
    /// When it expires (ms).
    pub(crate) expires: Option<Vec<u8>>,
    /// Its caller id.
    pub(crate) caller_id: Option<Vec<u8>>,
    /// Its key field (`<name length>:<name><key>`).
    pub(crate) key: Option<Vec<u8>>,
    /// Its group field (`<concurrency>:<key>`).
    pub(crate) group: Option<Vec<u8>>,
    /// Its last progress (see `progress.rs`).
    pub(crate) progress: Option<Vec<u8>>,
    /// Whether it runs and its handler's start is recorded for the attempt
    /// that runs.
    pub(crate) handler_started: bool,
}

/// How many fields read.lua returns per job.
const FIELDS: usize = 11;

impl ScriptCall for Read<'_> {
    /// One entry per ulid, in order.
    type Reply = Vec<StoredJob>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        for u in self.ulids {
            out.arg(&u[..]);
        }
    }

    /// [`FIELDS`] values per ulid: record, state, log, result, snoozes,
    /// expiry, caller id, key, group, progress, handler started.
    fn decode(self, reply: Value) -> Result<Vec<StoredJob>, RedisQueueError> {
        let fields: Vec<Option<Vec<u8>>> =
            redis::from_redis_value(reply).map_err(|e| RedisQueueError::reply(OP, e.to_string()))?;
        if fields.len() != self.ulids.len() * FIELDS {
            return Err(RedisQueueError::reply(OP, format!("{} fields", fields.len())));
        }
        let mut fields = fields.into_iter();
        let mut out = Vec::with_capacity(self.ulids.len());
        for _ in 0..self.ulids.len() {
            let mut next = || fields.next().flatten();
            out.push(StoredJob {
                record: next(),
                state: next(),
                log: next(),
                result: next(),
                snoozes: next(),
                expires: next(),
                caller_id: next(),
                key: next(),
                group: next(),
                progress: next(),
                handler_started: next().is_some(),
            });
        }
        Ok(out)
    }
}
