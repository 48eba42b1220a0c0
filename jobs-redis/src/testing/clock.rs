//! A job for tests of worker processes whose clocks are set off
//! (`tests/clock.rs`): [`ClockJob`] appends a line to a run log of its own
//! at each start and end, so a test counts runs as the workers saw them, not
//! as the backend counted attempts.
//!
//! A line is `<event> <tag> <attempt> <job id> <pid>`, `event` one of
//! `start`, `end`, `fail` (a planned failure) and `spawned` (a follow-up
//! job was enqueued; its id is the line's job id). Each line is one
//! `write` to a file opened for appending, so processes sharing the file
//! never interleave within a line.
//!
//! The job is not in the link-time registry: a worker that runs it calls
//! [`use_test_jobs`](super::use_test_jobs) first.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use jobs_core::{JobContext, JobError, JobExt, JobOptions};
use serde::{Deserialize, Serialize};

/// What a [`ClockJob`] does after logging its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockAct {
    /// Sleeps this long (past several heartbeats when longer than the
    /// lease), then succeeds.
    SleepMs(u64),
    /// Fails retryably on its first attempt, then succeeds.
    FailFirst,
    /// Enqueues a `ClockJob` tagged `tag` (`SleepMs(0)`, same log) on
    /// `queue` with `JobOptions::delay(delay_ms)`: a producer on this
    /// process's clock.
    Spawn {
        /// The follow-up's tag.
        tag: String,
        /// Its queue.
        queue: String,
        /// Its delay.
        delay_ms: u64,
    },
}

/// Logs its runs to the file `log` (see the module), then acts.
#[jobs_core::job(register = false, name = "jobs_redis.testing.clock", queue = "clock", retries = 3)]
pub async fn clock_job(ctx: JobContext, log: String, tag: String, act: ClockAct) -> Result<(), JobError> {
    let line = |event: &str, id: &dyn std::fmt::Display| {
        format!("{event} {tag} {} {id} {}\n", ctx.attempt(), std::process::id())
    };
    append(&log, &line("start", ctx.job_id()))?;
    match act {
        ClockAct::SleepMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        ClockAct::FailFirst if ctx.attempt() == 1 => {
            append(&log, &line("fail", ctx.job_id()))?;
            return Err(JobError::retryable("planned failure"));
        }
        ClockAct::FailFirst => {}
        ClockAct::Spawn { tag: next, queue, delay_ms } => {
            let q = ctx.queue_handle().ok_or_else(|| JobError::permanent("no queue handle outside a pool"))?;
            let job = ClockJob { log: log.clone(), tag: next, act: ClockAct::SleepMs(0) };
            let id = job
                .enqueue_with(&**q, JobOptions::new().queue(&queue).delay(Duration::from_millis(delay_ms)))
                .await
                .map_err(JobError::retryable)?;
            append(&log, &line("spawned", &id))?;
        }
    }
    append(&log, &line("end", ctx.job_id()))?;
    Ok(())
}

fn append(path: &str, line: &str) -> Result<(), JobError> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(JobError::retryable)?;
    f.write_all(line.as_bytes()).map_err(JobError::retryable)
}

/// One line of a run log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLine {
    /// `start`, `end`, `fail` or `spawned`.
    pub event: String,
    /// The job's tag.
    pub tag: String,
    /// The attempt, as the job's context said.
    pub attempt: u32,
    /// The job's id (for `spawned`, the follow-up's).
    pub id: String,
    /// The worker process.
    pub pid: u32,
}

/// The complete lines of a run log so far (none when it does not exist).
pub fn read_run_log(path: &Path) -> Vec<RunLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let [event, tag, attempt, id, pid] = f.as_slice() else { return None };
            Some(RunLine {
                event: (*event).to_owned(),
                tag: (*tag).to_owned(),
                attempt: attempt.parse().ok()?,
                id: (*id).to_owned(),
                pid: pid.parse().ok()?,
            })
        })
        .collect()
}
