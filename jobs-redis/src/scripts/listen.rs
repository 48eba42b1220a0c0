//! `listen.lua`: keeps a queue's job events recorded for a while.

use std::sync::LazyLock;
use std::time::Duration;

use jobs_core::{EventCursor, Listening};
use redis::Value;

use super::{queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "listen";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("listen"));

/// Keep the events of the queue of `keys` recorded for `ttl`.
pub(crate) struct Listen<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The most events the stream keeps.
    pub(crate) history: usize,
    /// How long recording stays on.
    pub(crate) ttl: Duration,
}

impl ScriptCall for Listen<'_> {
    type Reply = Listening;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.history).arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX).max(1));
    }

    /// `{was_on, newest id}`.
    fn decode(self, reply: Value) -> Result<Listening, RedisQueueError> {
        let (was_on, newest): (String, String) =
            redis::from_redis_value(reply).map_err(|e| RedisQueueError::reply(OP, e.to_string()))?;
        Ok(Listening { cursor: EventCursor::from_backend(newest), was_on: was_on == "1" })
    }
}
