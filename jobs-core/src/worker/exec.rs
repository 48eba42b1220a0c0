//! Running one leased job: handler lookup, timeout, panic capture, outcome.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::run::Core;
use super::UnknownJobs;
use crate::context::JobContext;
use crate::queue::{Finish, LeasedJob, Outcome};
use crate::registry::RunError;

/// Runs one attempt and queues its outcome for acknowledgement.
pub(crate) async fn execute(core: Arc<Core>, job: LeasedJob, _permit: OwnedSemaphorePermit) {
    let _busy = core.metrics.as_ref().map(|m| m.busy());
    let Some(desc) = core.registry.get(job.name.as_str()).copied() else {
        let outcome = unknown_outcome(&core, &job);
        record(&core, &job, &outcome, None);
        report(&core, &job, outcome);
        return;
    };
    let max_retries = job.max_retries.or(desc.max_retries).unwrap_or(core.max_retries);
    let cancel = core.hard.child_token();
    core.inflight.insert(job.id.clone(), job.token, cancel.clone());
    let ctx = JobContext::new(job.id.clone(), job.name.clone(), job.attempt, max_retries, job.enqueued_at, cancel)
        .with_pool(core.data.clone(), core.queue.clone());
    let span = tracing::info_span!(
        "job",
        id = %job.id,
        name = %job.name,
        queue = job.id.queue(),
        attempt = job.attempt,
        enqueued_by = tracing::field::Empty,
    );
    crate::trace::propagator().extract(&job.headers, &span);
    let fut = (desc.run)(ctx, &job.payload);
    let started = std::time::Instant::now();
    // Its own task, so a panic is caught as a JoinError and the worker lives.
    let mut task = tokio::spawn(fut.instrument(span.clone()));
    let timeout = job.timeout.or(desc.timeout);
    let ended = tokio::select! {
        biased;
        _ = core.killed.cancelled() => { task.abort(); return; }
        r = run_with_timeout(&mut task, timeout) => r,
    };
    let outcome = match ended {
        Ok(Ok(result)) => Outcome::Succeeded { result },
        Ok(Err(e)) => {
            let retryable = e.is_retryable();
            failure(&core, &job, max_retries, e.to_string(), retryable)
        }
        Err(msg) => failure(&core, &job, max_retries, msg, true),
    };
    span.in_scope(|| match &outcome {
        Outcome::Succeeded { .. } => tracing::debug!("job succeeded"),
        Outcome::Retry { error, at } => tracing::warn!(%error, retry_at = ?at, "job failed; will retry"),
        Outcome::Dead { error } => tracing::error!(%error, "job failed; moved to the dead-letter set"),
        Outcome::Release { .. } => {}
    });
    // After a shutdown hand-back the job is someone else's: report nothing.
    if core.inflight.remove(&job.id, job.token) {
        record(&core, &job, &outcome, Some(started.elapsed()));
        report(&core, &job, outcome);
    }
}

type Ended = Result<Result<Option<Vec<u8>>, RunError>, String>;

async fn run_with_timeout(
    task: &mut tokio::task::JoinHandle<Result<Option<Vec<u8>>, RunError>>,
    timeout: Option<Duration>,
) -> Ended {
    let joined = match timeout {
        Some(t) => match tokio::time::timeout(t, &mut *task).await {
            Ok(j) => j,
            Err(_) => {
                task.abort();
                return Err(format!("timed out after {}", humantime::format_duration(t)));
            }
        },
        None => (&mut *task).await,
    };
    joined.map_err(|e| match e.try_into_panic() {
        Ok(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".into());
            format!("panicked: {msg}")
        }
        Err(_) => "the job's task was cancelled".to_owned(),
    })
}

fn failure(core: &Core, job: &LeasedJob, max_retries: u32, error: String, retryable: bool) -> Outcome {
    if retryable && job.attempt <= max_retries {
        Outcome::Retry { error, at: SystemTime::now() + core.backoff_for(&job.name).delay(job.attempt) }
    } else {
        Outcome::Dead { error }
    }
}

fn unknown_outcome(core: &Core, job: &LeasedJob) -> Outcome {
    let mut known: Vec<&str> = core.registry.keys().copied().collect();
    known.sort_unstable();
    let error = format!(
        "no handler for job `{}` in this process (it knows: {}); is the crate that defines it linked into this binary?",
        job.name,
        known.join(", ")
    );
    match core.unknown {
        UnknownJobs::DeadLetter => Outcome::Dead { error },
        UnknownJobs::Requeue { delay, limit } => {
            let age = SystemTime::now().duration_since(job.enqueued_at).unwrap_or_default();
            if age < limit {
                tracing::info!(job = %job.id, name = %job.name, "unknown job name: handing it back for another pool");
                Outcome::Release { at: Some(SystemTime::now() + delay), reason: error }
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
    if let Some(m) = &core.metrics {
        m.finished(&job.name, job.id.queue(), outcome, ran);
    }
}

fn report(core: &Core, job: &LeasedJob, outcome: Outcome) {
    if core.acks.send(Finish { id: job.id.clone(), token: job.token, outcome }).is_err() {
        tracing::warn!(job = %job.id, "pool is stopping: result not recorded; the job runs again after its lease");
    }
}
