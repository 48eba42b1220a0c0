//! Running one leased job: handler lookup, timeout, panic capture, outcome.
//!
//! One task per job: the job's future is polled inside it under
//! `catch_unwind` (a panic is a failed attempt and the worker lives), rather
//! than in a second spawned task, which would cost a task and its
//! scheduling per job.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::shared::{Core, UnknownJobs};
use crate::context::JobContext;
use crate::queue::{Finish, FinishResult, LeasedJob, Outcome, When};
use crate::registry::RunError;

/// Why a job is handed back when its pool shuts down.
const SHUT_DOWN: &str = "the worker pool shut down";

/// Runs one attempt and queues its outcome for acknowledgement.
pub(crate) async fn execute(core: Arc<Core>, job: LeasedJob, _permit: OwnedSemaphorePermit) {
    #[cfg(feature = "metrics")]
    let _busy = core.metrics.as_ref().map(|m| m.busy());
    let Some(desc) = core.registry.get(job.name.as_str()).copied() else {
        let outcome = unknown_outcome(&core, &job);
        record(&core, &job, &outcome, None);
        report(&core, &job, outcome);
        return;
    };
    let max_retries = job.max_retries.or(desc.max_retries).unwrap_or(core.max_retries);
    // A token of its own (a child of `hard` would lock the parent twice per
    // job): the grace period's end signals every job through `inflight`.
    let cancel = CancellationToken::new();
    core.inflight.insert(job.id.clone(), job.token, cancel.clone());
    if core.hard.is_cancelled() {
        cancel.cancel();
    }
    let ctx = JobContext::new(job.id.clone(), job.name.clone(), job.attempt, max_retries, job.enqueued_at, cancel)
        .with_pool(core.data.clone(), Some(core.queue.clone()));
    let span = tracing::info_span!(
        "job",
        id = %job.id,
        name = %job.name,
        queue = job.id.queue(),
        attempt = job.attempt,
        enqueued_by = tracing::field::Empty,
    );
    crate::trace::propagator().extract(&job.headers, &span);
    // A job that lost its lease before its start was recorded runs alone and
    // only once its start is recorded (see `mark_started`); others note their
    // start on the way, with the next acknowledgements.
    let _alone = if job.crashes > 0 {
        let alone = tokio::select! {
            biased;
            _ = core.killed.cancelled() => return,
            _ = core.hard.cancelled() => None,
            g = core.quarantine.lock() => Some(g),
            // Behind a long job of its kind: handed back (not an attempt),
            // for whichever pool is free to run it alone.
            _ = tokio::time::sleep(core.lease) => None,
        };
        if alone.is_none() || !mark_started(&core, &job).await {
            // Shutting down, waited too long, or the lease is gone: it never
            // started here.
            if core.inflight.remove(&job.id, job.token) && alone.is_none() {
                let reason = if core.hard.is_cancelled() { SHUT_DOWN } else { "waited to run alone" };
                report(&core, &job, Outcome::Release { at: None, reason: reason.into() });
            }
            return;
        }
        alone
    } else {
        let _ = core.acks.send(Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Started });
        None
    };
    #[cfg(feature = "metrics")]
    let started = core.metrics.as_ref().map(|_| std::time::Instant::now());
    #[cfg(not(feature = "metrics"))]
    let started: Option<std::time::Instant> = None;
    // The glue decodes and validates the payload before it returns the
    // job's future: user code (a `Deserialize` impl, a custom validator)
    // that panics there is a failed attempt like a panic in the body.
    let ended = match span.in_scope(|| catch_unwind(AssertUnwindSafe(|| (desc.run)(ctx, job.format, &job.payload)))) {
        Err(panic) => Err(panic_message(panic)),
        Ok(fut) => {
            let fut = CatchUnwind(Some(fut.instrument(span.clone())));
            let timeout = job.timeout.or(desc.timeout);
            tokio::select! {
                biased;
                _ = core.killed.cancelled() => return,
                // Dropped here, before it is handed back below.
                _ = core.abort.cancelled() => Ok(Ok(None)),
                r = run_with_timeout(fut, timeout) => r,
            }
        }
    };
    if core.hard.is_cancelled() {
        // Past the grace period: whatever the attempt returned, it is handed
        // back (not an attempt), now that it has stopped.
        if core.inflight.remove(&job.id, job.token) {
            report(&core, &job, Outcome::Release { at: None, reason: SHUT_DOWN.into() });
        }
        return;
    }
    let outcome = match ended {
        Ok(Ok(Some(result))) if result.len() > core.max_result => {
            let error = format!(
                "the job's result is {} bytes, over the limit of {} (WorkerPoolBuilder::max_result); it was not stored",
                result.len(),
                core.max_result
            );
            failure(&core, &job, max_retries, error, false)
        }
        Ok(Ok(result)) => Outcome::Succeeded { result },
        Ok(Err(e)) if e.snooze_for().is_some() => Outcome::Snooze {
            at: When::In(e.snooze_for().unwrap_or_default()),
            reason: crate::error::bounded_message(e.to_string()),
            limit: core.max_snoozes,
        },
        Ok(Err(e)) => {
            let retryable = e.is_retryable();
            failure(&core, &job, max_retries, crate::error::bounded_message(e.to_string()), retryable)
        }
        Err(msg) => failure(&core, &job, max_retries, msg, true),
    };
    span.in_scope(|| match &outcome {
        Outcome::Succeeded { .. } => tracing::debug!("job succeeded"),
        Outcome::Retry { error, at } => tracing::warn!(%error, retry_at = ?at, "job failed; will retry"),
        Outcome::Dead { error } => tracing::error!(%error, "job failed; moved to the dead-letter set"),
        Outcome::Snooze { at, reason, .. } => tracing::info!(%reason, due = ?at, "job snoozed"),
        Outcome::Release { .. } | Outcome::Started => {}
    });
    if core.inflight.remove(&job.id, job.token) {
        record(&core, &job, &outcome, started.map(|s| s.elapsed()));
        report(&core, &job, outcome);
    }
}

/// Records that `job`'s handler starts, and waits for the backend to say so:
/// `false` when its lease is gone (the job was taken again elsewhere). When
/// the backend cannot be reached the job runs all the same: its start is
/// then unknown, and a crash counts against its crash budget.
async fn mark_started(core: &Core, job: &LeasedJob) -> bool {
    let mark = Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Started };
    match core.queue.finish(vec![mark]).await {
        Ok(r) => r.first() != Some(&FinishResult::Stale),
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "could not record the job's start; running it all the same");
            true
        }
    }
}

type Ended = Result<Result<Option<Vec<u8>>, RunError>, String>;

/// Polls a job's future, turning a panic into an error. Dropping it drops
/// the job (a timeout, or the pool killed), also under `catch_unwind`.
struct CatchUnwind<F>(Option<F>);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.0.as_mut() else { return Poll::Pending };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                self.0 = None;
                Poll::Ready(Ok(v))
            }
            Err(panic) => {
                // Never polled again; dropped here, so a panic in its drop
                // is caught too.
                let fut = self.0.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
                Poll::Ready(Err(panic))
            }
        }
    }
}

impl<F> Drop for CatchUnwind<F> {
    fn drop(&mut self) {
        let fut = self.0.take();
        if fut.is_some() {
            // A job dropped while running (timed out, pool killed) must not
            // take the worker down if its own drop panics.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
        }
    }
}

async fn run_with_timeout<F>(fut: CatchUnwind<F>, timeout: Option<Duration>) -> Ended
where
    F: Future<Output = Result<Option<Vec<u8>>, RunError>> + Unpin,
{
    let ran = match timeout {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => return Err(format!("timed out after {}", humantime::format_duration(t))),
        },
        None => fut.await,
    };
    ran.map_err(panic_message)
}

/// A caught panic as an attempt's error.
fn panic_message(p: Box<dyn Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into());
    // The payload is user data: dropping it may panic too.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(p)));
    crate::error::bounded_message(format!("panicked: {msg}"))
}

fn failure(core: &Core, job: &LeasedJob, max_retries: u32, error: String, retryable: bool) -> Outcome {
    if retryable && job.attempt <= max_retries {
        Outcome::Retry { error, at: When::In(core.backoff_for(&job.name).delay(job.attempt)) }
    } else {
        Outcome::Dead { error }
    }
}

fn unknown_outcome(core: &Core, job: &LeasedJob) -> Outcome {
    let mut known: Vec<&str> = core.registry.keys().copied().collect();
    known.sort_unstable();
    let error = crate::error::bounded_message(format!(
        "no handler for job `{}` in this process (it knows: {}); is the crate that defines it linked into this binary?",
        job.name,
        known.join(", ")
    ));
    match core.unknown {
        UnknownJobs::DeadLetter => Outcome::Dead { error },
        UnknownJobs::Requeue { delay, limit } => {
            let age = SystemTime::now().duration_since(job.enqueued_at).unwrap_or_default();
            if age < limit {
                tracing::info!(job = %job.id, name = %job.name, "unknown job name: handing it back for another pool");
                Outcome::Release { at: Some(When::In(delay)), reason: error }
            } else {
                Outcome::Dead {
                    error: format!("{error} (no pool took it within {})", humantime::format_duration(limit)),
                }
            }
        }
    }
}

/// Counts the attempt in the pool's metrics, if it has any.
fn record(core: &Core, job: &LeasedJob, outcome: &Outcome, ran: Option<Duration>) {
    #[cfg(feature = "metrics")]
    if let Some(m) = &core.metrics {
        m.finished(&job.name, job.id.queue(), outcome, ran);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (core, job, outcome, ran);
}

fn report(core: &Core, job: &LeasedJob, outcome: Outcome) {
    if core.acks.send(Finish { id: job.id.clone(), token: job.token, outcome }).is_err() {
        tracing::warn!(job = %job.id, "pool is stopping: result not recorded; the job runs again after its lease");
    }
}
