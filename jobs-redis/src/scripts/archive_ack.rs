//! `archive_ack.lua`: removes the entries of one queue's archive backlog
//! that its sink holds.

use std::sync::LazyLock;

use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::num;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "archive_ack";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("archive_ack"));

/// Remove the entries up to `through`.
pub(crate) struct Ack<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The last position the sink holds.
    pub(crate) through: u64,
}

impl ScriptCall for Ack<'_> {
    /// How many entries are left.
    type Reply = u64;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.through);
    }

    fn decode(self, reply: Value) -> Result<u64, RedisQueueError> {
        num(OP, &bytes(OP, reply)?)
    }
}
