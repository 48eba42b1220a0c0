//! `unpark.lua`: a parked fetcher stops waiting and takes what was handed
//! to it.

use std::sync::LazyLock;

use redis::Value;

use super::fetch::{unpack, Fetched};
use super::{array, bytes, queue_script, Args, Script, ScriptCall};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "unpark";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("unpark"));

/// Unlists fetcher `id` of the queue of `keys`.
pub(crate) struct Unpark<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The fetcher's id.
    pub(crate) id: &'a str,
    /// Whether its BLPOP may still be blocked: the script leaves a mark
    /// that ends it.
    pub(crate) blocked: bool,
}

impl ScriptCall for Unpark<'_> {
    /// The fetches handed to it, oldest first.
    type Reply = Vec<Fetched>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.id).arg(if self.blocked { "1" } else { "0" });
    }

    /// The packed fetch replies the inbox held.
    fn decode(self, reply: Value) -> Result<Vec<Fetched>, RedisQueueError> {
        array(OP, reply)?.into_iter().map(|v| unpack(&bytes(OP, v)?)).collect()
    }
}
