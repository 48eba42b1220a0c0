//! `set_policy.lua`: stores one queue's limits.

use std::sync::LazyLock;

use jobs_core::QueuePolicy;
use redis::Value;

use super::{is_code, queue_script, script_identity, Args, Script, ScriptCall};
use crate::decode::{breaker_arg, rate_arg};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("set_policy"));

const OP: &str = "set_policy";

/// Store `policy` (already checked) for the queue of `keys`.
pub(crate) struct SetPolicy<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The limits.
    pub(crate) policy: &'a QueuePolicy,
}

impl ScriptCall for SetPolicy<'_> {
    type Reply = ();

    script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        let p = self.policy;
        let number = |n: Option<u64>| n.map(|m| m.to_string()).unwrap_or_default();
        // The ranks' digits in the policy's order, so an error lists them as
        // configured.
        let levels: String = p.priority_levels.iter().map(|l| l.rank().to_string()).collect();
        out.arg(number(p.max_jobs))
            .arg(levels)
            .arg(number(p.max_running))
            .arg(p.rate.as_ref().map(rate_arg).unwrap_or_default())
            .arg(number(p.group_concurrency.map(u64::from)))
            .arg(p.group_rate.as_ref().map(rate_arg).unwrap_or_default())
            .arg(p.breaker.as_ref().map(breaker_arg).unwrap_or_default());
        let r = &p.retention;
        let ms = |d: Option<std::time::Duration>| number(d.map(crate::decode::dur_ms));
        out.arg(ms(r.succeeded))
            .arg(number(r.succeeded_max.map(|n| n as u64)))
            .arg(ms(r.dead_age))
            .arg(number(r.dead_max.map(|n| n as u64)))
            .arg(if p.archive { "1" } else { "" })
            .arg(p.group_breaker.as_ref().map(breaker_arg).unwrap_or_default());
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
