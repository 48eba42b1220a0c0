//! `event_names.lua`: the names of jobs whose events' entries name none.

use std::sync::LazyLock;

use jobs_core::JobId;
use redis::Value;

use super::{source, Args, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "event_names";

/// The script.
pub(crate) static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| source(&[include_str!("event_names.lua")]));

/// The names of `jobs`, all of the queue of `keys`.
pub(crate) struct EventNames<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The jobs.
    pub(crate) jobs: &'a [JobId],
}

impl ScriptCall for EventNames<'_> {
    /// One name per job, in order (empty for a job no longer stored).
    type Reply = Vec<String>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        for job in self.jobs {
            let mut ulid = [0u8; ulid::ULID_LEN];
            out.arg(&*job.ulid().array_to_str(&mut ulid));
        }
    }

    fn decode(self, reply: Value) -> Result<Vec<String>, RedisQueueError> {
        let names: Vec<Vec<u8>> =
            redis::from_redis_value(reply).map_err(|e| RedisQueueError::reply(OP, e.to_string()))?;
        if names.len() != self.jobs.len() {
            return Err(RedisQueueError::reply(OP, format!("{} names for {} jobs", names.len(), self.jobs.len())));
        }
        Ok(names.into_iter().map(|n| String::from_utf8_lossy(&n).into_owned()).collect())
    }
}
