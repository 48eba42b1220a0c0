//! The jobs the suite runs. They are linked into every binary built with the
//! `testing` feature but not registered there: [`use_suite_jobs`] adds
//! them ([`descriptors`]) when a test asks, so a program built in the same
//! workspace never runs them nor stores their schedules.
//!
//! [`use_suite_jobs`]: super::use_suite_jobs
#![allow(missing_docs)]

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::harness::probe;
use crate::context::JobContext;
use crate::error::JobError;
use crate::registry::JobDescriptor;

/// The definitions of every job of this module, for [`use_suite_jobs`]
/// to add (and for tests that check they stay out until then).
///
/// [`use_suite_jobs`]: super::use_suite_jobs
pub fn descriptors() -> [&'static JobDescriptor; 12] {
    [
        ProbeJob::__jobs_descriptor(),
        SlowJob::__jobs_descriptor(),
        TwoRetries::__jobs_descriptor(),
        ValidatedJob::__jobs_descriptor(),
        NightlyJob::__jobs_descriptor(),
        TouchyJob::__jobs_descriptor(),
        SizedResultJob::__jobs_descriptor(),
        GroupedJob::__jobs_descriptor(),
        RatedJob::__jobs_descriptor(),
        LimitedJob::__jobs_descriptor(),
        JoinJob::__jobs_descriptor(),
        GrowJob::__jobs_descriptor(),
    ]
}

/// What a probe job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Act {
    /// Returns its sequence number.
    Succeed,
    /// Fails (retryably) on attempts 1..=n, then succeeds.
    FailTimes(u32),
    /// Always fails retryably.
    FailAlways,
    /// Fails the first time this test's probe sees its sequence number,
    /// whatever the attempt count says.
    FailFirstRun,
    /// Fails permanently.
    Permanent,
    /// Panics.
    Panic,
    /// Sleeps, then succeeds.
    SleepMs(u64),
    /// Waits for `JobContext::cancelled()`, then returns Ok.
    WaitForCancel,
    /// Sleeps without stopping on cancel, noting whether cancel was seen.
    IgnoreCancelMs(u64),
    /// Snoozes for this many ms (reason "not ready yet") the first time
    /// this test's probe sees its sequence number, then succeeds.
    SnoozeFirstRunMs(u64),
    /// Always snoozes for this many ms.
    SnoozeAlwaysMs(u64),
    /// Reports progress in a tight loop for this many ms (`i / (i + 1)`,
    /// note `step <i>`), then `1.0` with the note `done after <n> calls`,
    /// and succeeds.
    ProgressForMs(u64),
    /// Reports progress 0.1 `a`, 0.2 `b` and 0.3 `c` at once, then waits
    /// for `JobContext::cancelled()`.
    ProgressThenWait,
}

/// A job whose payload chooses its behaviour; it records every start.
#[crate::job(crate = crate, register = false, name = "conformance.probe", queue = "conformance")]
pub async fn probe_job(ctx: JobContext, key: String, seq: u64, act: Act) -> Result<u64, JobError> {
    let p = probe(&key);
    p.started(seq, &ctx);
    // Notes when this run stops, by returning or by being dropped.
    let _stopped = p.stop_guard(seq);
    let r = match act {
        Act::Succeed => Ok(seq),
        Act::FailTimes(n) if ctx.attempt() <= n => {
            Err(JobError::retryable(format!("planned failure {}", ctx.attempt())))
        }
        Act::FailTimes(_) => Ok(seq),
        Act::FailFirstRun if p.starts().iter().filter(|s| s.seq == seq).count() == 1 => {
            Err(JobError::retryable("first run fails"))
        }
        Act::FailFirstRun => Ok(seq),
        Act::SnoozeFirstRunMs(ms) if p.starts().iter().filter(|s| s.seq == seq).count() == 1 => {
            Err(JobError::retry_in_because(Duration::from_millis(ms), "not ready yet"))
        }
        Act::SnoozeFirstRunMs(_) => Ok(seq),
        Act::SnoozeAlwaysMs(ms) => Err(JobError::retry_in(Duration::from_millis(ms))),
        Act::ProgressForMs(ms) => progress_for(&ctx, Duration::from_millis(ms)).await.map(|()| seq),
        Act::ProgressThenWait => {
            for (f, note) in [(0.1, "a"), (0.2, "b"), (0.3, "c")] {
                ctx.progress(f, note).await?;
            }
            ctx.cancelled().await;
            Ok(seq)
        }
        Act::FailAlways => Err(JobError::retryable(format!("always fails (attempt {})", ctx.attempt()))),
        Act::Permanent => Err(JobError::permanent("this input can never work")),
        Act::Panic => panic!("probe {seq} panicked on purpose"),
        Act::SleepMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(seq)
        }
        Act::WaitForCancel => {
            ctx.cancelled().await;
            p.saw_cancel(seq);
            Ok(seq)
        }
        Act::IgnoreCancelMs(ms) => {
            tokio::select! {
                _ = ctx.cancelled() => p.saw_cancel(seq),
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(seq)
        }
    };
    p.ended(seq);
    r
}

/// Reports progress in a tight loop for `d` (yielding between calls, so the
/// pool's timers run), then reports it is done.
async fn progress_for(ctx: &JobContext, d: Duration) -> Result<(), JobError> {
    let until = tokio::time::Instant::now() + d;
    let mut calls: u64 = 0;
    while tokio::time::Instant::now() < until {
        calls += 1;
        ctx.progress(calls as f32 / (calls + 1) as f32, format!("step {calls}")).await?;
        tokio::task::yield_now().await;
    }
    ctx.progress(1.0, format!("done after {} calls", calls + 1)).await?;
    Ok(())
}

/// A job grouped by its `group` field, two of a group at once: records its
/// runs in the probe of `key` and in that of `key/group`, and sleeps
/// `sleep_ms`.
#[crate::job(crate = crate, register = false, name = "conformance.grouped", group = group, concurrency = 2)]
pub async fn grouped_job(
    ctx: JobContext,
    key: String,
    group: String,
    seq: u64,
    sleep_ms: u64,
) -> Result<u64, JobError> {
    let (all, mine) = (probe(&key), probe(&format!("{key}/{group}")));
    all.started(seq, &ctx);
    mine.started(seq, &ctx);
    let (_all, _mine) = (all.stop_guard(seq), mine.stop_guard(seq));
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    Ok(seq)
}

/// A job grouped by its `group` field, at most 5 of a group started per
/// 300 ms: records its runs in the probe of `key`.
#[crate::job(crate = crate, register = false, name = "conformance.rated", group = group, rate = "5/300ms")]
pub async fn rated_job(ctx: JobContext, key: String, group: String, seq: u64) -> Result<u64, JobError> {
    let _ = group;
    probe(&key).started(seq, &ctx);
    Ok(seq)
}

/// A grouped job whose first run is told "rate limited, retry after
/// `retry_ms`" when `retry_ms` is not 0: records its runs in the probe of
/// `key`.
#[crate::job(crate = crate, register = false, name = "conformance.limited", group = group)]
pub async fn limited_job(
    ctx: JobContext,
    key: String,
    group: String,
    seq: u64,
    retry_ms: u64,
) -> Result<u64, JobError> {
    let _ = group;
    let p = probe(&key);
    p.started(seq, &ctx);
    if retry_ms > 0 && p.starts().iter().filter(|s| s.seq == seq).count() == 1 {
        return Err(JobError::rate_limited(Duration::from_millis(retry_ms)));
    }
    Ok(seq)
}

/// A workflow step that checks its dependencies: each probe job named in
/// `deps` (step name, sequence number) must have ended before it started,
/// and its result read with `JobContext::dependency` must be its sequence
/// number; else it fails for good. Returns its own `seq` plus theirs.
#[crate::job(crate = crate, register = false, name = "conformance.join", queue = "conformance")]
pub async fn join_job(ctx: JobContext, key: String, seq: u64, deps: Vec<(String, u64)>) -> Result<u64, JobError> {
    let p = probe(&key);
    let ended = p.ends();
    p.started(seq, &ctx);
    let _stopped = p.stop_guard(seq);
    let mut sum = seq;
    for (name, dep) in deps {
        if !ended.contains(&dep) {
            return Err(JobError::permanent(format!("started before its dependency `{name}` ({dep}) ended")));
        }
        let got = ctx.dependency::<ProbeJob>(&name).map_err(JobError::permanent)?;
        if got != dep {
            return Err(JobError::permanent(format!("dependency `{name}` read as {got}, not {dep}")));
        }
        sum += got;
    }
    p.ended(seq);
    Ok(sum)
}

/// A batch job that adds `more` probe jobs (sequence numbers after its
/// own) to its batch from inside, then succeeds.
#[crate::job(crate = crate, register = false, name = "conformance.grow", queue = "conformance")]
pub async fn grow_job(ctx: JobContext, key: String, seq: u64, more: u64) -> Result<u64, JobError> {
    let p = probe(&key);
    p.started(seq, &ctx);
    let batch = ctx.batch().ok_or_else(|| JobError::permanent("not in a batch"))?;
    let queue = ctx.queue_handle().ok_or_else(|| JobError::permanent("no queue handle"))?;
    let jobs = (seq + 1..=seq + more).map(|s| ProbeJob { key: key.clone(), seq: s, act: Act::Succeed });
    batch.add_with(&**queue, jobs, crate::JobOptions::new().queue(ctx.queue()), false).await?;
    p.ended(seq);
    Ok(seq)
}

/// A job with a short timeout that sleeps past it.
#[crate::job(crate = crate, register = false, name = "conformance.slow", timeout = "150ms", retries = 0)]
pub async fn slow_job(ctx: JobContext, key: String) -> Result<(), JobError> {
    probe(&key).started(0, &ctx);
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(())
}

/// A job with declared retries, for precedence tests.
#[crate::job(crate = crate, register = false, name = "conformance.two_retries", retries = 2)]
pub async fn two_retries(ctx: JobContext, key: String) -> Result<(), JobError> {
    probe(&key).started(0, &ctx);
    Err(JobError::retryable("always fails"))
}

/// A job with validated fields.
#[crate::job(crate = crate, register = false, name = "conformance.validated")]
pub async fn validated_job(
    #[validate(email)] to: String,
    #[validate(range(min = 1, max = 10))] count: u32,
) -> Result<(), JobError> {
    let _ = (to, count);
    Ok(())
}

/// A recurring job declared on the attribute; pools add its schedule.
#[crate::job(
    crate = crate,
    register = false,
    name = "conformance.nightly",
    queue = "conformance.cron",
    cron = "0 0 3 * * *",
    timezone = "Europe/Berlin"
)]
pub async fn nightly_job() -> Result<(), JobError> {
    Ok(())
}

/// A field whose `Deserialize` panics on the text `"panic"`: user code that
/// runs on the worker before the job's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Touchy(pub String);

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        assert_ne!(s, "panic", "Touchy's Deserialize panics on purpose");
        Ok(Touchy(s))
    }
}

/// A custom validator that panics on a negative number.
pub fn panics_when_negative(n: &i64) -> Result<(), String> {
    assert!(*n >= 0, "the custom validator panics on purpose");
    Ok(())
}

/// A job whose payload check (decode, then validation) can panic.
#[crate::job(crate = crate, register = false, name = "conformance.touchy", retries = 1)]
pub async fn touchy_job(
    ctx: JobContext,
    key: String,
    text: Touchy,
    #[validate(custom = panics_when_negative)] n: i64,
) -> Result<(), JobError> {
    probe(&key).started(0, &ctx);
    let _ = (text, n);
    Ok(())
}

/// A job whose result is a string of `len` bytes.
#[crate::job(crate = crate, register = false, name = "conformance.sized_result")]
pub async fn sized_result_job(len: usize) -> Result<String, JobError> {
    Ok("x".repeat(len))
}
