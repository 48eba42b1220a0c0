//! The words every module of the crate speaks: [`JobId`], [`Priority`],
//! [`JobStatus`] and [`Headers`]. This module names no other one, so that
//! errors, the storage port, tracing and job definitions can all name these
//! without naming each other. Reading them from text fails with an
//! [`Error`](crate::Error), which names them: those parsers are in
//! [`crate::parse`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// How urgent a job is. Within one queue a worker always takes a job of a
/// higher priority before any job of a lower one.
///
/// ```
/// use jobs_core::Priority;
/// assert!(Priority::Critical > Priority::High);
/// assert_eq!("high".parse::<Priority>().unwrap(), Priority::High);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Runs when nothing more urgent is pending.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Runs before normal and low jobs.
    High,
    /// Runs before every other job of its queue.
    Critical,
}

impl Priority {
    /// Every priority, most urgent first: the order in which workers take them.
    pub const ALL: [Priority; 4] = [Priority::Critical, Priority::High, Priority::Normal, Priority::Low];

    /// The lowercase name used in configuration, metrics and storage keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// Index in [`Priority::ALL`] (0 = critical): the storage slot.
    pub const fn rank(self) -> usize {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of one enqueued job.
///
/// It is a ULID (so ids sort by creation time) together with the job's queue,
/// so a backend finds the job's data without any cross-queue index (on Redis
/// Cluster all keys of a queue live in one slot). Its text form is
/// `QUEUE:ULID`, e.g. `email:01JDQ6V5Z3C8T4M9N2K7R1W0XY`.
///
/// A job of a queue spread over several partitions (a Redis queue's
/// `partitions`) also carries the partition it is stored in, so it is still
/// found with no index: its text form is then `QUEUE~PARTITION:ULID`
/// (`email~2:01JDQ…`). Partition 0 is the queue's own, unpartitioned
/// layout, and is not written.
///
/// ```
/// use jobs_core::JobId;
/// let id = JobId::new("email");
/// let back: JobId = id.to_string().parse().unwrap();
/// assert_eq!(id, back);
/// assert_eq!(back.queue(), "email");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JobId {
    ulid: Ulid,
    /// Shared, not copied, when ids are cloned or made in bulk
    /// ([`JobId::from_shared_parts`]).
    queue: Arc<str>,
    /// Which of the queue's partitions stores the job (0: the queue's own).
    partition: u16,
}

impl JobId {
    /// A new id for a job on `queue`, created now. The ids one process
    /// creates only ever grow, within a millisecond too: ids made one after
    /// another sort in the order they were made.
    pub fn new(queue: &str) -> Self {
        static MADE: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
        // The generator is valid in any state: a poisoned lock is taken over.
        let next = MADE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).generate();
        // An error means 2^80 ids in one millisecond: a random one is as good.
        JobId { ulid: next.unwrap_or_else(|_| Ulid::new()), queue: queue.into(), partition: 0 }
    }

    /// Builds an id from its parts.
    pub fn from_parts(queue: &str, ulid: Ulid) -> Self {
        JobId { ulid, queue: queue.into(), partition: 0 }
    }

    /// [`JobId::from_parts`] sharing `queue`'s text rather than copying it:
    /// ids of one queue made in bulk (a page of events, a fetched batch)
    /// then share one allocation.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jobs_core::JobId;
    /// let queue: Arc<str> = Arc::from("email");
    /// let first = JobId::new("email");
    /// let same = JobId::from_shared_parts(&queue, first.ulid());
    /// assert_eq!(same, first);
    /// ```
    pub fn from_shared_parts(queue: &Arc<str>, ulid: Ulid) -> Self {
        JobId { ulid, queue: Arc::clone(queue), partition: 0 }
    }

    /// The queue the job was enqueued on.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Which partition of its queue stores the job: 0 for a queue that is
    /// not partitioned.
    pub fn partition(&self) -> u16 {
        self.partition
    }

    /// The same job id, stored in partition `partition` of its queue (a
    /// backend that spreads a queue over partitions places each job in one).
    ///
    /// ```
    /// use jobs_core::JobId;
    /// let id = JobId::new("email").in_partition(2);
    /// assert_eq!(id.partition(), 2);
    /// assert_eq!(id.queue(), "email");
    /// assert!(id.to_string().starts_with("email~2:"));
    /// assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
    /// ```
    #[must_use]
    pub fn in_partition(self, partition: u16) -> Self {
        JobId { partition, ..self }
    }

    /// The time-ordered unique part.
    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// When the id was created (millisecond precision).
    pub fn created_at(&self) -> SystemTime {
        self.ulid.datetime()
    }
}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JobId {
    /// Creation time first, so sorting ids sorts jobs by age.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ulid
            .cmp(&other.ulid)
            .then_with(|| self.queue.cmp(&other.queue))
            .then_with(|| self.partition.cmp(&other.partition))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            0 => write!(f, "{}:{}", self.queue, self.ulid),
            p => write!(f, "{}~{p}:{}", self.queue, self.ulid),
        }
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Job metadata: string keys and values, kept in order.
pub type Headers = BTreeMap<String, String>;

/// The lifecycle state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting to be taken.
    Pending,
    /// Waiting for its time (delayed, scheduled).
    Scheduled,
    /// Leased by a worker.
    Running,
    /// Failed, waiting for its next attempt.
    Retrying,
    /// Finished successfully.
    Succeeded,
    /// Out of attempts or failed permanently: in the dead-letter set.
    Dead,
    /// Cancelled before or while it ran.
    Cancelled,
    /// Its expiry (`JobOptions::expires_in`, `#[job(expires = "..")]`) passed
    /// before any attempt of it counted: it never ran and never will.
    Expired,
}

impl JobStatus {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Expired => "expired",
        }
    }

    /// Succeeded, dead, cancelled or expired: nothing more will happen to it
    /// unless an operator retries a dead job.
    pub const fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled | JobStatus::Expired)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    /// Some member has not ended (or a batch is still open).
    Running,
    /// Every member succeeded.
    Succeeded,
    /// Every member ended, and some did not succeed.
    Failed,
    /// Cancelled: no member not yet running will run.
    Cancelled,
}

impl FlowStatus {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Running => "running",
            FlowStatus::Succeeded => "succeeded",
            FlowStatus::Failed => "failed",
            FlowStatus::Cancelled => "cancelled",
        }
    }

    /// Succeeded, failed or cancelled.
    pub const fn is_ended(self) -> bool {
        !matches!(self, FlowStatus::Running)
    }
}
