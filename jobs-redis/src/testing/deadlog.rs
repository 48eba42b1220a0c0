//! The dead log of the error-reporter test: every death a worker process's
//! `on_dead` handler was told of, one line each, so a test can check that
//! each dead job was reported exactly once across processes killed with
//! SIGKILL.
//!
//! The `jobs-redis-test-worker` binary runs [`FailingJob`]s (they fail on
//! every attempt) and, with `JOBS_REDIS_TEST_DEAD_LOG` set, installs an
//! `on_dead` handler that appends to that file, opened with `O_APPEND`, one
//! `write(2)` per line (a line that reached the kernel survives a SIGKILL,
//! and no line is torn):
//!
//! ```text
//! D <job id> <attempts> <pid> <unix ms>    this process was told the job died
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use jobs_core::hooks::DeadJob;
use jobs_core::{Job, JobId, Priority, ValidationError};
use serde::{Deserialize, Serialize};

use super::runlog::now_ms;

/// The job of the error-reporter test: sleeps `sleep_ms` between its run
/// log's start and end lines, then fails (retryably). One retry: a job ends
/// dead after its second failed attempt, or when the lease of its last
/// attempt expires with its killed worker.
///
/// Only the worker binary registers its handler (same name and fields);
/// this type enqueues it and registers nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingJob {
    /// Tells jobs apart in messages.
    pub seq: u64,
    /// How long the handler sleeps before it fails.
    pub sleep_ms: u64,
}

impl Job for FailingJob {
    const NAME: &'static str = "jobs_redis.testing.failing";
    /// It never succeeds.
    type Output = ();
    const QUEUE: &'static str = "crash";
    const PRIORITY: Priority = Priority::Normal;
    const MAX_RETRIES: Option<u32> = Some(1);
    const TIMEOUT: Option<Duration> = None;

    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// The error every [`FailingJob`] attempt ends with.
pub const FAILING_ERROR: &str = "fails on purpose";

static LOG: OnceLock<File> = OnceLock::new();

/// Opens this process's dead log (the worker binary does, at start).
pub fn open(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    // A second call keeps the first file: one log per process.
    let _ = LOG.set(file);
    Ok(())
}

/// The worker's `on_dead` handler: appends the death.
pub fn report(dead: &DeadJob) {
    let Some(mut file) = LOG.get() else { return };
    let line = format!("D {} {} {} {}\n", dead.id, dead.attempts, std::process::id(), now_ms());
    if let Err(e) = file.write_all(line.as_bytes()) {
        eprintln!("cannot append to the dead log: {e}");
    }
}

/// One report of a death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The attempts the job had.
    pub attempts: u32,
    /// The process that reported it.
    pub pid: u32,
}

/// Reads the dead log at `path`: the reports per job id (empty when nothing
/// wrote to it yet). Panics on a line it cannot read.
pub fn read(path: &Path) -> BTreeMap<String, Vec<Report>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("cannot read the dead log {}: {e}", path.display()),
    };
    let mut out: BTreeMap<String, Vec<Report>> = BTreeMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let ["D", id, attempts, pid, _ms] = parts.as_slice() else {
            panic!("unreadable dead log line {line:?}");
        };
        let report = Report {
            attempts: attempts.parse().unwrap_or_else(|_| panic!("bad attempts in {line:?}")),
            pid: pid.parse().unwrap_or_else(|_| panic!("bad pid in {line:?}")),
        };
        out.entry((*id).to_owned()).or_default().push(report);
    }
    out
}

/// The reports of one job.
pub fn of<'a>(log: &'a BTreeMap<String, Vec<Report>>, id: &JobId) -> &'a [Report] {
    log.get(&id.to_string()).map_or(&[], Vec::as_slice)
}
