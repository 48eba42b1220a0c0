//! `finish.lua`: records a batch of ended attempts (and start marks) of one
//! queue.

use std::sync::LazyLock;

use jobs_core::backend::{Finish, FinishResult, Outcome};
use jobs_core::JobStatus;
use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::due_arg;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("finish"));

/// One queue's part of a batch.
pub(crate) struct FinishBatch<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The dead-letter set's bound (it is trimmed after).
    pub(crate) dead_max: usize,
    /// What ended.
    pub(crate) items: Items<'a>,
    /// The operation named in errors.
    pub(crate) op: &'static str,
}

/// The items of a [`FinishBatch`]: each job at most once.
pub(crate) enum Items<'a> {
    /// Attempts a worker pool reports: positions `idx` of `batch`.
    Ended {
        /// The whole batch.
        batch: &'a [Finish],
        /// The positions of this queue's part.
        idx: &'a [usize],
    },
    /// Jobs a fetch just leased under `token` whose entries cannot be read
    /// (ulid, why): dead, with the reason.
    Unreadable {
        /// The lease they were taken under.
        token: u64,
        /// Each job's ulid as stored, and why it cannot be read.
        jobs: &'a [(Vec<u8>, String)],
    },
}

impl Items<'_> {
    fn len(&self) -> usize {
        match self {
            Items::Ended { idx, .. } => idx.len(),
            Items::Unreadable { jobs, .. } => jobs.len(),
        }
    }
}

/// The kind `finish.lua` names an outcome by.
pub(crate) fn kind_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Started => "start",
        Outcome::Succeeded { result: None } => "ok",
        Outcome::Succeeded { result: Some(_) } => "okr",
        Outcome::Retry { .. } => "retry",
        Outcome::Dead { .. } => "dead",
        Outcome::Release { .. } => "release",
        Outcome::Snooze { holds_group: true, .. } => "limited",
        Outcome::Snooze { .. } => "snooze",
    }
}

/// Appends one attempt of a run (see `finish.lua`): its ulid and its
/// kind's arguments.
fn push_ended(out: &mut Args<'_>, f: &Finish) {
    let mut ulid = [0u8; ulid::ULID_LEN];
    out.arg(&*f.id.ulid().array_to_str(&mut ulid));
    match &f.outcome {
        Outcome::Started | Outcome::Succeeded { result: None } => out,
        Outcome::Succeeded { result: Some(r) } => out.arg(&r[..]),
        Outcome::Retry { error, at } => out.arg(error).arg(due_arg(*at)),
        Outcome::Dead { error } => out.arg(error),
        Outcome::Release { at: Some(at), reason } => out.arg(reason).arg(due_arg(*at)),
        Outcome::Release { at: None, reason } => out.arg(reason).arg(""),
        Outcome::Snooze { at, reason, limit, .. } => {
            out.arg(reason).arg(due_arg(*at)).arg(*limit).arg(jobs_core::backend::snooze_limit_error(*limit, reason))
        }
    };
}

/// One item's status code: the job's status afterwards, or `'x'` (stale).
fn result_of(code: u8) -> Option<FinishResult> {
    Some(match code {
        b'x' => FinishResult::Stale,
        b'S' => FinishResult::Applied(JobStatus::Succeeded),
        b'c' => FinishResult::Applied(JobStatus::Cancelled),
        b'r' => FinishResult::Applied(JobStatus::Retrying),
        b'd' => FinishResult::Applied(JobStatus::Dead),
        b'p' => FinishResult::Applied(JobStatus::Pending),
        b's' => FinishResult::Applied(JobStatus::Scheduled),
        b'R' => FinishResult::Applied(JobStatus::Running),
        _ => return None,
    })
}

impl ScriptCall for FinishBatch<'_> {
    /// One result per item, in order.
    type Reply = Vec<FinishResult>;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn op(&self) -> &'static str {
        self.op
    }

    fn keys(&self) -> &QueueKeys {
        self.keys
    }

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.dead_max).arg(self.items.len());
        match &self.items {
            Items::Ended { batch, idx } => {
                // Runs of consecutive items of one token and one kind (the
                // caller orders them so).
                let mut rest = *idx;
                while let Some(&first) = rest.first() {
                    let (token, kind) = (batch[first].token, kind_of(&batch[first].outcome));
                    let len = rest
                        .iter()
                        .take_while(|&&i| batch[i].token == token && kind_of(&batch[i].outcome) == kind)
                        .count();
                    out.arg(token).arg(kind).arg(len);
                    for &i in &rest[..len] {
                        push_ended(out, &batch[i]);
                    }
                    rest = &rest[len..];
                }
            }
            Items::Unreadable { token, jobs } => {
                if !jobs.is_empty() {
                    out.arg(*token).arg("dead").arg(jobs.len());
                }
                for (ulid, reason) in *jobs {
                    out.arg(&ulid[..]).arg(format!("unreadable job entry: {reason}"));
                }
            }
        }
    }

    /// One status character per item.
    fn decode(self, reply: Value) -> Result<Vec<FinishResult>, RedisQueueError> {
        let codes = bytes(self.op, reply)?;
        if codes.len() != self.items.len() {
            return Err(RedisQueueError::reply(self.op, format!("{} results", codes.len())));
        }
        codes
            .iter()
            .map(|&c| {
                result_of(c).ok_or_else(|| RedisQueueError::reply(self.op, format!("status code `{}`", char::from(c))))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_of_the_script_is_known() {
        // The codes finish.lua's header lists.
        for c in *b"xScrdpsR" {
            assert!(result_of(c).is_some(), "{}", char::from(c));
        }
        assert_eq!(result_of(b'x'), Some(FinishResult::Stale));
        assert_eq!(result_of(b'?'), None);
    }
}
