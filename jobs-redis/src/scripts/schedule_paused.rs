//! `schedule_paused.lua`: pauses or resumes one schedule.

use std::sync::LazyLock;

use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::num;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "set_schedule_paused";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("schedule_paused"));

/// Pause (or resume) schedule `name`, stored in the slot of the queue of
/// `keys`.
pub(crate) struct SchedulePaused<'a> {
    /// The keys of the queue the schedule's record lives under.
    pub(crate) keys: &'a QueueKeys,
    /// The schedule.
    pub(crate) name: &'a str,
    /// `true` to pause, `false` to resume.
    pub(crate) paused: bool,
}

impl ScriptCall for SchedulePaused<'_> {
    /// Whether the schedule is stored (nothing is written when it is not).
    type Reply = bool;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.name).arg(if self.paused { "1" } else { "0" });
    }

    /// `1`, or `0` when no such schedule is stored.
    fn decode(self, reply: Value) -> Result<bool, RedisQueueError> {
        match num(OP, &bytes(OP, reply)?)? {
            1 => Ok(true),
            0 => Ok(false),
            n => Err(RedisQueueError::reply(OP, format!("answer {n}"))),
        }
    }
}
