//! Every command of the command line, on MemoryQueue and on Redis (a
//! throwaway `redis-server`, feature `redis`): output, JSON shape, table
//! width, error line and exit code.
#![allow(clippy::unwrap_used)] // Scenarios are tests: a failed unwrap is a failed test.

mod support;

mod archive;
mod control;
mod dead;
mod enqueue;
mod events;
mod flows;
mod inspect;
mod redact;
mod router;
mod schedules;
mod usage;
mod worker;

use jobs_core::prelude::*;

/// Sends a mail (the test job with field rules).
#[job(queue = "mail", priority = "high", retries = 2)]
async fn send_mail(
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 20))] subject: String,
) -> Result<(), JobError> {
    let _ = (to, subject);
    Ok(())
}

/// What the worker's pool shares with `build_report`.
struct Factor(u32);

/// Builds a report and returns a result (stored with the job), with a value
/// the pool shares: `worker` must be given it.
#[job(queue = "reports")]
async fn build_report(factor: Data<Factor>, #[validate(range(min = 1, max = 31))] day: u32) -> Result<u32, JobError> {
    Ok(day * factor.0)
}

/// Grouped by account, two of an account at once.
#[job(queue = "sync", group = account_id, concurrency = 2)]
async fn sync_account(account_id: u64, full: bool) -> Result<(), JobError> {
    let _ = (account_id, full);
    Ok(())
}

/// Fails for good at its first attempt: the worker makes it dead.
#[job(queue = "flaky")]
async fn always_fails(reason: String) -> Result<(), JobError> {
    Err(JobError::permanent(reason))
}
