//! `cancel.lua`: cancels one job.

use std::sync::LazyLock;

use jobs_core::{CancelResult, JobId};
use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::{status_of, text};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "cancel";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("cancel"));

/// Cancel job `id`, of the queue of `keys`.
pub(crate) struct Cancel<'a> {
    /// The job's queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The job.
    pub(crate) id: &'a JobId,
}

impl ScriptCall for Cancel<'_> {
    /// What happened; `None` when there is no such job.
    type Reply = Option<CancelResult>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        let mut ulid = [0u8; ulid::ULID_LEN];
        out.arg(&*self.id.ulid().array_to_str(&mut ulid));
    }

    /// `'notfound'`, `'requested'`, `'cancelled'` or `'finished:<status>'`.
    fn decode(self, reply: Value) -> Result<Option<CancelResult>, RedisQueueError> {
        let reply = bytes(OP, reply)?;
        match text(&reply) {
            "notfound" => Ok(None),
            "requested" => Ok(Some(CancelResult::Requested)),
            "cancelled" => Ok(Some(CancelResult::Cancelled)),
            other => other
                .strip_prefix("finished:")
                .and_then(status_of)
                .map(|s| Some(CancelResult::AlreadyFinished(s)))
                .ok_or_else(|| RedisQueueError::reply(OP, other.to_owned())),
        }
    }
}
