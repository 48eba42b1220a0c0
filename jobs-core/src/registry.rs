//! Job registrations collected at link time with `inventory`.
//!
//! Registration is by linking: a crate whose jobs a binary runs must be named
//! in that binary's code (`use my_jobs as _;`), or the linker may drop its
//! registrations.

use std::collections::HashMap;
use std::time::Duration;

use crate::context::JobContext;
use crate::error::{Error, JobError, ValidationError};
use crate::job::Priority;
use crate::queue::BoxFuture;

/// Why running a job's handler failed.
#[derive(Debug, thiserror::Error)]
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
}

/// The handler glue: decodes a payload, runs the job function, serializes
/// its result.
pub type RunFn = fn(JobContext, &[u8]) -> BoxFuture<'static, Result<Option<Vec<u8>>, RunError>>;

/// Decodes and validates a JSON payload for this job type, returning its
/// canonical serialized form (what the command line's `enqueue` uses).
pub type CheckFn = fn(&[u8]) -> Result<Vec<u8>, Error>;

/// A recurring schedule declared on the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSpec {
    /// 5 or 6 fields (seconds first when 6).
    pub expression: &'static str,
    /// IANA zone, `UTC` when none was given.
    pub timezone: &'static str,
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
}

impl JobDescriptor {
    /// `file:line` of the definition.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

inventory::collect!(JobDescriptor);

/// Every job linked into this program, by name; fails on duplicate names
/// (naming both definitions) and when none is linked.
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

/// Every linked job definition, duplicates included, in no set order.
///
/// The jobs of the workspace's test-support modules (the conformance
/// suite's, behind feature `testing`) are left out unless a test asked for
/// them with `jobs_core::testing::use_suite_jobs()`: a binary built in a
/// workspace where some test turns the feature on must not run them, nor
/// add their schedules to a real store.
pub fn descriptors() -> impl Iterator<Item = &'static JobDescriptor> {
    inventory::iter::<JobDescriptor>.into_iter().filter(|d| !is_suite_job(d) || suite_jobs::wanted())
}

/// The test-support modules whose jobs stay hidden until a test asks:
/// this crate's conformance suite and the Redis adapter's test support.
const TEST_SUPPORT_MODULES: [&str; 2] = ["jobs_core::testing::", "jobs_redis::testing::"];

/// Whether `d` is a job of a test-support module (its type name starts with
/// the module's path).
fn is_suite_job(d: &JobDescriptor) -> bool {
    TEST_SUPPORT_MODULES.iter().any(|m| d.type_name.starts_with(m))
}

/// The switch behind `jobs_core::testing::use_suite_jobs`.
pub(crate) mod suite_jobs {
    use std::sync::atomic::{AtomicBool, Ordering};

    static WANTED: AtomicBool = AtomicBool::new(false);

    /// Makes the test-support jobs visible to every registry built after.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn want() {
        WANTED.store(true, Ordering::Relaxed);
    }

    pub(crate) fn wanted() -> bool {
        WANTED.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(_: JobContext, _: &[u8]) -> BoxFuture<'static, Result<Option<Vec<u8>>, RunError>> {
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
            cron: None,
            type_name: "T",
            file,
            line,
            run,
            check,
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
    fn distinct_names_build_a_registry() {
        let r = build([&A, &C]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r["cleanup"].location(), "src/c.rs:5");
    }
}
