//! What the port stores and reports: jobs as written, leased, finished and
//! described, and queue counts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::payload::PayloadFormat;
use crate::vocab::{Headers, JobId, JobStatus, Priority};

/// A job as a producer hands it to a backend: validated and serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Its id (which names its queue).
    pub id: JobId,
    /// The job name that selects the handler.
    pub name: String,
    /// The serialized payload, encoded as [`NewJob::format`] says.
    pub payload: Vec<u8>,
    /// How [`NewJob::payload`] is encoded; a backend stores it as given and
    /// hands it to the worker with this format.
    pub format: PayloadFormat,
    /// Its priority.
    pub priority: Priority,
    /// Retries after the first attempt; `None`: the pool's default.
    pub max_retries: Option<u32>,
    /// Per-attempt timeout; `None`: the pool's default (none).
    pub timeout: Option<Duration>,
    /// Not before this (delayed: [`When::In`], on the backend's clock;
    /// scheduled: [`When::At`]); `None`: now.
    pub run_at: Option<When>,
    /// Deduplication window (see `JobOptions::unique_for`).
    pub unique_for: Option<Duration>,
    /// The caller's own id for the job (see `JobOptions::id`).
    pub caller_id: Option<CallerId>,
    /// The job's key among the waiting jobs of its name and queue (see
    /// `JobOptions::key`).
    pub key: Option<JobKey>,
    /// The group the job is limited and served with (see
    /// `JobOptions::group`, `#[job(group = field)]`).
    pub group: Option<JobGroup>,
    /// Not started by then, the job expires: a fetch that finds it past
    /// this time (and no attempt of it counted yet) ends it
    /// [`JobStatus::Expired`] instead of leasing it. [`When::In`] counts
    /// from the backend's clock when the job is stored, like a delay; `None`:
    /// it never expires.
    pub expires: Option<When>,
    /// When the producer enqueued it.
    pub enqueued_at: SystemTime,
    /// Metadata carried with the job, such as the enqueuing code's trace
    /// context (see [`crate::TracePropagator`]). Usually empty or one entry.
    pub headers: Headers,
}

/// An id the caller chose for a job, unique in its queue for as long as the
/// job is stored (until its retention ends): see `JobOptions::id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    /// The id: 1 to [`MAX_CALLER_ID_LEN`](crate::MAX_CALLER_ID_LEN) bytes.
    pub id: String,
    /// What an enqueue does when a stored job has this id already.
    pub if_exists: IfExists,
}

/// What an enqueue with a [`CallerId`] does when a stored job of the queue
/// has the id already (waiting, running, or ended and not yet past its
/// retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IfExists {
    /// Writes nothing and returns the stored job's id.
    #[default]
    ReturnExisting,
    /// Writes nothing and fails with [`Error::IdExists`](crate::Error::IdExists).
    Fail,
}

/// A key naming at most one waiting job of a name in a queue: see
/// `JobOptions::key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobKey {
    /// The key: 1 to [`MAX_CALLER_ID_LEN`](crate::MAX_CALLER_ID_LEN) bytes.
    pub key: String,
    /// What an enqueue does when a job with the key is waiting.
    pub mode: KeyMode,
}

/// What an enqueue with a [`JobKey`] does when a job of the same name and
/// key is waiting in the queue: pending or scheduled, with no attempt
/// counted yet. (Once an attempt of it started, the key is free: the next
/// enqueue with it stores a new job.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyMode {
    /// Leaves the waiting job as it is and returns its id (deduplication).
    Keep,
    /// Replaces the waiting job's payload, headers, priority, retries,
    /// timeout, due time and expiry with the new job's, keeping its id and
    /// enqueue time, and returns its id (debounce: with a delay, the job
    /// runs once, that long after the last enqueue, with the last payload).
    Replace,
}

/// A job's group: its key, and how many jobs of the group may run at once
/// (the job type's `concurrency`). The backend keeps the bound of the
/// group's latest enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobGroup {
    /// The key: 1 to [`MAX_GROUP_KEY_LEN`](crate::MAX_GROUP_KEY_LEN) bytes.
    pub key: String,
    /// Jobs of the group running at once, across every pool; `None`: no
    /// bound.
    pub concurrency: Option<u32>,
    /// Starts of the group's jobs per window, across every pool; `None`: no
    /// bound.
    pub rate: Option<super::Rate>,
}

/// One group of a queue, as [`QueueInspect::groups`](crate::QueueInspect::groups) lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group's key.
    pub key: String,
    /// Its pending jobs.
    pub pending: u64,
    /// Its running jobs.
    pub running: u64,
    /// How many may run at once (the queue's `group_concurrency`, else its
    /// latest job's `concurrency`); `None`: no bound.
    pub concurrency: Option<u32>,
    /// How many may start per window (the queue's `group_rate`, else its
    /// latest job's `rate`); `None`: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<super::Rate>,
}

/// The longest group key, in bytes.
pub const MAX_GROUP_KEY_LEN: usize = 128;

/// Checks a group key's length (1 to [`MAX_GROUP_KEY_LEN`] bytes), as a
/// sentence saying what is wrong.
pub(crate) fn check_group_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_GROUP_KEY_LEN {
        return Err(format!("a group key is 1 to {MAX_GROUP_KEY_LEN} bytes, not {}", key.len()));
    }
    Ok(())
}

/// The longest caller id or job key, in bytes.
pub const MAX_CALLER_ID_LEN: usize = 256;

/// The longest duration a job option accepts (`delay`, `timeout`,
/// `unique_for`, `expires_in`, a snooze's): 100 years of 365.25 days. Longer ones are refused by
/// [`check_times`](crate::backend::check_times): past it, `now + d` could overflow the clock, and Redis
/// could no longer hold the milliseconds exactly (Lua numbers and sorted set
/// scores are doubles, exact to 2^53).
pub const MAX_JOB_DURATION: Duration = Duration::from_secs(3_155_760_000);

/// The latest time `scheduled_at` accepts, exclusive, in seconds after the
/// Unix epoch: 10000-01-01T00:00:00Z (so any instant of the year 9999).
/// Refused from it on by [`check_times`](crate::backend::check_times), for the reasons of
/// [`MAX_JOB_DURATION`].
pub const MAX_SCHEDULED_AT_SECS: u64 = 253_402_300_800;

/// A time a backend acts on: relative to the backend's own clock, or an
/// absolute time a caller chose.
///
/// Delays, backoffs and hand-back delays travel as [`When::In`] and are
/// added to the backend's clock when it stores them (Redis `TIME` inside the
/// script, the monotonic clock of `MemoryQueue`), so hosts whose clocks
/// disagree never move each other's due times. [`When::At`] is kept for the
/// times a caller names itself (`scheduled_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    /// This long after the backend stores it.
    In(Duration),
    /// At this absolute time.
    At(SystemTime),
}

impl When {
    /// The absolute time this names on a backend whose clock reads `now`.
    ///
    /// A duration past [`MAX_JOB_DURATION`] counts as that maximum, so no
    /// value overflows the clock (enqueues refuse such durations first:
    /// [`check_times`](crate::backend::check_times); a backoff is clamped rather than refused, because a
    /// finished attempt must always be recorded).
    pub fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            When::In(d) => {
                let d = d.min(MAX_JOB_DURATION);
                // `now` is at most a few centuries past the epoch and the
                // clamped duration 100 years: the sum fits every platform's
                // SystemTime, so the fallback is never taken.
                now.checked_add(d).unwrap_or(now)
            }
            When::At(t) => t,
        }
    }
}

impl NewJob {
    /// A job named `name` with these payload bytes (their format read from
    /// them: [`PayloadFormat::of`]), due now, normal priority, and every
    /// option unset (the pool's retries and timeout); set the other fields
    /// with struct update syntax. For writing around the typed API (tools,
    /// tests); a `#[job]` type's `enqueue` fills every field itself.
    ///
    /// ```
    /// use jobs_core::{JobId, NewJob, Priority};
    /// let job = NewJob { priority: Priority::High, ..NewJob::new(JobId::new("email"), "send_welcome", b"{}".to_vec()) };
    /// assert_eq!((job.queue(), job.max_retries), ("email", None));
    /// ```
    pub fn new(id: JobId, name: impl Into<String>, payload: Vec<u8>) -> NewJob {
        NewJob {
            id,
            name: name.into(),
            format: PayloadFormat::of(&payload),
            payload,
            priority: Priority::Normal,
            max_retries: None,
            timeout: None,
            run_at: None,
            unique_for: None,
            caller_id: None,
            key: None,
            group: None,
            expires: None,
            enqueued_at: SystemTime::now(),
            headers: Headers::default(),
        }
    }

    /// The queue it goes to.
    pub fn queue(&self) -> &str {
        self.id.queue()
    }
}

/// One attempt of a job, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptInfo {
    /// 1-based.
    pub attempt: u32,
    /// When a worker took it.
    pub started_at: SystemTime,
    /// When it ended (absent while running).
    pub finished_at: Option<SystemTime>,
    /// Why it failed (absent on success); for a snooze, its reason.
    pub error: Option<String>,
    /// Set when this run snoozed ([`JobError::retry_in`](crate::JobError::retry_in)):
    /// how long it asked to wait. A snooze is not an attempt: the next run
    /// has the same [`attempt`](Self::attempt) number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_for: Option<Duration>,
}

/// The most attempts a job's stored log keeps (see
/// [`JobInfo::attempt_log`]): the first attempt and the 49 most recent. A job
/// with many retries, each with an error of up to 4 KiB, stays bounded.
pub const ATTEMPT_LOG_MAX: usize = 50;

/// Everything known about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Its id.
    pub id: JobId,
    /// Its job name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Its priority.
    pub priority: Priority,
    /// Where it is in its lifecycle.
    pub status: JobStatus,
    /// The payload as JSON.
    pub payload: serde_json::Value,
    /// Attempts started so far (a job handed back at shutdown does not count).
    pub attempts: u32,
    /// Retries after the first attempt, when set on the job.
    pub max_retries: Option<u32>,
    /// The attempts with their errors, oldest first: at most
    /// [`ATTEMPT_LOG_MAX`] of them, the first attempt and the most recent
    /// ones. The attempts left out between them are counted in
    /// [`attempts_omitted`](Self::attempts_omitted); [`attempts`](Self::attempts)
    /// stays exact.
    pub attempt_log: Vec<AttemptInfo>,
    /// Attempts left out of `attempt_log` (between its first entry and the
    /// rest) to bound what is stored per job.
    #[serde(default)]
    pub attempts_omitted: u32,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
    /// When it is due (scheduled, delayed or retrying).
    pub run_at: Option<SystemTime>,
    /// When it finished (succeeded, dead, cancelled).
    pub finished_at: Option<SystemTime>,
    /// The job function's `Ok` value as JSON, when it returned one.
    pub result: Option<serde_json::Value>,
    /// The metadata the producer attached (trace context).
    #[serde(default)]
    pub headers: Headers,
    /// How many times it snoozed ([`JobError::retry_in`](crate::JobError::retry_in));
    /// not attempts.
    #[serde(default)]
    pub snoozes: u32,
    /// When it expires if no attempt of it has counted by then (see
    /// [`JobStatus::Expired`]).
    #[serde(default)]
    pub expires_at: Option<SystemTime>,
    /// The last progress a running attempt reported
    /// ([`JobContext::progress`](crate::JobContext::progress)); kept when
    /// the job ends.
    #[serde(default)]
    pub progress: Option<super::Progress>,
    /// The id its producer chose (`JobOptions::id`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Its key (`JobOptions::key`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its group (`JobOptions::group`, `#[job(group = ..)]`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Whether the running attempt's handler is known to have started.
    /// A pool takes jobs a little ahead of its free workers and reports a
    /// handler's start with its next acknowledgements, so a running job
    /// shows `false` while it waits in its pool for a worker, and for the
    /// first milliseconds of its handler. Always `false` for a job that is
    /// not running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handler_started: bool,
}

impl JobInfo {
    /// The workflow or batch the job belongs to and its name in it, from
    /// its [`FLOW_HEADER`](crate::FLOW_HEADER) (`None` outside any).
    pub fn flow(&self) -> Option<(&str, &str)> {
        self.headers.get(super::FLOW_HEADER)?.split_once(' ')
    }

    /// The last failed attempt's error, if any (a snooze's reason is not an
    /// error).
    pub fn last_error(&self) -> Option<&str> {
        self.attempt_log.iter().rev().filter(|a| a.snoozed_for.is_none()).find_map(|a| a.error.as_deref())
    }
}

/// Counts for one queue and priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Waiting to be taken now.
    pub pending: u64,
    /// Waiting for their time.
    pub scheduled: u64,
    /// Leased by a worker.
    pub running: u64,
    /// Waiting for a retry.
    pub retrying: u64,
    /// In the dead-letter set.
    pub dead: u64,
    /// Finished successfully (since the backend's counters started).
    pub processed: u64,
    /// Failed attempts (since the backend's counters started).
    pub failed: u64,
    /// Jobs that expired before they started (since the backend's counters
    /// started).
    #[serde(default)]
    pub expired: u64,
}

impl Counts {
    /// Adds another set of counts to this one.
    pub fn add(&mut self, o: &Counts) {
        self.pending += o.pending;
        self.scheduled += o.scheduled;
        self.running += o.running;
        self.retrying += o.retrying;
        self.dead += o.dead;
        self.processed += o.processed;
        self.failed += o.failed;
        self.expired += o.expired;
    }
}

/// The counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Per priority.
    pub by_priority: BTreeMap<Priority, Counts>,
    /// Whether workers are held off the queue.
    pub paused: bool,
    /// How often jobs that could have started waited for a concurrency
    /// bound: a fetch that filled the room `max_running` left while jobs
    /// still waited, or a group that reached its `concurrency` with jobs
    /// still pending (since the backend's counters started).
    #[serde(default)]
    pub limited: u64,
    /// How often jobs waited for a rate: a fetch that used up the queue's
    /// `rate` window while jobs still waited, a group held back by its
    /// `rate`, or a job that returned `JobError::rate_limited` (since the
    /// backend's counters started).
    #[serde(default)]
    pub throttled: u64,
    /// Whether the queue's circuit breaker is open or probing (its jobs do
    /// not start as usual).
    #[serde(default)]
    pub breaker_open: bool,
    /// Times the queue's breaker opened (since the backend's counters
    /// started).
    #[serde(default)]
    pub breaker_opened: u64,
    /// Groups of the queue whose own breaker (`QueuePolicy::group_breaker`)
    /// is open or waits for its probe to end.
    #[serde(default)]
    pub group_breakers_open: u64,
    /// Times a group's breaker opened (since the backend's counters
    /// started).
    #[serde(default)]
    pub group_breakers_opened: u64,
    /// Jobs an enqueue leased to an idle pool in its own step, one hop
    /// from the producer to the pool (since the backend's counters
    /// started). Redis only: `MemoryQueue`'s pools fetch in the producer's
    /// process, and count none.
    #[serde(default)]
    pub handed: u64,
    /// How many partitions the queue is spread over (a Redis queue's
    /// `partitions`); these counts are their sums. 0 or 1: one, the queue
    /// is not partitioned.
    #[serde(default, skip_serializing_if = "one_partition")]
    pub partitions: u16,
}

fn one_partition(n: &u16) -> bool {
    *n <= 1
}

impl QueueCounts {
    /// Adds another part's counts to these (another partition's, or the
    /// same queue's on another backend): counts and gauges add up; the
    /// queue is paused, or its breaker open, when any part's is.
    pub fn merge(&mut self, other: QueueCounts) {
        // Every field named: a new one must say how it merges.
        let QueueCounts {
            by_priority,
            paused,
            limited,
            throttled,
            breaker_open,
            breaker_opened,
            group_breakers_open,
            group_breakers_opened,
            handed,
            partitions,
        } = other;
        self.paused |= paused;
        self.limited += limited;
        self.throttled += throttled;
        self.breaker_open |= breaker_open;
        self.breaker_opened += breaker_opened;
        self.group_breakers_open += group_breakers_open;
        self.group_breakers_opened += group_breakers_opened;
        self.handed += handed;
        self.partitions = self.partitions.max(partitions);
        for (p, c) in by_priority {
            self.by_priority.entry(p).or_default().add(&c);
        }
    }

    /// All priorities added up.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.by_priority.values() {
            t.add(c);
        }
        t
    }
}

/// Counts of every queue the backend knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Per queue name.
    pub queues: BTreeMap<String, QueueCounts>,
}

impl QueueStats {
    /// One queue's counts, all priorities added up (zero when unknown).
    pub fn queue(&self, name: &str) -> Counts {
        self.queues.get(name).map(QueueCounts::total).unwrap_or_default()
    }

    /// One queue and priority.
    pub fn get(&self, name: &str, p: Priority) -> Counts {
        self.queues.get(name).and_then(|q| q.by_priority.get(&p)).copied().unwrap_or_default()
    }
}

/// Limits of one queue (configuration `queues:` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePolicy {
    /// Refuse enqueues past this many pending and scheduled jobs (retries are
    /// never refused).
    pub max_jobs: Option<u64>,
    /// Accept only these priorities; empty: all.
    pub priority_levels: Vec<Priority>,
    /// Run at most this many of the queue's jobs at once, across every pool
    /// and process (at least 1; `None`: no bound but the pools' own). A
    /// fetch leases no more than the room left; a job ending frees its slot
    /// and wakes the pools waiting for one.
    #[serde(default)]
    pub max_running: Option<u64>,
    /// Start at most this many of the queue's jobs per window, across
    /// every pool (a sliding window); `None`: no bound.
    #[serde(default)]
    pub rate: Option<super::Rate>,
    /// Run at most this many jobs of one group at once, for every group of
    /// the queue (at least 1). Set, it overrides the jobs' own
    /// `concurrency`, so an operator can change it at run time; `None`:
    /// each job's own bound.
    #[serde(default)]
    pub group_concurrency: Option<u32>,
    /// Start at most this many jobs of one group per window, for every group
    /// of the queue. Set, it overrides the jobs' own `rate`; `None`: each
    /// job's own.
    #[serde(default)]
    pub group_rate: Option<super::Rate>,
    /// Stop starting the queue's jobs for a while when they keep failing
    /// (see [`Breaker`](super::Breaker)); `None`: no breaker.
    #[serde(default)]
    pub breaker: Option<super::Breaker>,
    /// A breaker for each group of the queue, on its own: a group whose
    /// jobs keep failing stops starting them for a while, then tries one,
    /// while the queue's other groups run on (see [`Breaker`](super::Breaker);
    /// ungrouped jobs are not counted). `None`: no group breakers.
    #[serde(default)]
    pub group_breaker: Option<super::Breaker>,
    /// The queue's own bounds on its finished jobs, each overriding the
    /// backend's [`Retention`] field of its name; unset fields keep the
    /// backend's.
    #[serde(default)]
    pub retention: QueueRetention,
    /// Whether every finished job the retention deletes is first appended
    /// to the queue's archive backlog (see [`ArchiveBacklog`](super::ArchiveBacklog)),
    /// for an archiver to write to a sink.
    #[serde(default)]
    pub archive: bool,
}

impl QueuePolicy {
    /// Refuses limits that make no sense (`max_jobs` or `max_running` of 0),
    /// as [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub fn check(&self) -> Result<(), crate::Error> {
        if self.max_jobs == Some(0) {
            return Err(crate::Error::InvalidArgument("`max_jobs` must be at least 1 (`None` for no bound)".into()));
        }
        if let Some(r) = &self.rate {
            r.check().map_err(|e| crate::Error::InvalidArgument(format!("`rate`: {e}")))?;
        }
        if let Some(r) = &self.group_rate {
            r.check().map_err(|e| crate::Error::InvalidArgument(format!("`group_rate`: {e}")))?;
        }
        if let Some(b) = &self.breaker {
            b.check().map_err(|e| crate::Error::InvalidArgument(format!("`breaker`: {e}")))?;
        }
        if let Some(b) = &self.group_breaker {
            b.check().map_err(|e| crate::Error::InvalidArgument(format!("`group_breaker`: {e}")))?;
        }
        if self.group_concurrency == Some(0) {
            return Err(crate::Error::InvalidArgument(
                "`group_concurrency` must be at least 1 (`None` for each job's own bound)".into(),
            ));
        }
        if self.max_running == Some(0) {
            return Err(crate::Error::InvalidArgument(
                "`max_running` must be at least 1 (`None` for no bound; pause the queue to run none)".into(),
            ));
        }
        Ok(())
    }
}

/// One queue's overrides of the backend's [`Retention`]: each field set
/// replaces the backend's field of that name for this queue only.
///
/// Its serde form (configuration `queues.<q>.retention`, the HTTP API)
/// writes durations as text (`"1h"`, `"7days"`) and refuses unknown keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueRetention {
    /// Succeeded, cancelled and expired jobs, by age.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<Duration>,
    /// Succeeded, cancelled and expired jobs, by count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_max: Option<usize>,
    /// Dead jobs, by age.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub dead_age: Option<Duration>,
    /// Dead jobs, by count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_max: Option<usize>,
}

impl QueueRetention {
    /// The bounds that apply to the queue: its own fields, else `base`'s.
    pub fn over(&self, base: &Retention) -> Retention {
        Retention {
            succeeded: self.succeeded.unwrap_or(base.succeeded),
            succeeded_max: self.succeeded_max.unwrap_or(base.succeeded_max),
            dead_age: self.dead_age.unwrap_or(base.dead_age),
            dead_max: self.dead_max.unwrap_or(base.dead_max),
        }
    }

    /// Whether no field is set (the backend's bounds apply).
    pub fn is_empty(&self) -> bool {
        *self == QueueRetention::default()
    }
}

/// Optional durations as text the `humantime` way, like the rest of the
/// configuration (parsed inside the deserializer, so that errors carry the
/// key's path).
mod opt_duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"1h\" or \"7days\"")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            humantime::parse_duration(s.trim())
                .map(Some)
                .map_err(|e| E::custom(format!("`{s}` is not a duration such as \"1h\" or \"7days\" ({e})")))
        }
    }
}

/// How long finished jobs are kept. Nothing grows without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded, cancelled and expired jobs (and their results). Default
    /// 24 h.
    pub succeeded: Duration,
    /// Succeeded, cancelled and expired jobs per queue, by count (oldest dropped
    /// first), whatever their age: a busy queue keeps at most this many
    /// payloads and results. Default 100,000. Applied by fetches, at most
    /// 1,000 records per queue and fetch, like every sweep.
    pub succeeded_max: usize,
    /// Dead jobs, by age. Default 7 days.
    pub dead_age: Duration,
    /// Dead jobs per queue, by count (oldest dropped first). Default 10,000.
    pub dead_max: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            succeeded: Duration::from_secs(24 * 3600),
            succeeded_max: 100_000,
            dead_age: Duration::from_secs(7 * 24 * 3600),
            dead_max: 10_000,
        }
    }
}

/// What [`JobQueue::cancel`](super::QueueAdmin::cancel) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelResult {
    /// It was pending or scheduled: removed and marked cancelled.
    Cancelled,
    /// It is running: its worker is told through `JobContext::cancelled()`
    /// and it will end cancelled.
    Requested,
    /// It had already finished; nothing changed.
    AlreadyFinished(JobStatus),
}
