//! `extend.lua`: a batch of heartbeats of one queue.

use std::sync::LazyLock;
use std::time::Duration;

use jobs_core::backend::LeaseState;
use jobs_core::JobId;
use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::dur_ms;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "extend_leases";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("extend"));

/// The leases `idx` of `leases`, all of the queue of `keys`.
pub(crate) struct Extend<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// How long each lease held lasts from now on.
    pub(crate) lease: Duration,
    /// Every (job, token) of the batch.
    pub(crate) leases: &'a [(JobId, u64)],
    /// The positions of this queue's part.
    pub(crate) idx: &'a [usize],
}

impl ScriptCall for Extend<'_> {
    /// One state per lease, in order.
    type Reply = Vec<LeaseState>;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(dur_ms(self.lease));
        for &i in self.idx {
            let (id, token) = &self.leases[i];
            let mut ulid = [0u8; ulid::ULID_LEN];
            out.arg(&*id.ulid().array_to_str(&mut ulid)).arg(*token);
        }
    }

    /// One character per lease: `'h'` held, `'c'` held with a cancel
    /// requested, `'l'` lost.
    fn decode(self, reply: Value) -> Result<Vec<LeaseState>, RedisQueueError> {
        let codes = bytes(OP, reply)?;
        if codes.len() != self.idx.len() {
            return Err(RedisQueueError::reply(OP, format!("{} results", codes.len())));
        }
        codes
            .iter()
            .map(|c| match c {
                b'h' => Ok(LeaseState::Held),
                b'c' => Ok(LeaseState::CancelRequested),
                b'l' => Ok(LeaseState::Lost),
                other => Err(RedisQueueError::reply(OP, format!("lease code `{}`", char::from(*other)))),
            })
            .collect()
    }
}
