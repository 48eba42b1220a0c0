//! `groups_top.lua`: the busiest groups of one queue.

use std::sync::LazyLock;

use redis::Value;

use super::{array, bytes, queue_script, script_identity, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("groups_top"));

const OP: &str = "groups";

/// List the `limit` (at least 1) busiest groups of the queue of `keys`.
pub(crate) struct GroupsTop<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The most groups to list.
    pub(crate) limit: usize,
}

/// One group as the script lists it.
pub(crate) struct TopGroup {
    /// The group's key.
    pub(crate) key: String,
    /// Its pending jobs.
    pub(crate) pending: u64,
    /// Its running jobs (0 when none are counted).
    pub(crate) running: u64,
    /// Its `gbound` value, `<concurrency>/<rate>/<rank>` ('' for none).
    pub(crate) bounds: String,
}

/// What the script answered.
pub(crate) struct Top {
    /// The queue's `group_concurrency` override ('' for none).
    pub(crate) over_limit: String,
    /// The queue's `group_rate` override (`<starts>,<window ms>`, '' for
    /// none).
    pub(crate) over_rate: String,
    /// The busiest groups, busiest first.
    pub(crate) groups: Vec<TopGroup>,
}

impl ScriptCall for GroupsTop<'_> {
    type Reply = Top;

    script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.limit);
    }

    /// The two overrides, then four values per group: key, pending,
    /// running, bounds.
    fn decode(self, reply: Value) -> Result<Top, RedisQueueError> {
        let items = array(OP, reply)?;
        if items.len() < 2 || (items.len() - 2) % 4 != 0 {
            return Err(RedisQueueError::reply(OP, format!("{} values, not 2 and four per group", items.len())));
        }
        let text = |v: Value| bytes(OP, v).map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut out = Vec::with_capacity((items.len() - 2) / 4);
        let mut it = items.into_iter();
        let (over_limit, over_rate) = match (it.next(), it.next()) {
            (Some(l), Some(r)) => (text(l)?, text(r)?),
            _ => (String::new(), String::new()),
        };
        while let (Some(key), Some(pending), Some(running), Some(bounds)) = (it.next(), it.next(), it.next(), it.next())
        {
            out.push(TopGroup {
                key: text(key)?,
                pending: text(pending)?.parse().unwrap_or(0),
                running: text(running)?.parse().unwrap_or(0),
                bounds: text(bounds)?,
            });
        }
        Ok(Top { over_limit, over_rate, groups: out })
    }
}
