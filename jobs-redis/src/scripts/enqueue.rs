//! `enqueue.lua`: stores a batch of new jobs of one queue, all or nothing.

use std::sync::LazyLock;

use jobs_core::{Error, IfExists, JobId, KeyMode, NewJob, Priority};
use redis::Value;

use super::{array, bytes, is_code, queue_script, Args, Script, ScriptCall};
use crate::decode::{due_arg, dur_ms, job_id, num, priority_of, text, Record};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "enqueue";

/// The script: `enqueue.lua` run in its compact form (only the ids that are
/// not the ones sent come back).
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("enqueue"));

/// The jobs `idx` of `jobs`, all of the queue of `keys`.
pub(crate) struct Enqueue<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The whole batch.
    pub(crate) jobs: &'a [NewJob],
    /// The positions in `jobs` of this queue's part, in the batch's order.
    pub(crate) idx: &'a [usize],
    /// A buffer the records are built in, reused across calls.
    pub(crate) scratch: &'a mut Vec<u8>,
}

/// What enqueue.lua answered.
#[derive(Debug)]
pub(crate) enum Enqueued {
    /// Every job of the part is stored, or was a duplicate of a live
    /// `unique_for` job: the positions (into `idx`) of those duplicates with
    /// the live job's id. (Empty, and not allocated, for the common batch.)
    Stored(Vec<(usize, JobId)>),
    /// Nothing was stored.
    Refused(Refusal),
}

/// Why enqueue.lua stored nothing (the queue's policy).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `'full'`: the queue's `max_jobs` would be exceeded.
    Full {
        /// The queue's limit.
        max_jobs: u64,
    },
    /// `'priority'`: the queue's `priority_levels` refuse a job's priority.
    Priority {
        /// The priority refused.
        priority: Priority,
        /// The priorities the queue accepts, as configured.
        accepted: Vec<Priority>,
    },
    /// `'exists'`: a job asked to fail when its caller id is held, and it is.
    IdExists {
        /// The id.
        caller_id: String,
        /// The stored job holding it.
        existing: JobId,
    },
}

impl Refusal {
    /// The refusal as the port's error.
    pub(crate) fn into_error(self, queue: &str) -> Error {
        match self {
            Refusal::Full { max_jobs } => Error::QueueFull { queue: queue.to_owned(), max_jobs },
            Refusal::Priority { priority, accepted } => {
                Error::PriorityNotAccepted { queue: queue.to_owned(), priority, accepted }
            }
            Refusal::IdExists { caller_id, existing } => Error::IdExists { caller_id, existing },
        }
    }

    /// `{'full', max_jobs}` or `{'priority', rank, accepted_ranks}`, the
    /// refusals of `enqueue()` (also returned by fire_schedule.lua).
    pub(crate) fn decode(op: &'static str, items: Vec<Value>) -> Result<Refusal, RedisQueueError> {
        let rank = |b: &[u8]| priority_of(b).ok_or_else(|| RedisQueueError::reply(op, "bad rank"));
        let n = items.len();
        let mut items = items.into_iter().map(|v| bytes(op, v));
        let code = items.next().transpose()?.unwrap_or_default();
        match (code.as_slice(), n) {
            (b"full", 2) => {
                let max = items.next().transpose()?.unwrap_or_default();
                Ok(Refusal::Full { max_jobs: num(op, &max)? })
            }
            (b"priority", 3) => {
                let priority = rank(&items.next().transpose()?.unwrap_or_default())?;
                let accepted = items.next().transpose()?.unwrap_or_default();
                let accepted = accepted.iter().map(|r| rank(std::slice::from_ref(r))).collect::<Result<_, _>>()?;
                Ok(Refusal::Priority { priority, accepted })
            }
            (code, n) => Err(RedisQueueError::reply(op, format!("answer `{}` with {n} items", text(code)))),
        }
    }
}

/// The flow a job belongs to (its [`FLOW_HEADER`](jobs_core::FLOW_HEADER)),
/// if any.
fn flow_of(j: &NewJob) -> Option<&String> {
    j.headers.get(jobs_core::FLOW_HEADER).filter(|f| !f.is_empty())
}

/// The letters of the options a job sets (see enqueue.lua), in their
/// order, on the stack: this runs for every job enqueued.
fn letters(j: &NewJob) -> ([u8; 7], usize) {
    let (mut letters, mut n) = ([0u8; 7], 0);
    for (set, letter) in [
        (j.run_at.is_some(), b'r'),
        (j.unique_for.is_some(), b'u'),
        (j.expires.is_some(), b'x'),
        (j.caller_id.is_some(), b'c'),
        (j.key.is_some(), b'k'),
        (j.group.is_some(), b'g'),
        (flow_of(j).is_some(), b'f'),
    ] {
        if set {
            letters[n] = letter;
            n += 1;
        }
    }
    (letters, n)
}

/// Whether a job sets no option: a batch of such jobs is sent plain (two
/// arguments each).
fn is_plain(j: &NewJob) -> bool {
    letters(j).1 == 0
}

/// Appends the arguments of one job (see enqueue.lua): its ulid, its
/// record (built in `scratch`), then (unless `plain`: every job of the
/// batch sets no option) the letters of the options it sets and each
/// option's value in that order: its run_at (`r`, see [`due_arg`]),
/// unique_for (`u`, ms), expiry (`x`, like run_at), caller id (`c`), key
/// (`k`), group (`g`) and flow (`f`, the
/// [`FLOW_HEADER`](jobs_core::FLOW_HEADER)). Each argument costs the
/// script a Lua string: a job of a plain batch sends two.
pub(crate) fn push_job(out: &mut Args<'_>, j: &NewJob, scratch: &mut Vec<u8>, plain: bool) {
    let mut ulid = [0u8; ulid::ULID_LEN];
    out.arg(&*j.id.ulid().array_to_str(&mut ulid));
    Record::write(scratch, j);
    out.arg(&scratch[..]);
    if plain {
        return;
    }
    let (letters, n) = letters(j);
    out.arg(&letters[..n]);
    if let Some(w) = j.run_at {
        out.arg(due_arg(w));
    }
    if let Some(d) = j.unique_for {
        out.arg(dur_ms(d).max(1));
    }
    if let Some(w) = j.expires {
        out.arg(due_arg(w));
    }
    if let Some(c) = &j.caller_id {
        out.arg(format!("{}{}", if c.if_exists == IfExists::Fail { 'f' } else { 'e' }, c.id));
    }
    if let Some(k) = &j.key {
        out.arg(format!("{}{}:{}{}", if k.mode == KeyMode::Replace { 'r' } else { 'k' }, j.name.len(), j.name, k.key));
    }
    if let Some(g) = &j.group {
        out.arg(format!(
            "{}/{}:{}",
            g.concurrency.map(|n| n.to_string()).unwrap_or_default(),
            g.rate.as_ref().map(crate::decode::rate_arg).unwrap_or_default(),
            g.key
        ));
    }
    if let Some(f) = flow_of(j) {
        out.arg(&f[..]);
    }
}

impl ScriptCall for Enqueue<'_> {
    type Reply = Enqueued;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.idx.len());
        // The name every job of the part shares (its events are then
        // recorded without a look at each record), or ''.
        let mut names = self.idx.iter().map(|&i| self.jobs[i].name.as_str());
        let first = names.next().unwrap_or_default();
        out.arg(if names.all(|n| n == first) { first } else { "" });
        let plain = self.idx.iter().all(|&i| is_plain(&self.jobs[i]));
        // The layout (see enqueue.lua): plain, and the rank every job has.
        let mut ranks = self.idx.iter().map(|&i| self.jobs[i].priority.rank());
        let rank = ranks.next().unwrap_or_default();
        match (plain, ranks.all(|r| r == rank)) {
            (false, _) => out.arg(""),
            (true, false) => out.arg("p"),
            (true, true) => out.arg(format!("p{rank}")),
        };
        for &i in self.idx {
            push_job(out, &self.jobs[i], self.scratch, plain);
        }
    }

    /// `{'okc', pos, id, ..}`: stored, with the positions (1-based) whose id
    /// is another job's; else a refusal.
    fn decode(self, reply: Value) -> Result<Enqueued, RedisQueueError> {
        let mut items = array(OP, reply)?;
        if items.first().is_some_and(|v| is_code(v, b"exists")) && items.len() == 3 {
            let existing = job_id(OP, self.keys, &bytes(OP, items.pop().unwrap_or(Value::Nil))?)?;
            let pos = usize::try_from(num(OP, &bytes(OP, items.pop().unwrap_or(Value::Nil))?)?).unwrap_or(usize::MAX);
            let caller_id = pos
                .checked_sub(1)
                .and_then(|p| self.idx.get(p))
                .and_then(|&i| self.jobs[i].caller_id.as_ref())
                .map(|c| c.id.clone())
                .ok_or_else(|| RedisQueueError::reply(OP, "a held id's position is out of range"))?;
            return Ok(Enqueued::Refused(Refusal::IdExists { caller_id, existing }));
        }
        if !items.first().is_some_and(|v| is_code(v, b"okc")) {
            return Refusal::decode(OP, items).map(Enqueued::Refused);
        }
        let mut replaced = Vec::new();
        let mut rest = items.drain(1..);
        while let (Some(pos), Some(id)) = (rest.next(), rest.next()) {
            let pos = usize::try_from(num(OP, &bytes(OP, pos)?)?).unwrap_or(usize::MAX);
            let at = pos
                .checked_sub(1)
                .filter(|&p| p < self.idx.len())
                .ok_or_else(|| RedisQueueError::reply(OP, "a duplicate's position is out of range"))?;
            replaced.push((at, job_id(OP, self.keys, &bytes(OP, id)?)?));
        }
        Ok(Enqueued::Stored(replaced))
    }
}
