//! `set_breaker.lua`: opens or closes one queue's circuit breaker, or one
//! group's.

use std::sync::LazyLock;

use jobs_core::BreakerAction;
use redis::Value;

use super::{is_code, queue_script, script_identity, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("set_breaker"));

const OP: &str = "set_breaker";

/// Apply `action` to the breaker of the queue of `keys`, or of one of its
/// groups.
pub(crate) struct SetBreaker<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// Open (for how long) or close.
    pub(crate) action: BreakerAction,
    /// The group whose breaker it is; `None`: the queue's own.
    pub(crate) group: Option<&'a str>,
}

impl ScriptCall for SetBreaker<'_> {
    type Reply = ();

    script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        match self.action {
            BreakerAction::Open(d) => out.arg("open").arg(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            BreakerAction::Close => out.arg("close").arg(""),
        };
        out.arg(self.group.unwrap_or(""));
    }

    /// `'ok'`.
    fn decode(self, reply: Value) -> Result<(), RedisQueueError> {
        if is_code(&reply, b"ok") {
            Ok(())
        } else {
            Err(RedisQueueError::reply(OP, format!("{reply:?}")))
        }
    }
}
