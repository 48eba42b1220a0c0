//! `set_paused.lua`: pauses or resumes one queue.

use std::sync::LazyLock;

use redis::Value;

use super::{is_code, queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("set_paused"));

/// Pause (or resume) the queue of `keys`.
pub(crate) struct SetPaused<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// `true` to pause, `false` to resume.
    pub(crate) paused: bool,
}

impl ScriptCall for SetPaused<'_> {
    type Reply = ();

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn op(&self) -> &'static str {
        if self.paused {
            "pause"
        } else {
            "resume"
        }
    }

    fn keys(&self) -> &QueueKeys {
        self.keys
    }

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(if self.paused { "1" } else { "0" });
    }

    /// `'ok'`.
    fn decode(self, reply: Value) -> Result<(), RedisQueueError> {
        if is_code(&reply, b"ok") {
            Ok(())
        } else {
            Err(RedisQueueError::reply(self.op(), format!("{reply:?}")))
        }
    }
}
