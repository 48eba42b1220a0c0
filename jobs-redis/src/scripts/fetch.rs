//! `fetch.lua` (with `promote.lua`, `reclaim.lua` and `sweep.lua`): the
//! housekeeping of one queue, then up to `room` of its jobs leased.

use std::sync::LazyLock;
use std::time::Duration;

use jobs_core::Retention;
use redis::Value;

use super::{array, bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::{dur_ms, num, opt_u64};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "fetch";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("fetch"));

/// One queue's fetch.
pub(crate) struct Fetch<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The most jobs to lease (0: only the housekeeping).
    pub(crate) room: usize,
    /// How long the lease lasts.
    pub(crate) lease: Duration,
    /// The retry budget of reclaimed jobs that carry none.
    pub(crate) default_max_retries: u32,
    /// Records promoted, reclaimed and swept at most per kind.
    pub(crate) batch: usize,
    /// How long finished jobs are kept, and how many.
    pub(crate) retention: Retention,
    /// The crash budget (see reclaim.lua).
    pub(crate) max_crashes: u32,
    /// The most jobs one call ends expired.
    pub(crate) expire_max: usize,
    /// Park the caller when the call leases nothing (see "Parking" in
    /// `fetch.lua`): its id, and how long its listing lasts.
    pub(crate) park: Option<(&'a str, Duration)>,
}

/// What fetch.lua answered.
pub(crate) struct Fetched {
    /// How long (ms, on the server's clock) until the queue's earliest
    /// scheduled job or lease expiry, if any.
    pub(crate) next_due: Option<u64>,
    /// The token of the lease the jobs were taken under (0 when none was).
    pub(crate) token: u64,
    /// The jobs found past their expiry and ended: ulid and job name.
    pub(crate) expired: Vec<(Vec<u8>, Vec<u8>)>,
    /// The jobs the fetch's reclaim sent to the dead-letter set.
    pub(crate) dead: Vec<DeadEntry>,
    /// How many entries its retention added to the queue's archive backlog.
    pub(crate) archived: u64,
    /// Whether the queue serves groups in turn.
    pub(crate) groups: bool,
    /// The leased jobs.
    pub(crate) jobs: Entries,
    /// Whether the caller was parked (only when it asked to be).
    pub(crate) parked: bool,
}

/// A job the fetch's reclaim sent to the dead-letter set: its worker died
/// during its last attempt, or it ran out of its crash budget.
pub(crate) struct DeadEntry {
    /// Its ulid.
    pub(crate) ulid: Vec<u8>,
    /// Its job name.
    pub(crate) name: String,
    /// Its attempts.
    pub(crate) attempts: u32,
    /// The error of its last attempt.
    pub(crate) error: String,
}

/// One leased job as stored.
pub(crate) struct Entry {
    /// Its ulid.
    pub(crate) ulid: Vec<u8>,
    /// Its record (see `common.lua`).
    pub(crate) record: Vec<u8>,
    /// Its state before this fetch; `None` for a job never started (this is
    /// attempt 1).
    pub(crate) old_state: Option<Vec<u8>>,
    /// The leases it lost before its handler was known to start.
    pub(crate) crashes: u32,
}

/// The leased jobs of a reply, decoded one at a time (the reply's strings
/// become the entries' buffers, with no copy).
pub(crate) struct Entries(std::vec::IntoIter<Value>);

impl Entries {
    /// How many jobs are left.
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 4
    }
}

impl Iterator for Entries {
    type Item = Result<Entry, RedisQueueError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (ulid, record, old, crashes) = (self.0.next()?, self.0.next()?, self.0.next()?, self.0.next()?);
        Some(entry(ulid, record, old, crashes))
    }
}

/// One job's 4 values: ulid, record, state before (nil: none), crashes
/// (nil: none).
fn entry(ulid: Value, record: Value, old: Value, crashes: Value) -> Result<Entry, RedisQueueError> {
    let old_state = match old {
        Value::Nil => None,
        v => Some(bytes(OP, v)?),
    };
    let crashes = match crashes {
        Value::Nil => 0,
        v => u32::try_from(num(OP, &bytes(OP, v)?)?).unwrap_or(u32::MAX),
    };
    Ok(Entry { ulid: bytes(OP, ulid)?, record: bytes(OP, record)?, old_state, crashes })
}

impl ScriptCall for Fetch<'_> {
    type Reply = Fetched;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        let r = self.retention;
        out.arg(self.room)
            .arg(dur_ms(self.lease))
            .arg(self.default_max_retries)
            .arg(self.batch)
            .arg(dur_ms(r.succeeded))
            .arg(dur_ms(r.dead_age))
            .arg(r.dead_max)
            .arg(self.max_crashes)
            .arg(r.succeeded_max)
            .arg(self.expire_max);
        match self.park {
            Some((id, ttl)) => out.arg(id).arg(dur_ms(ttl)),
            None => out.arg("").arg(""),
        };
    }

    /// With `park`, `'1'` when parked (else `'0'`); then the reply
    /// [`decode_reply`] reads.
    fn decode(self, reply: Value) -> Result<Fetched, RedisQueueError> {
        let mut items = array(OP, reply)?.into_iter();
        let parked = match self.park {
            Some(_) => match items.next() {
                Some(v) => bytes(OP, v)? == b"1",
                None => return Err(RedisQueueError::reply(OP, "empty answer")),
            },
            None => false,
        };
        decode_reply(items, parked)
    }
}

/// A fetch handed over to a parked fetcher: an inbox entry (see
/// `pack_reply` in `fetch.lua`: each value `<length>:<bytes>`, or `-` for
/// nil), decoded as [`decode_reply`] reads a reply.
pub(crate) fn unpack(mut packed: &[u8]) -> Result<Fetched, RedisQueueError> {
    let bad = |why: &str| RedisQueueError::reply(OP, format!("a handed-over fetch that does not parse: {why}"));
    let mut items = Vec::new();
    while let Some((&first, rest)) = packed.split_first() {
        if first == b'-' {
            items.push(Value::Nil);
            packed = rest;
            continue;
        }
        let colon = packed.iter().position(|&b| b == b':').ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&packed[..colon])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("a length that is not a number"))?;
        let value = packed.get(colon + 1..colon + 1 + len).ok_or_else(|| bad("shorter than announced"))?;
        items.push(Value::BulkString(value.to_vec()));
        packed = &packed[colon + 1 + len..];
    }
    decode_reply(items.into_iter(), false)
}

/// `{next_due_in_ms or '', T or '', n, 4 values per dead job, E, 2 values
/// per expired job, A (entries archived), G ('1' when the queue serves
/// groups in turn), then 4 values per job}`.
fn decode_reply(mut items: std::vec::IntoIter<Value>, parked: bool) -> Result<Fetched, RedisQueueError> {
    let (Some(due), Some(token), Some(n)) = (items.next(), items.next(), items.next()) else {
        return Err(RedisQueueError::reply(OP, "short answer"));
    };
    let next_due = opt_u64(OP, &bytes(OP, due)?)?;
    let n = num(OP, &bytes(OP, n)?)?;
    let mut dead = Vec::new();
    for _ in 0..n {
        let (Some(ulid), Some(name), Some(attempts), Some(error)) =
            (items.next(), items.next(), items.next(), items.next())
        else {
            return Err(RedisQueueError::reply(OP, "short list of dead jobs"));
        };
        dead.push(DeadEntry {
            ulid: bytes(OP, ulid)?,
            name: String::from_utf8_lossy(&bytes(OP, name)?).into_owned(),
            attempts: u32::try_from(num(OP, &bytes(OP, attempts)?)?).unwrap_or(u32::MAX),
            error: String::from_utf8_lossy(&bytes(OP, error)?).into_owned(),
        });
    }
    let Some(n_expired) = items.next() else {
        return Err(RedisQueueError::reply(OP, "no count of expired jobs"));
    };
    let n_expired = usize::try_from(num(OP, &bytes(OP, n_expired)?)?).unwrap_or(usize::MAX);
    if items.len() < n_expired.saturating_mul(2) {
        return Err(RedisQueueError::reply(OP, format!("{n_expired} expired jobs announced, fewer sent")));
    }
    let mut expired = Vec::with_capacity(n_expired);
    for _ in 0..n_expired {
        // Counted above: both are there.
        let (Some(ulid), Some(name)) = (items.next(), items.next()) else { break };
        expired.push((bytes(OP, ulid)?, bytes(OP, name)?));
    }
    let Some(archived) = items.next() else {
        return Err(RedisQueueError::reply(OP, "no count of archived jobs"));
    };
    let archived = num(OP, &bytes(OP, archived)?)?;
    let Some(groups) = items.next() else {
        return Err(RedisQueueError::reply(OP, "no word on groups"));
    };
    let groups = bytes(OP, groups)? == b"1";
    if !items.len().is_multiple_of(4) {
        return Err(RedisQueueError::reply(OP, format!("{} job fields", items.len())));
    }
    let token = if items.len() == 0 { 0 } else { num(OP, &bytes(OP, token)?)? };
    Ok(Fetched { next_due, token, dead, expired, archived, groups, jobs: Entries(items), parked })
}
