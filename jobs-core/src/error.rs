//! Errors: [`Error`] for the library's calls, [`JobError`] for a job's
//! failure, [`ValidationError`] for a payload that breaks its rules.

use std::fmt;
use std::time::Duration;

use crate::vocab::{JobId, JobStatus, Priority};

/// The error of every fallible call of the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload broke a `#[validate(..)]` rule; nothing was written.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// One job of a batch ([`JobExt::enqueue_all`](crate::JobExt::enqueue_all))
    /// could not be enqueued (its payload broke a rule, or could not be
    /// serialized); nothing of the batch was written.
    #[error("job {index} of the batch (counting from 0): {source}")]
    InvalidBatchItem {
        /// Its position in the batch, from 0.
        index: usize,
        /// Why it was refused: [`Error::Validation`] with every broken rule,
        /// [`Error::Serialize`] or [`Error::InvalidQueueName`].
        source: Box<Error>,
    },
    /// An [`EnqueueHook`](crate::hooks::EnqueueHook) of a
    /// [`Hooked`](crate::hooks::Hooked) queue refused a job; nothing of its
    /// batch was written.
    #[error("job {index} of the batch (`{name}`) was refused by an enqueue hook: {source}")]
    EnqueueRefused {
        /// Its position in the batch, from 0.
        index: usize,
        /// Its job name.
        name: String,
        /// The hook's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The payload or result could not be serialized.
    #[error("could not serialize the job: {0}")]
    Serialize(String),
    /// A queue name with characters other than letters, digits, `_ - .`, or
    /// empty, or longer than 64.
    #[error("invalid queue name `{0}`: use 1 to 64 letters, digits, `_`, `-` or `.`")]
    InvalidQueueName(String),
    /// The queue holds `max_jobs` pending and scheduled jobs already.
    #[error("queue `{queue}` is full: it holds its limit of {max_jobs} pending and scheduled jobs")]
    QueueFull {
        /// The queue.
        queue: String,
        /// Its configured bound.
        max_jobs: u64,
    },
    /// The queue's `priority_levels` do not include this priority.
    #[error("queue `{queue}` does not accept priority `{priority}`: it accepts {}", list(accepted))]
    PriorityNotAccepted {
        /// The queue.
        queue: String,
        /// The refused priority.
        priority: Priority,
        /// What the queue accepts.
        accepted: Vec<Priority>,
    },
    /// A job of the queue has the caller id already, and the enqueue asked
    /// to fail then ([`IfExists::Fail`](crate::IfExists::Fail)). Nothing was written.
    #[error("a job with id `{caller_id}` is stored in queue `{}` already ({existing}): nothing was enqueued", existing.queue())]
    IdExists {
        /// The id asked for.
        caller_id: String,
        /// The stored job that has it.
        existing: JobId,
    },
    /// No job with this id is stored (never was, or it was purged).
    #[error("no job `{0}`")]
    NotFound(JobId),
    /// An event stream missed events of the queue: the backend's bounded
    /// history dropped them before they were read, or recording was off
    /// for a while (no listener, or the backend was unreachable). The
    /// stream goes on after it.
    #[error("events of queue `{queue}` were missed (history exceeded or recording lapsed); read the jobs' state to catch up")]
    EventsMissed {
        /// The queue.
        queue: String,
    },
    /// The job exists but is not in a state that allows the call.
    #[error("cannot {action}: job `{id}` is {status}")]
    InvalidState {
        /// The job.
        id: JobId,
        /// Its current status.
        status: JobStatus,
        /// What was asked.
        action: &'static str,
    },
    /// Two linked `#[job]` definitions use the same name.
    #[error("two jobs are named `{name}`: {first} and {second}; give one of them `#[job(name = \"..\")]`")]
    DuplicateJobName {
        /// The shared name.
        name: String,
        /// `file:line` of one definition.
        first: String,
        /// `file:line` of the other.
        second: String,
    },
    /// A pool was started in a binary that links no `#[job]` function.
    #[error(
        "no job is linked into this program: define one with #[job], and name the crate that holds \
         your jobs in the binary (`use my_jobs as _;`) so the linker keeps its registrations"
    )]
    NoJobsLinked,
    /// A bad argument or configuration value; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// The serialized payload is larger than the backend accepts.
    #[error("job payload of {size} bytes is larger than the limit of {limit} bytes: pass a reference (an id, a path) instead of the data")]
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The backend's limit.
        limit: usize,
    },
    /// No schedule with this name is stored.
    #[error("no schedule named `{0}`")]
    ScheduleNotFound(String),
    /// A schedule setting that cannot be used: names the setting and the
    /// value given (boxed: it is rare, and keeps `Error` small).
    #[error(transparent)]
    InvalidSchedule(Box<ScheduleSettingError>),
    /// The pool has shut down.
    #[error("the worker pool is shut down")]
    Shutdown,
    /// The worker pool stopped taking jobs by itself, without being shut
    /// down (its backend could not wait for jobs, or its fetch loop
    /// panicked): [`WorkerHandle::run_until`](crate::WorkerHandle::run_until)
    /// returns it once the pool has shut down.
    #[error("the worker pool stopped taking jobs by itself: {0}")]
    PoolStopped(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The process cannot listen for SIGINT or SIGTERM
    /// ([`shutdown_signal`](crate::shutdown_signal)).
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
    /// A workflow or batch call was refused (boxed: it is rare).
    #[error(transparent)]
    Flow(Box<FlowError>),
    /// The storage backend failed (connection, protocol, script).
    #[error("backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn list(p: &[Priority]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

/// One broken rule of one payload field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// The field (the job function's parameter name).
    pub field: String,
    /// The rule, as written in `#[validate(..)]`: `email`, `length`, ...
    pub rule: String,
    /// What is wrong with the value, in words.
    pub message: String,
}

/// A payload that breaks one or more of its `#[validate(..)]` rules. Every
/// broken rule is listed, not just the first.
///
/// ```
/// use jobs_core::ValidationError;
/// let mut e = ValidationError::default();
/// e.push("to", "email", "`ann@` is not an email address");
/// assert_eq!(e.to_string(), "invalid job payload: field `to` (email): `ann@` is not an email address");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidationError {
    /// The broken rules, in field order.
    pub errors: Vec<FieldError>,
}

impl ValidationError {
    /// Adds a broken rule.
    pub fn push(&mut self, field: &str, rule: &str, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.to_owned(), rule: rule.to_owned(), message: message.into() });
    }

    /// `Ok` when no rule is broken.
    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid job payload: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "field `{}` ({}): {}", e.field, e.rule, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// A schedule setting that cannot be used ([`Error::InvalidSchedule`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule `{schedule}`: invalid `{field}` `{value}`: {reason}")]
pub struct ScheduleSettingError {
    /// The schedule's name.
    pub schedule: String,
    /// The setting (`every`, `jitter`, `starts_at`, `ends_at`, `exclude`,
    /// `cron`).
    pub field: &'static str,
    /// The value given, as written (or "missing").
    pub value: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

/// Whether a failed attempt may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Tried again with backoff until the retries run out.
    Retryable,
    /// Goes to the dead-letter set at once.
    Permanent,
    /// Not a failure: the job asked to run again later
    /// ([`JobError::retry_in`]), without spending an attempt.
    Snooze,
}

/// The failure of one attempt of a job.
///
/// `?` turns any `std::error::Error + Send + Sync + 'static` into a retryable
/// one; a job function may also return `anyhow::Result`, whose errors are
/// retryable too. Use [`JobError::permanent`] for an input that can never
/// succeed.
///
/// ```
/// use jobs_core::JobError;
/// fn parse(s: &str) -> Result<u32, JobError> {
///     let n: u32 = s.parse()?; // retryable
///     if n == 0 { return Err(JobError::permanent("zero is not a valid count")); }
///     Ok(n)
/// }
/// assert!(parse("x").unwrap_err().is_retryable());
/// assert!(!parse("0").unwrap_err().is_retryable());
/// ```
pub struct JobError {
    kind: FailureKind,
    source: Box<dyn std::error::Error + Send + Sync>,
    /// How long a snooze lasts ([`FailureKind::Snooze`] only).
    snooze: Option<Duration>,
    /// A snooze that holds the job's whole group back too
    /// ([`JobError::rate_limited`]).
    holds_group: bool,
}

impl JobError {
    /// A failure worth retrying (a network error, a busy service).
    pub fn retryable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        JobError { kind: FailureKind::Retryable, source: e.into(), snooze: None, holds_group: false }
    }

    /// A failure that no retry can fix: the job goes to the dead-letter set.
    pub fn permanent(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        JobError { kind: FailureKind::Permanent, source: e.into(), snooze: None, holds_group: false }
    }

    /// Snooze: not a failure, "not yet". The job goes back to its queue and
    /// runs again `d` from now (on the backend's clock), without spending an
    /// attempt: its attempt count and retries are left as they were, and
    /// the snooze is recorded in its attempt log. For work that waits on
    /// something outside (a file not there yet, a report still being
    /// built, an upstream asking to come back later).
    ///
    /// A job may snooze a bounded number of times
    /// ([`WorkerPoolBuilder::max_snoozes`](crate::WorkerPoolBuilder::max_snoozes),
    /// default 100); the snooze past that ends it dead with an error that
    /// says so. `d` is capped at 100 years like every job duration.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobs_core::{FailureKind, JobError};
    /// let e = JobError::retry_in(Duration::from_secs(30));
    /// assert_eq!(e.kind(), FailureKind::Snooze);
    /// assert_eq!(e.snooze_for(), Some(Duration::from_secs(30)));
    /// assert!(!e.is_retryable()); // not a failed attempt
    /// ```
    pub fn retry_in(d: Duration) -> Self {
        let text = format!("snoozed for {}", humantime::format_duration(d));
        JobError { kind: FailureKind::Snooze, source: text.into(), snooze: Some(d), holds_group: false }
    }

    /// [`JobError::retry_in`] with a reason, shown in the job's attempt
    /// log instead of the plain "snoozed for ..".
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobs_core::JobError;
    /// let e = JobError::retry_in_because(Duration::from_secs(60), "the export is not ready");
    /// assert_eq!(e.to_string(), "the export is not ready");
    /// ```
    pub fn retry_in_because(d: Duration, reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        JobError { kind: FailureKind::Snooze, source: reason.into(), snooze: Some(d), holds_group: false }
    }

    /// An upstream said "too many requests, come back in `retry_after`"
    /// (HTTP 429 with `Retry-After`): the job snoozes like
    /// [`JobError::retry_in`] (no attempt spent, recorded in its attempt
    /// log), and its whole group (`#[job(group = ..)]`,
    /// `JobOptions::group`) waits that long too: no job of the group starts
    /// before then, on any pool. A job without a group only snoozes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobs_core::JobError;
    /// let e = JobError::rate_limited(Duration::from_secs(30));
    /// assert_eq!(e.snooze_for(), Some(Duration::from_secs(30)));
    /// assert!(e.holds_group());
    /// ```
    pub fn rate_limited(retry_after: Duration) -> Self {
        let text = format!("rate limited: retry after {}", humantime::format_duration(retry_after));
        JobError { kind: FailureKind::Snooze, source: text.into(), snooze: Some(retry_after), holds_group: true }
    }

    /// Whether the snooze holds the job's group back too
    /// ([`JobError::rate_limited`]).
    pub fn holds_group(&self) -> bool {
        self.holds_group
    }

    /// How long the job asked to wait, when it snoozed
    /// ([`JobError::retry_in`]).
    pub fn snooze_for(&self) -> Option<Duration> {
        self.snooze
    }

    /// Whether the failed attempt may be tried again (with backoff, counting
    /// the attempt). A snooze is not a failed attempt: `false`, see
    /// [`JobError::snooze_for`].
    pub fn is_retryable(&self) -> bool {
        self.kind == FailureKind::Retryable
    }

    /// Retryable, permanent or a snooze.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JobError");
        d.field("kind", &self.kind).field("error", &self.source.to_string());
        if let Some(s) = self.snooze {
            d.field("snooze", &s);
        }
        d.finish()
    }
}

/// Shows the error and its chain of causes, `: `-separated.
impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        let mut cause = self.source.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retryable(e)
    }
}

/// A caught panic as an attempt's error.
pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into());
    // The payload is user data: dropping it may panic too.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(p)));
    bounded_message(format!("panicked: {msg}"))
}

/// The most bytes of an error message that are stored with an attempt,
/// logged or shown: serde quotes the offending value, which may be huge.
pub const MAX_ERROR_LEN: usize = 4096;

/// Cuts a message to at most [`MAX_ERROR_LEN`] bytes on a character
/// boundary, saying how much was left out.
pub fn bounded_message(mut s: String) -> String {
    if s.len() <= MAX_ERROR_LEN {
        return s;
    }
    let total = s.len();
    let mut end = MAX_ERROR_LEN - 40;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("... ({} more bytes)", total - end));
    s
}

/// Why a flow call was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A flow with this id is stored already.
    #[error("a workflow or batch with id `{0}` is stored already: choose another id, or follow that one with `FlowRun::open`")]
    Exists(String),
    /// No flow with this id is stored (never, or past its retention).
    #[error("no workflow or batch `{0}`")]
    NotFound(String),
    /// Members are added to batches only.
    #[error("`{0}` is a workflow: jobs are added to batches only; declare every step before enqueueing the workflow")]
    NotABatch(String),
    /// The batch has ended: it takes no more jobs.
    #[error("batch `{flow}` has ended ({}): it takes no more jobs; start another batch", status.as_str())]
    Ended {
        /// The batch.
        flow: String,
        /// How it ended.
        status: crate::vocab::FlowStatus,
    },
    /// Two members share a name.
    #[error("workflow `{flow}` has two steps named `{member}`: give each step its own name")]
    DuplicateMember {
        /// The flow.
        flow: String,
        /// The name used twice.
        member: String,
    },
    /// A step depends on a name that is no step of the workflow.
    #[error("step `{member}` of workflow `{flow}` depends on `{dependency}`, which is not a step of it")]
    UnknownDependency {
        /// The flow.
        flow: String,
        /// The step.
        member: String,
        /// The unknown name.
        dependency: String,
    },
    /// The dependencies form a cycle.
    #[error("the steps of workflow `{flow}` depend on each other in a cycle: {}; remove one of these dependencies", path.join(" -> "))]
    Cycle {
        /// The flow.
        flow: String,
        /// The cycle, its first step repeated at the end.
        path: Vec<String>,
    },
    /// A flow id outside the rules.
    #[error("invalid workflow or batch id `{0}`: use 1 to 128 letters, digits, `_`, `-`, `.` or `:`")]
    InvalidId(String),
    /// A step name outside the rules.
    #[error("invalid step name `{0}`: use 1 to 100 letters, digits, `_`, `-`, `.` or `:` (`/` joins a nested workflow's name to its steps')")]
    InvalidMemberName(String),
    /// An edge policy names an edge that was not declared.
    #[error("workflow `{flow}`: step `{member}` does not depend on `{dependency}`, so no failure policy can be set for that edge")]
    NoSuchEdge {
        /// The flow.
        flow: String,
        /// The step.
        member: String,
        /// The dependency it does not have.
        dependency: String,
    },
    /// A workflow without steps.
    #[error("workflow `{0}` has no steps: add one with `.step(..)`")]
    Empty(String),
    /// The backend stores no workflows or batches.
    #[error("this backend stores no workflows or batches (use MemoryQueue or RedisQueue)")]
    Unsupported,
    /// A wait's time ran out before the flow ended.
    #[error("workflow or batch `{flow}` had not ended after {waited:?} ({ended} of {total} ended)")]
    TimedOut {
        /// The flow.
        flow: String,
        /// How long the wait lasted.
        waited: std::time::Duration,
        /// Members ended by then.
        ended: u64,
        /// Members in all.
        total: u64,
    },
}

impl From<FlowError> for Error {
    fn from(e: FlowError) -> Self {
        Error::Flow(Box::new(e))
    }
}
