//! `archive_release.lua`: an archiver gives one queue up.

use std::sync::LazyLock;

use redis::Value;

use super::{is_code, queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "archive_release";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("archive_release"));

/// Give the queue up if `holder` holds it.
pub(crate) struct Release<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The archiver's name.
    pub(crate) holder: &'a str,
}

impl ScriptCall for Release<'_> {
    type Reply = ();

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.holder);
    }

    fn decode(self, reply: Value) -> Result<(), RedisQueueError> {
        if is_code(&reply, b"ok") {
            Ok(())
        } else {
            Err(RedisQueueError::reply(OP, format!("{reply:?}")))
        }
    }
}
