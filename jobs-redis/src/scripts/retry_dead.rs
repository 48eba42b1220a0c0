//! `retry_dead.lua`: puts one dead job back to pending.

use std::sync::LazyLock;

use jobs_core::{JobId, JobStatus};
use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::{status_of, text};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "retry_dead";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("retry_dead"));

/// Retry dead job `id`, of the queue of `keys`.
pub(crate) struct RetryDead<'a> {
    /// The job's queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The job.
    pub(crate) id: &'a JobId,
}

/// What retry_dead.lua answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DeadRetry {
    /// Pending again.
    Pending,
    /// No such job.
    NotFound,
    /// The job is not dead (nothing changed): its status.
    NotDead(JobStatus),
}

impl ScriptCall for RetryDead<'_> {
    type Reply = DeadRetry;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        let mut ulid = [0u8; ulid::ULID_LEN];
        out.arg(&*self.id.ulid().array_to_str(&mut ulid));
    }

    /// `'ok'`, `'notfound'` or `'invalid:<status>'`.
    fn decode(self, reply: Value) -> Result<DeadRetry, RedisQueueError> {
        let reply = bytes(OP, reply)?;
        match text(&reply) {
            "ok" => Ok(DeadRetry::Pending),
            "notfound" => Ok(DeadRetry::NotFound),
            other => other
                .strip_prefix("invalid:")
                .and_then(status_of)
                .map(DeadRetry::NotDead)
                .ok_or_else(|| RedisQueueError::reply(OP, other.to_owned())),
        }
    }
}
