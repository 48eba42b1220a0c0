//! The jobs a chaos run enqueues. Each records its attempts in the worker
//! process's run log ([`crate::runlog`]).

use std::time::Duration;

use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::runlog;

/// The queue of every chaos job.
pub const QUEUE: &str = "chaos";

/// What kind of job an enqueued chaos job is, and so how it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// [`chaos_work`]: must succeed.
    Work,
    /// [`chaos_timeout`]: must end dead, each attempt timed out (or lost).
    Timeout,
    /// [`chaos_panic`]: must succeed after a panicked first attempt.
    Panic,
    /// [`chaos_hang`]: must end cancelled.
    Hang,
    /// [`chaos_poison`]: must end dead after killing its workers.
    Poison,
    /// [`chaos_sandboxed`]: must succeed after its first attempt's sandbox
    /// child aborted.
    Sandboxed,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 6] = [Kind::Work, Kind::Timeout, Kind::Panic, Kind::Hang, Kind::Poison, Kind::Sandboxed];

    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Work => "work",
            Kind::Timeout => "timeout",
            Kind::Panic => "panic",
            Kind::Hang => "hang",
            Kind::Poison => "poison",
            Kind::Sandboxed => "sandboxed",
        }
    }

    /// The status the job must end in.
    pub const fn expected(self) -> jobs_core::JobStatus {
        use jobs_core::JobStatus::*;
        match self {
            Kind::Work | Kind::Panic | Kind::Sandboxed => Succeeded,
            Kind::Timeout | Kind::Poison => Dead,
            Kind::Hang => Cancelled,
        }
    }
}

/// The load: sleeps a little and succeeds. Ten retries, so that only a
/// very unlucky job is reclaimed from dying workers often enough to end dead.
#[job(name = "chaos.work", queue = "chaos", retries = 10)]
pub async fn chaos_work(ctx: JobContext, seq: u64, sleep_ms: u64) -> Result<u64, JobError> {
    runlog::started(&ctx);
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    runlog::ended(&ctx);
    Ok(seq)
}

/// A handler that exhausts its timeout on every attempt: dead after two.
#[job(name = "chaos.timeout", queue = "chaos", timeout = "300ms", retries = 1)]
pub async fn chaos_timeout(ctx: JobContext, seq: u64) -> Result<(), JobError> {
    runlog::started(&ctx);
    let _ = seq;
    tokio::time::sleep(Duration::from_secs(60)).await;
    runlog::ended(&ctx);
    Ok(())
}

/// A handler that panics on its first attempt and succeeds on the next.
#[job(name = "chaos.panic", queue = "chaos", retries = 10)]
pub async fn chaos_panic(ctx: JobContext, seq: u64) -> Result<u64, JobError> {
    runlog::started(&ctx);
    if ctx.attempt() == 1 {
        panic!("chaos.panic {seq} panics on its first attempt, on purpose");
    }
    runlog::ended(&ctx);
    Ok(seq)
}

/// A handler that never returns until it is cancelled.
#[job(name = "chaos.hang", queue = "chaos", retries = 10)]
pub async fn chaos_hang(ctx: JobContext, seq: u64) -> Result<(), JobError> {
    runlog::started(&ctx);
    let _ = seq;
    ctx.cancelled().await;
    runlog::ended(&ctx);
    Ok(())
}

/// A handler that ends its worker process on every attempt (exit code 86,
/// no acknowledgement, no hand-back): the job must end dead once its
/// reclaimed attempts run out, not loop forever.
#[job(name = "chaos.poison", queue = "chaos", retries = 2)]
pub async fn chaos_poison(ctx: JobContext, seq: u64) -> Result<(), JobError> {
    runlog::started(&ctx);
    let _ = seq;
    if runlog::is_open() {
        // Only in a worker process of a chaos run: a test's own process
        // must not die.
        std::process::exit(POISON_EXIT);
    }
    Err(JobError::permanent("chaos.poison outside a chaos worker process"))
}

/// A sandboxed handler that aborts its child process on its first attempt
/// and succeeds on the next: the worker process and its other jobs must
/// not notice. Its runs are recorded under the worker's pid (see
/// [`runlog`]), so that a fault of the worker explains them.
#[job(name = "chaos.sandboxed", queue = "chaos", retries = 10, sandbox)]
pub async fn chaos_sandboxed(ctx: JobContext, seq: u64) -> Result<u64, JobError> {
    runlog::started(&ctx);
    if ctx.attempt() == 1 {
        if runlog::is_open() {
            // In a sandbox child of a chaos worker: the child dies, not the
            // worker.
            std::process::abort();
        }
        return Err(JobError::retryable("chaos.sandboxed outside a chaos worker's sandbox child"));
    }
    runlog::ended(&ctx);
    Ok(seq)
}

/// The exit code of a worker process that a poison job ended.
pub const POISON_EXIT: i32 = 86;
