//! `flow_take.lua`: takes ended workflow steps and batch jobs of one queue
//! for the relay.

use std::sync::LazyLock;
use std::time::Duration;

use jobs_core::{MemberEnd, MemberStatus};
use redis::Value;
use ulid::Ulid;

use super::{array, bytes, queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "flow_take";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("flow_take"));

/// Take up to `max` ends, hidden from other takers for `claim`.
pub(crate) struct Take<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The most to take.
    pub(crate) max: usize,
    /// How long they stay hidden.
    pub(crate) claim: Duration,
}

fn text(b: Vec<u8>) -> Result<String, RedisQueueError> {
    String::from_utf8(b).map_err(|_| RedisQueueError::reply(OP, "not UTF-8"))
}

impl ScriptCall for Take<'_> {
    /// The ends taken.
    type Reply = Vec<MemberEnd>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.max).arg(self.claim.as_millis().max(1) as u64);
    }

    fn decode(self, reply: Value) -> Result<Vec<MemberEnd>, RedisQueueError> {
        let items = array(OP, reply)?;
        let mut out = Vec::with_capacity(items.len() / 4);
        let mut it = items.into_iter();
        while let (Some(id), Some(r), Some(st), Some(res)) = (it.next(), it.next(), it.next(), it.next()) {
            let ulid = text(bytes(OP, id)?)?;
            let ulid = Ulid::from_string(&ulid).map_err(|e| RedisQueueError::reply(OP, e.to_string()))?;
            let reference = text(bytes(OP, r)?)?;
            let Some((flow, member)) = reference.split_once(' ') else {
                return Err(RedisQueueError::reply(OP, format!("flow reference `{reference}`")));
            };
            let status = match &bytes(OP, st)?[..] {
                b"succeeded" => MemberStatus::Succeeded,
                b"dead" => MemberStatus::Dead,
                b"cancelled" => MemberStatus::Cancelled,
                b"expired" => MemberStatus::Expired,
                other => {
                    return Err(RedisQueueError::reply(OP, format!("status {:?}", String::from_utf8_lossy(other))))
                }
            };
            let result = bytes(OP, res)?;
            out.push(MemberEnd {
                flow: flow.to_owned(),
                member: member.to_owned(),
                job: self.keys.job_id(ulid),
                status,
                result: if result.is_empty() { None } else { Some(text(result)?) },
            });
        }
        Ok(out)
    }
}
