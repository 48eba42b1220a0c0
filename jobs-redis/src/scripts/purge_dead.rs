//! `purge_dead.lua`: deletes dead jobs of one queue, a bounded batch per
//! call.

use std::sync::LazyLock;

use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::num;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "purge_dead";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("purge_dead"));

/// Delete up to `limit` dead jobs of the queue of `keys`, oldest first.
pub(crate) struct PurgeDead<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The most jobs to delete in this call.
    pub(crate) limit: usize,
}

impl ScriptCall for PurgeDead<'_> {
    /// How many were deleted (fewer than `limit`: the set is empty now).
    type Reply = u64;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.limit);
    }

    fn decode(self, reply: Value) -> Result<u64, RedisQueueError> {
        num(OP, &bytes(OP, reply)?)
    }
}
