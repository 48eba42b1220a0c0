//! Job registrations collected at link time with `inventory`, plus the
//! few added at run time by test support ([`add_descriptors`]).
//!
//! Registration is by linking: a crate whose jobs a binary runs must be named
//! in that binary's code (`use my_jobs as _;`), or the linker may drop its
//! registrations.

use std::collections::HashMap;
use std::time::Duration;

use crate::context::JobContext;
use crate::data::DataNeed;
use crate::error::{Error, JobError, ValidationError};
use crate::payload::PayloadFormat;
use crate::queue::BoxFuture;
use crate::vocab::Priority;

/// Why running a job's handler failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The stored payload does not decode into the job's type: permanent.
    #[error("payload does not decode as {type_name}: {error}")]
    Decode {
        /// The payload type.
        type_name: &'static str,
        /// serde's message.
        error: String,
    },
    /// The stored payload breaks the job's rules: permanent.
    #[error(transparent)]
    Invalid(ValidationError),
    /// The job takes a `Data<T>` that its context lacks: permanent. A pool
    /// refuses to start without it, so this is seen only by code that runs
    /// the glue with a context of its own.
    #[error("the job takes `Data<{type_name}>`, and this context has no value of that type: add one with `WorkerPoolBuilder::data` (or `JobContext::with_data` in a test)")]
    MissingData {
        /// The value's type.
        type_name: &'static str,
    },
    /// The job function returned an error.
    #[error("{0}")]
    Job(JobError),
    /// The job's result could not be serialized: permanent.
    #[error("could not serialize the job's result: {0}")]
    Result(String),
}

impl RunError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RunError::Job(e) if e.is_retryable())
    }

    /// How long the job asked to wait, when it snoozed
    /// ([`JobError::retry_in`]).
    pub fn snooze_for(&self) -> Option<std::time::Duration> {
        match self {
            RunError::Job(e) => e.snooze_for(),
            _ => None,
        }
    }

    /// Whether the snooze holds the job's group back too
    /// ([`JobError::rate_limited`]).
    pub fn holds_group(&self) -> bool {
        matches!(self, RunError::Job(e) if e.holds_group())
    }
}

/// The handler glue: decodes a payload in the format it came with, runs the
/// job function, serializes its result.
pub type RunFn = fn(JobContext, PayloadFormat, &[u8]) -> BoxFuture<'static, Result<Option<Vec<u8>>, RunError>>;

/// Decodes and validates a JSON payload for this job type, returning its
/// canonical serialized form (what the command line's `enqueue` uses).
pub type CheckFn = fn(&[u8]) -> Result<Vec<u8>, Error>;

/// The group key of a JSON payload (`group = field`), for the command
/// line's `enqueue`; `None` without one.
pub type GroupFn = fn(&[u8]) -> Option<String>;

/// A recurring schedule declared on the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSpec {
    /// 5 or 6 fields (seconds first when 6).
    pub expression: &'static str,
    /// IANA zone, `UTC` when none was given.
    pub timezone: &'static str,
    /// `every = ".."`: an interval instead of the expression (which is
    /// then empty).
    pub every: Option<std::time::Duration>,
}

/// One `#[job]` definition, submitted by the generated code.
#[derive(Debug)]
pub struct JobDescriptor {
    /// The stored job name.
    pub name: &'static str,
    /// The attribute's queue.
    pub queue: &'static str,
    /// The attribute's priority.
    pub priority: Priority,
    /// The attribute's retries.
    pub max_retries: Option<u32>,
    /// The attribute's timeout.
    pub timeout: Option<Duration>,
    /// The attribute's deduplication window.
    pub unique_for: Option<Duration>,
    /// The default expiry (`expires`; see `JobOptions::expires_in`).
    pub expires: Option<Duration>,
    /// The attribute's schedule.
    pub cron: Option<CronSpec>,
    /// The payload type's path.
    pub type_name: &'static str,
    /// Where the job function is defined.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// Runs one attempt.
    pub run: RunFn,
    /// Checks a JSON payload.
    pub check: CheckFn,
    /// The pool's shared values its function takes (`Data<T>` parameters).
    pub data: &'static [DataNeed],
    /// The group a payload puts the job in.
    pub group: GroupFn,
    /// Jobs of one group running at once (`concurrency`).
    pub concurrency: Option<u32>,
    /// Starts of one group per window (`rate`).
    pub rate: Option<crate::queue::Rate>,
    /// `sandbox`: each attempt runs in a child process of the worker
    /// (see [`crate::sandbox`]).
    pub sandbox: bool,
}

impl JobDescriptor {
    /// `file:line` of the definition.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Group `key` with this job type's bounds (`concurrency`, `rate`), as
    /// a typed enqueue gives it: for a job built from a JSON payload.
    pub fn job_group(&self, key: String) -> crate::queue::JobGroup {
        crate::queue::JobGroup { key, concurrency: self.concurrency, rate: self.rate }
    }
}

inventory::collect!(JobDescriptor);

/// Every job this program knows ([`descriptors`]), by name; fails on
/// duplicate names (naming both definitions) and when there is none.
pub fn registry() -> Result<HashMap<&'static str, &'static JobDescriptor>, Error> {
    build(descriptors())
}

fn build(
    descriptors: impl IntoIterator<Item = &'static JobDescriptor>,
) -> Result<HashMap<&'static str, &'static JobDescriptor>, Error> {
    let mut map: HashMap<&'static str, &'static JobDescriptor> = HashMap::new();
    for d in descriptors {
        if let Some(prev) = map.insert(d.name, d) {
            // Source order, so the message is the same at every start.
            let (a, b) = if (prev.file, prev.line) <= (d.file, d.line) { (prev, d) } else { (d, prev) };
            return Err(Error::DuplicateJobName { name: d.name.to_owned(), first: a.location(), second: b.location() });
        }
    }
    if map.is_empty() {
        return Err(Error::NoJobsLinked);
    }
    Ok(map)
}

/// Every job definition this program knows, duplicates included, in no
/// set order: the linked ones and those added with [`add_descriptors`].
pub fn descriptors() -> impl Iterator<Item = &'static JobDescriptor> {
    inventory::iter::<JobDescriptor>.into_iter().chain(added::snapshot())
}

/// Adds job definitions that are not linked into the registry, for the
/// registries, pools and schedulers this process builds from then on.
///
/// For backends' and test support's own jobs, declared with the internal
/// `#[job(register = false)]` so that a program merely linked with them
/// never runs them nor stores their schedules; their payload types expose
/// the definition as `__jobs_descriptor()`. Applications link their jobs
/// instead and never call this.
///
/// Adding a definition again changes nothing. A name that another
/// definition already has is not refused here: like two linked jobs of one
/// name, it makes [`registry`] (and so `WorkerPool::start`) fail, naming
/// both.
pub fn add_descriptors(descriptors: &[&'static JobDescriptor]) {
    added::add(descriptors);
}

/// The definitions added at run time.
mod added {
    use std::sync::{Mutex, PoisonError};

    use super::JobDescriptor;

    static ADDED: Mutex<Vec<&'static JobDescriptor>> = Mutex::new(Vec::new());

    pub(super) fn add(descriptors: &[&'static JobDescriptor]) {
        // Pushing a reference cannot leave the list half-changed, so a
        // panic elsewhere while it was held does not make it unusable.
        add_to(&mut ADDED.lock().unwrap_or_else(PoisonError::into_inner), descriptors);
    }

    /// Appends the definitions `list` does not hold yet (by identity: two
    /// definitions of one name are a clash for `registry` to report).
    pub(super) fn add_to(list: &mut Vec<&'static JobDescriptor>, descriptors: &[&'static JobDescriptor]) {
        for d in descriptors {
            if !list.iter().any(|a| std::ptr::eq(*a, *d)) {
                list.push(d);
            }
        }
    }

    pub(super) fn snapshot() -> Vec<&'static JobDescriptor> {
        ADDED.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(_: JobContext, _: PayloadFormat, _: &[u8]) -> BoxFuture<'static, Result<Option<Vec<u8>>, RunError>> {
        Box::pin(async { Ok(None) })
    }

    fn check(p: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(p.to_vec())
    }

    const fn desc(name: &'static str, file: &'static str, line: u32) -> JobDescriptor {
        JobDescriptor {
            name,
            queue: "default",
            priority: Priority::Normal,
            max_retries: None,
            timeout: None,
            unique_for: None,
            expires: None,
            cron: None,
            type_name: "T",
            file,
            line,
            run,
            check,
            data: &[],
            group: |_| None,
            concurrency: None,
            rate: None,
            sandbox: false,
        }
    }

    static A: JobDescriptor = desc("mail", "src/a.rs", 10);
    static B: JobDescriptor = desc("mail", "src/b.rs", 20);
    static C: JobDescriptor = desc("cleanup", "src/c.rs", 5);

    #[test]
    fn duplicate_names_name_both_definitions() {
        let err = build([&A, &C, &B]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "two jobs are named `mail`: src/a.rs:10 and src/b.rs:20; give one of them `#[job(name = \"..\")]`"
        );
    }

    #[test]
    fn no_linked_job_is_an_error_that_explains_linking() {
        let err = build([]).unwrap_err();
        assert!(matches!(err, Error::NoJobsLinked));
        assert!(err.to_string().contains("use my_jobs as _;"));
    }

    #[test]
    fn adding_a_definition_again_changes_nothing() {
        let mut list = Vec::new();
        added::add_to(&mut list, &[&A, &C]);
        added::add_to(&mut list, &[&C, &A]);
        assert_eq!(list.iter().map(|d| d.location()).collect::<Vec<_>>(), ["src/a.rs:10", "src/c.rs:5"]);
        // Another definition of a name already there is kept, for the
        // registry to report the clash.
        added::add_to(&mut list, &[&B]);
        assert_eq!(list.len(), 3);
        assert!(matches!(build(list), Err(Error::DuplicateJobName { .. })));
    }

    #[test]
    fn distinct_names_build_a_registry() {
        let r = build([&A, &C]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r["cleanup"].location(), "src/c.rs:5");
    }
}
