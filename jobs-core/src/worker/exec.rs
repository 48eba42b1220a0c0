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

use super::shared::{Ack, Core, Sandboxed, UnknownJobs};
use crate::context::JobContext;
use crate::error::panic_message;
use crate::hooks::{Attempt, BoxFuture, DeadJob, FailedAttempt, JobOutcome, Next};
use crate::payload::PayloadFormat;
use crate::progress::Reporter;
use crate::queue::{Finish, FinishResult, LeasedJob, Outcome, When};
use crate::registry::{JobDescriptor, RunError};

/// Why a job is handed back when its pool shuts down.
pub(crate) const SHUT_DOWN: &str = "the worker pool shut down";

/// What a job holds while it runs: its worker slot and, when the pool took
/// it ahead of its free workers, its place in the pool's room.
pub(crate) type Slot = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

/// Counts an attempt's end when dropped, whichever way it ends.
struct EndCount<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for EndCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs one attempt and queues its outcome for acknowledgement.
pub(crate) async fn execute(core: Arc<Core>, job: LeasedJob, _slot: Slot) {
    let _end = EndCount(&core.ends);
    #[cfg(feature = "metrics")]
    let _busy = core.metrics.as_ref().map(|m| m.busy());
    let Some(desc) = core.registry.get(job.name.as_str()).copied() else {
        let outcome = unknown_outcome(&core, &job);
        if let Outcome::Dead { error } = &outcome {
            let failed = FailedAttempt {
                id: job.id.clone(),
                name: job.name.clone(),
                attempt: job.attempt,
                error: error.clone(),
                will_retry: false,
            };
            core.hooks.failed(&failed);
        }
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
    let progress = Reporter::new(core.queue.clone(), job.id.clone(), job.token, core.progress_interval);
    let ctx = JobContext::new(job.id.clone(), job.name.clone(), job.attempt, max_retries, job.enqueued_at, cancel)
        .with_pool(core.data.clone(), Some(core.queue.clone()))
        .with_progress(progress.clone())
        .with_headers(&job.headers);
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
                hand_back(&core, &job, reason);
            }
            return;
        }
        alone
    } else {
        let mark = Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Started };
        let _ = core.acks.send(Ack { finish: mark, dead: None, flow: false, landed: None });
        None
    };
    #[cfg(feature = "metrics")]
    let started = core.metrics.as_ref().map(|_| std::time::Instant::now());
    #[cfg(not(feature = "metrics"))]
    let started: Option<std::time::Instant> = None;
    let decide = Decide { attempt: job.attempt, max_retries, max_result: core.max_result };
    let timeout = job.timeout.or(desc.timeout);
    let (format, payload) = (job.format, job.payload.as_slice());
    // Without layers the job runs as it is; with them, inside their chain.
    // Either way under `catch_unwind`: a panic in a layer fails the attempt
    // as one in the job does.
    let sandbox = core.sandbox_for(desc);
    let chain: BoxFuture<'_, JobOutcome> = if core.hooks.layers.is_empty() {
        Box::pin(run_job(desc, ctx, format, payload, timeout, decide, sandbox))
    } else {
        let attempt = Attempt { ctx, headers: Arc::new(job.headers.clone()), priority: job.priority };
        let layers = core.hooks.layers.as_slice();
        Box::pin(async move {
            let run = move |a: Attempt| -> BoxFuture<'_, JobOutcome> {
                Box::pin(run_job(desc, a.ctx, format, payload, timeout, decide, sandbox.clone()))
            };
            Next { layers, job: &run }.run(attempt).await
        })
    };
    let guarded = CatchUnwind(Some(chain.instrument(span.clone())));
    let ended = tokio::select! {
        biased;
        _ = core.killed.cancelled() => {
            progress.abandon();
            return;
        }
        // Dropped here, before it is handed back below.
        _ = core.abort.cancelled() => None,
        r = guarded => Some(r),
    };
    // The last progress held back is written before the end is reported,
    // and none after it.
    progress.close().await;
    if core.hard.is_cancelled() {
        // Past the grace period: whatever the attempt returned, it is handed
        // back (not an attempt), now that it has stopped.
        if core.inflight.remove(&job.id, job.token) {
            hand_back(&core, &job, SHUT_DOWN);
        }
        return;
    }
    // `abort` is only ever cancelled after `hard`, handled above.
    let Some(ended) = ended else { return };
    let outcome = match ended {
        Ok(outcome) => outcome,
        Err(panic) => decide.failure(panic_message(panic), true),
    };
    let outcome = decide.finally(&core, &job, outcome);
    span.in_scope(|| match &outcome {
        Outcome::Succeeded { .. } => tracing::debug!("job succeeded"),
        Outcome::Retry { error, at } => tracing::warn!(%error, retry_at = ?at, "job failed; will retry"),
        Outcome::Dead { error } => tracing::error!(%error, "job failed; moved to the dead-letter set"),
        Outcome::Snooze { at, reason, .. } => tracing::info!(%reason, due = ?at, "job snoozed"),
        Outcome::Release { .. } | Outcome::Started => {}
    });
    if core.inflight.remove(&job.id, job.token) {
        if let Outcome::Retry { error, .. } | Outcome::Dead { error } = &outcome {
            let will_retry = matches!(outcome, Outcome::Retry { .. });
            let failed = FailedAttempt {
                id: job.id.clone(),
                name: job.name.clone(),
                attempt: job.attempt,
                error: error.clone(),
                will_retry,
            };
            span.in_scope(|| core.hooks.failed(&failed));
        }
        record(&core, &job, &outcome, started.map(|s| s.elapsed()));
        report(&core, &job, outcome);
    }
}

/// The job itself, innermost in the chain: the glue decodes and validates
/// the payload before it returns the job's future, so user code (a
/// `Deserialize` impl, a custom validator) that panics there is a failed
/// attempt like a panic in the body; then the future under its timeout.
/// A sandboxed job runs the same glue in a child process instead.
async fn run_job(
    desc: &'static JobDescriptor,
    ctx: JobContext,
    format: PayloadFormat,
    payload: &[u8],
    timeout: Option<Duration>,
    decide: Decide,
    sandbox: Option<Sandboxed>,
) -> JobOutcome {
    let ended = match sandbox {
        #[cfg(all(unix, feature = "sandbox"))]
        Some(children) => children.run(&ctx, format, payload, timeout).await,
        #[cfg(not(all(unix, feature = "sandbox")))]
        Some(never) => match never {},
        None => match catch_unwind(AssertUnwindSafe(|| (desc.run)(ctx, format, payload))) {
            Err(panic) => Err(panic_message(panic)),
            Ok(fut) => run_with_timeout(CatchUnwind(Some(fut)), timeout).await,
        },
    };
    match ended {
        Ok(Ok(result)) => decide.success(result),
        Ok(Err(e)) if e.snooze_for().is_some() => JobOutcome::Snooze {
            after: e.snooze_for().unwrap_or_default(),
            reason: crate::error::bounded_message(e.to_string()),
            holds_group: e.holds_group(),
        },
        Ok(Err(e)) => {
            let retryable = e.is_retryable();
            decide.failure(crate::error::bounded_message(e.to_string()), retryable)
        }
        Err(msg) => decide.failure(msg, true),
    }
}

/// What an attempt's outcome becomes, by the job's attempts and the
/// pool's result limit: decided once for the job, and again on what the
/// layers returned.
#[derive(Debug, Clone, Copy)]
struct Decide {
    attempt: u32,
    max_retries: u32,
    max_result: usize,
}

impl Decide {
    fn success(self, result: Option<Vec<u8>>) -> JobOutcome {
        match result {
            Some(r) if r.len() > self.max_result => JobOutcome::Dead {
                error: format!(
                    "the job's result is {} bytes, over the limit of {} (WorkerPoolBuilder::max_result); it was not stored",
                    r.len(),
                    self.max_result
                ),
            },
            result => JobOutcome::Succeeded { result },
        }
    }

    fn failure(self, error: String, retryable: bool) -> JobOutcome {
        if retryable && self.attempt <= self.max_retries {
            JobOutcome::Retry { error }
        } else {
            JobOutcome::Dead { error }
        }
    }

    /// The outcome reported to the backend, from what the layers returned.
    fn finally(self, core: &Core, job: &LeasedJob, outcome: JobOutcome) -> Outcome {
        match outcome {
            JobOutcome::Succeeded { result } => match self.success(result) {
                JobOutcome::Succeeded { result } => Outcome::Succeeded { result },
                other => self.finally(core, job, other),
            },
            JobOutcome::Retry { error } if self.attempt <= self.max_retries => Outcome::Retry {
                error: crate::error::bounded_message(error),
                at: When::In(core.backoff_for(&job.name).delay(job.attempt)),
            },
            JobOutcome::Retry { error } | JobOutcome::Dead { error } => {
                Outcome::Dead { error: crate::error::bounded_message(error) }
            }
            JobOutcome::Snooze { after, reason, holds_group } => Outcome::Snooze {
                at: When::In(after),
                reason: crate::error::bounded_message(reason),
                limit: core.max_snoozes,
                holds_group,
            },
        }
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

/// Hands a job that never started here back to its queue (not an
/// attempt), for whichever pool can run it.
pub(crate) fn hand_back(core: &Core, job: &LeasedJob, reason: &str) {
    report(core, job, Outcome::Release { at: None, reason: reason.into() });
}

/// [`hand_back`], answering once the backend has the job back (or the pool
/// gave the result up).
pub(crate) fn hand_back_landed(core: &Core, job: &LeasedJob, reason: &str) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    report_landed(core, job, Outcome::Release { at: None, reason: reason.into() }, Some(tx));
    rx
}

fn report(core: &Core, job: &LeasedJob, outcome: Outcome) {
    report_landed(core, job, outcome, None);
}

fn report_landed(core: &Core, job: &LeasedJob, outcome: Outcome, landed: Option<tokio::sync::oneshot::Sender<()>>) {
    let dead = match &outcome {
        Outcome::Dead { error } if core.hooks.wants_dead() => {
            Some(DeadJob::new(job.id.clone(), job.name.clone(), job.attempt, error.clone()))
        }
        _ => None,
    };
    let flow = job.headers.contains_key(crate::queue::FLOW_HEADER);
    let finish = Finish { id: job.id.clone(), token: job.token, outcome };
    if core.acks.send(Ack { finish, dead, flow, landed }).is_err() {
        tracing::warn!(job = %job.id, "pool is stopping: result not recorded; the job runs again after its lease");
    }
}
