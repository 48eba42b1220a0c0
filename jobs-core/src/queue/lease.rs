//! What only backends and the worker exchange: times a backend acts on,
//! the limits every enqueue path checks, fetch requests, leased jobs and
//! finished attempts. Applications never name these; they are re-exported
//! from [`crate::backend`].

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::payload::PayloadFormat;
use crate::vocab::{Headers, JobId, JobStatus, Priority};

use super::model::{NewJob, When, MAX_CALLER_ID_LEN, MAX_JOB_DURATION, MAX_SCHEDULED_AT_SECS};

/// The payload size backends accept by default: 512 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 512 * 1024;

/// Refuses a batch in which any payload is larger than `limit` bytes; a
/// backend calls it before writing anything.
pub fn check_payload_sizes(jobs: &[NewJob], limit: usize) -> Result<(), Error> {
    match jobs.iter().find(|j| j.payload.len() > limit) {
        Some(j) => Err(Error::PayloadTooLarge { size: j.payload.len(), limit }),
        None => Ok(()),
    }
}

/// Refuses a batch in which any job's times are out of range: a `delay`,
/// `timeout`, `unique_for` or `expires_in` longer than [`MAX_JOB_DURATION`],
/// an `expires_in` of zero (it would expire before any worker could take
/// it), or a
/// `scheduled_at` in the year 10000 or later ([`MAX_SCHEDULED_AT_SECS`]). Every enqueue path calls
/// it (both backends' `enqueue_many` and schedule ticks) before writing
/// anything; the error is [`Error::InvalidArgument`] naming the option, the
/// job and the maximum.
pub fn check_times(jobs: &[NewJob]) -> Result<(), Error> {
    for j in jobs {
        let too_long = |option: &str, d: Duration| {
            Error::InvalidArgument(format!(
                "`{option}` of {d:?} for job `{}` is longer than the maximum of 100 years ({} s)",
                j.name,
                MAX_JOB_DURATION.as_secs()
            ))
        };
        match j.run_at {
            Some(When::In(d)) if d > MAX_JOB_DURATION => return Err(too_long("delay", d)),
            Some(When::At(t))
                if t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() >= MAX_SCHEDULED_AT_SECS =>
            {
                let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
                return Err(Error::InvalidArgument(format!(
                    "`scheduled_at` of {secs} s after the Unix epoch for job `{}` is past the maximum: \
                     the end of the year 9999 ({MAX_SCHEDULED_AT_SECS} s)",
                    j.name
                )));
            }
            _ => {}
        }
        if let Some(d) = j.timeout.filter(|d| *d > MAX_JOB_DURATION) {
            return Err(too_long("timeout", d));
        }
        if let Some(d) = j.unique_for.filter(|d| *d > MAX_JOB_DURATION) {
            return Err(too_long("unique_for", d));
        }
        match j.expires {
            // A delay plus its expiry may reach twice the bound; one bound
            // keeps every time the scripts compute exact.
            Some(When::In(d)) if d > MAX_JOB_DURATION => return Err(too_long("expires_in", d)),
            Some(When::In(d)) if d.is_zero() => {
                return Err(Error::InvalidArgument(format!(
                    "`expires_in` of zero for job `{}`: it would expire before any worker could take it; \
                     give it some time, or no expiry",
                    j.name
                )))
            }
            Some(When::At(t))
                if t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() >= MAX_SCHEDULED_AT_SECS =>
            {
                return Err(Error::InvalidArgument(format!(
                    "the expiry of job `{}` is past the end of the year 9999",
                    j.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a batch with a caller id or key that is empty or longer than
/// [`MAX_CALLER_ID_LEN`](crate::MAX_CALLER_ID_LEN), a group key empty or longer than
/// [`MAX_GROUP_KEY_LEN`](crate::MAX_GROUP_KEY_LEN) or with a concurrency of 0, or in which two jobs share a caller id (in one
/// queue) or a key (with one name, in one queue): which of them would win
/// is not something a batch should leave to chance. Both backends'
/// `enqueue_many` call it before writing anything.
pub fn check_idents(jobs: &[NewJob]) -> Result<(), Error> {
    let mut ids = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();
    for j in jobs {
        if let Some(c) = &j.caller_id {
            check_ident_len("id", j, &c.id)?;
            if !ids.insert((j.queue(), c.id.as_str())) {
                return Err(Error::InvalidArgument(format!(
                    "two jobs of the batch have the id `{}` in queue `{}`",
                    c.id,
                    j.queue()
                )));
            }
        }
        if let Some(g) = &j.group {
            super::model::check_group_key(&g.key)
                .map_err(|e| Error::InvalidArgument(format!("the group of job `{}`: {e}", j.name)))?;
            if let Some(r) = &g.rate {
                r.check().map_err(|e| Error::InvalidArgument(format!("the group rate of job `{}`: {e}", j.name)))?;
            }
            if g.concurrency == Some(0) {
                return Err(Error::InvalidArgument(format!(
                    "the group concurrency of job `{}` must be at least 1 (`None` for no bound)",
                    j.name
                )));
            }
        }
        if let Some(k) = &j.key {
            check_ident_len("key", j, &k.key)?;
            if !keys.insert((j.queue(), j.name.as_str(), k.key.as_str())) {
                return Err(Error::InvalidArgument(format!(
                    "two `{}` jobs of the batch have the key `{}` in queue `{}`",
                    j.name,
                    k.key,
                    j.queue()
                )));
            }
        }
    }
    Ok(())
}

fn check_ident_len(what: &str, j: &NewJob, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > MAX_CALLER_ID_LEN {
        return Err(Error::InvalidArgument(format!(
            "the {what} of job `{}` must be 1 to {MAX_CALLER_ID_LEN} bytes, not {}",
            j.name,
            value.len()
        )));
    }
    Ok(())
}

/// A fetch: up to `max` jobs from `queues`, leased for `lease`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The queues in the order to take them: a backend takes from the first
    /// queue with work, highest priority first. (The pool varies this order
    /// for weighted fetching.)
    pub queues: Vec<String>,
    /// At most this many jobs.
    pub max: usize,
    /// How long a taken job stays leased without a heartbeat.
    pub lease: Duration,
    /// Retries for jobs that carry none: used when an expired lease is
    /// reclaimed, to decide whether the job is out of attempts.
    pub default_max_retries: u32,
    /// The crash budget: how many times a job may lose its lease before its
    /// handler was known to start (see [`Outcome::Started`]) until it ends
    /// dead. Such a loss is not an attempt: the job never ran.
    pub max_crashes: u32,
}

/// The default crash budget ([`FetchRequest::max_crashes`]).
pub const DEFAULT_MAX_CRASHES: u32 = 10;

/// How many times a job may snooze by default ([`Outcome::Snooze::limit`]).
/// A job that polls every minute waits up to about an hour and a half
/// before it ends dead; raise it for longer waits.
pub const DEFAULT_MAX_SNOOZES: u32 = 100;

/// The error of a job that snoozed more often than `limit` allows; `reason`
/// is its last snooze's. (Both backends end such a job dead with it.)
pub fn snooze_limit_error(limit: u32, reason: &str) -> String {
    crate::error::bounded_message(format!(
        "snoozed more than {limit} times (the pool's max_snoozes): it would wait forever; last reason: {reason}"
    ))
}

/// The most expired jobs one fetch ends per queue before it returns: a
/// backlog full of expired jobs is cleared in steps, and the fetch says to
/// look again at once ([`Fetched::next_due`] of zero) so that the jobs behind
/// them are not left waiting.
pub const EXPIRE_BATCH: usize = 1000;

/// A job taken by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    /// Its id.
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// The serialized payload, encoded as [`LeasedJob::format`] says.
    pub payload: Vec<u8>,
    /// How [`LeasedJob::payload`] is encoded: the generated code decodes it
    /// with this format.
    pub format: PayloadFormat,
    /// Its priority.
    pub priority: Priority,
    /// This attempt, 1-based.
    pub attempt: u32,
    /// Retries set on the job, if any.
    pub max_retries: Option<u32>,
    /// Per-attempt timeout set on the job, if any.
    pub timeout: Option<Duration>,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
    /// The lease's fencing token: finishing with a stale token is refused.
    pub token: u64,
    /// The metadata the producer attached.
    pub headers: Headers,
    /// How many times the job lost its lease before its handler was known to
    /// start (its workers died first). A pool runs such a job only once its
    /// start is recorded, and one at a time, so that a job that kills its
    /// process is told from the jobs that died beside it.
    pub crashes: u32,
}

/// What [`JobQueue::fetch`](super::JobQueue::fetch) returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// The leased jobs, in the order to start them.
    pub jobs: Vec<LeasedJob>,
    /// How long from the fetch until a scheduled or retrying job, or an
    /// expired lease, will need the fetcher, when there is one: the
    /// fetcher's timer. Measured on the backend's clock and handed over as a
    /// duration, so the fetcher's own wall clock plays no part.
    pub next_due: Option<Duration>,
    /// Queues of the request that could not be fetched from, with why. The
    /// jobs leased from the other queues are in `jobs` all the same: one
    /// failing queue (a node failing over, a missing ACL permission) never
    /// strands work taken from another. A backend returns `Err` only when
    /// nothing could be fetched at all.
    pub failed: Vec<QueueFailure>,
    /// Jobs this fetch found past their expiry and ended
    /// [`JobStatus::Expired`] instead of leasing them.
    pub expired: Vec<ExpiredJob>,
    /// Jobs this fetch declared dead while it reclaimed expired leases: the
    /// pool that ran them died, and they were out of attempts (or of their
    /// crash budget). Nobody else learns of these deaths, so the fetching
    /// pool runs its `on_dead` hooks for them; a backend lists each such
    /// death in exactly one fetch's answer.
    pub dead: Vec<DeadJob>,
    /// Queues whose archive backlog this fetch's retention added to: a
    /// pool's archiver can write them now rather than at its next interval.
    pub archived: Vec<String>,
    /// Whether a queue this fetch looked at serves groups in turn (it has
    /// held a grouped job): a pool whose places ahead follow its pace then
    /// takes at most one job per worker ahead of its workers, so that a
    /// group whose jobs arrive later waits behind few jobs of the others.
    /// A backend that does not look sets it `false`.
    pub groups: bool,
}

impl Fetched {
    /// Adds what `other` fetched to this answer: its jobs after these, the
    /// earlier of the two due times.
    pub fn absorb(&mut self, other: Fetched) {
        self.jobs.extend(other.jobs);
        self.next_due = match (self.next_due, other.next_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.failed.extend(other.failed);
        self.expired.extend(other.expired);
        self.dead.extend(other.dead);
        self.archived.extend(other.archived);
        self.groups |= other.groups;
    }
}

/// A job a fetch ended expired ([`Fetched::expired`]), for metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredJob {
    /// Its id (which names its queue).
    pub id: JobId,
    /// Its job name.
    pub name: String,
}

/// A job that ended in the dead-letter set, as a pool's
/// [`on_dead`](crate::WorkerPoolBuilder::on_dead) hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadJob {
    /// Its id (which names its queue).
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// The attempts it had, the last one included.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
}

impl DeadJob {
    /// A dead job's report (backends build these for [`Fetched::dead`]).
    pub fn new(id: JobId, name: impl Into<String>, attempts: u32, error: impl Into<String>) -> Self {
        DeadJob { id, name: name.into(), attempts, error: error.into() }
    }
}

/// One queue that a fetch could not serve, in [`Fetched::failed`].
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFailure {
    /// The queue's name.
    pub queue: String,
    /// What went wrong, as the backend's error displays it.
    pub error: String,
}

/// How an attempt ended, as a worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job succeeded; `result` is its `Ok` value as JSON, if any.
    Succeeded {
        /// Serialized result.
        result: Option<Vec<u8>>,
    },
    /// The attempt failed; run again at `at` (a backoff is
    /// [`When::In`]: counted from the backend's clock).
    Retry {
        /// Why.
        error: String,
        /// When.
        at: When,
    },
    /// The attempt failed for good: dead-letter set.
    Dead {
        /// Why.
        error: String,
    },
    /// Not an end: the handler is starting under this lease. From then on a
    /// lost lease counts as an attempt (the job ran); before it, as a crash
    /// of the job's worker, against [`FetchRequest::max_crashes`]. The job
    /// stays running; the result is `Applied(Running)`, or `Stale`.
    Started,
    /// The job snoozed ([`JobError::retry_in`](crate::JobError::retry_in)):
    /// not an attempt (the count goes back as for `Release`), recorded in
    /// its attempt log with `reason` and its duration, and due again at
    /// `at`. The backend counts the job's snoozes; the one past `limit`
    /// ends it dead with [`snooze_limit_error`] instead.
    Snooze {
        /// Due again then ([`When::In`]: on the backend's clock).
        at: When,
        /// Why, as the job said.
        reason: String,
        /// The most snoozes the job may take (the pool's `max_snoozes`).
        limit: u32,
        /// The job's group waits until `at` too: no job of it starts
        /// before then ([`JobError::rate_limited`](crate::JobError::rate_limited)).
        holds_group: bool,
    },
    /// Handed back without counting the attempt (shutdown, or a name this
    /// pool does not know): pending again at `at` (or at once).
    Release {
        /// Not before.
        at: Option<When>,
        /// Why, recorded but not counted as a failure.
        reason: String,
    },
}

/// One finished attempt, for [`JobQueue::finish`](super::JobQueue::finish).
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The job.
    pub id: JobId,
    /// Its lease token.
    pub token: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// What the backend did with one [`Finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishResult {
    /// Recorded, with the job's status afterwards.
    Applied(JobStatus),
    /// Refused: the lease had expired and the job was taken again (or is
    /// gone); the newer attempt wins.
    Stale,
}

/// The state of a lease after [`JobQueue::extend_leases`](super::JobQueue::extend_leases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseState {
    /// Still ours, extended.
    Held,
    /// Ours, but someone asked to cancel the job: signal it.
    CancelRequested,
    /// No longer ours: the job's result will be refused.
    Lost,
}
