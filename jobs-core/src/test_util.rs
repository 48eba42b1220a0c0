//! A kit for testing an application's jobs (feature `test-util`): build a
//! context, run one job through the code `#[job]` generates, run a
//! [`MemoryQueue`] until nothing is left to do (its clock moved by hand, so
//! delays and retries take no time), and assert what was enqueued.
//!
//! ```
//! use jobs_core::prelude::*;
//! use jobs_core::test_util::{assert_enqueued, drain, perform, TestContext};
//!
//! struct Greeting(&'static str);
//!
//! #[job(crate = jobs_core)]
//! async fn welcome(ctx: JobContext, greeting: Data<Greeting>, to: String) -> Result<String, JobError> {
//!     let queue = ctx.queue_handle().ok_or_else(|| JobError::permanent("no queue"))?;
//!     FollowUp { to: to.clone() }.enqueue_with(queue.as_ref(), JobOptions::new().delay(std::time::Duration::from_secs(86_400)))
//!         .await
//!         .map_err(JobError::retryable)?;
//!     Ok(format!("{} {to}", greeting.0))
//! }
//!
//! #[job(crate = jobs_core)]
//! async fn follow_up(to: String) -> Result<(), JobError> {
//!     let _ = to;
//!     Ok(())
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let queue = MemoryQueue::with_manual_clock();
//!
//!     // One job through its real glue, with the data and queue it needs.
//!     let ctx = TestContext::new("welcome").data(Greeting("hello")).queue(queue.clone()).build();
//!     let result = perform(Welcome { to: "ann@example.com".into() }, ctx).await?;
//!     assert_eq!(result, Some(serde_json::json!("hello ann@example.com")));
//!     assert_enqueued::<FollowUp>(&queue, |j| j.to == "ann@example.com").await;
//!
//!     // Everything due, the follow-up a day later included, without waiting.
//!     let drained = drain(&queue, |pool| pool.data(Greeting("hi"))).await?;
//!     assert_eq!(drained.succeeded, 1);
//!     Ok(())
//! }
//! ```

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::context::JobContext;
use crate::error::Error;
use crate::job::Job;
use crate::memory::MemoryQueue;
use crate::payload::PayloadFormat;
use crate::queue::{JobInfo, QueueInspect};
use crate::registry::RunError;
use crate::vocab::{JobId, JobStatus};
use crate::worker::{WorkerPool, WorkerPoolBuilder};

/// Builds the [`JobContext`] a job function or [`perform`] receives: its
/// attempt, retries, pool data, queue handle and cancellation.
pub struct TestContext {
    name: String,
    queue_name: String,
    attempt: u32,
    max_retries: u32,
    enqueued_at: SystemTime,
    cancel: CancellationToken,
    ctx_data: crate::context::Extensions,
    queue: Option<MemoryQueue>,
}

impl std::fmt::Debug for TestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("name", &self.name)
            .field("attempt", &self.attempt)
            .field("max_retries", &self.max_retries)
            .field("queue", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

impl TestContext {
    /// A context for the job named `name`: attempt 1 of 4 (3 retries), on
    /// queue `default`, enqueued now, not cancelled, no data, no queue.
    pub fn new(name: &str) -> Self {
        TestContext {
            name: name.to_owned(),
            queue_name: "default".into(),
            attempt: 1,
            max_retries: 3,
            enqueued_at: SystemTime::now(),
            cancel: CancellationToken::new(),
            ctx_data: crate::context::Extensions::default(),
            queue: None,
        }
    }

    /// This attempt (1-based).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The job's retries after the first attempt.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The queue the job's id names.
    pub fn queue_name(mut self, queue: &str) -> Self {
        self.queue_name = queue.to_owned();
        self
    }

    /// A value the pool would share (what a `Data<T>` parameter receives).
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.ctx_data.insert(value);
        self
    }

    /// The queue handle the job enqueues follow-up jobs on.
    pub fn queue(mut self, queue: MemoryQueue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The token whose cancellation the job sees as `ctx.cancelled()`: cancel
    /// it to test how a job stops.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The context.
    pub fn build(self) -> JobContext {
        let ctx = JobContext::new(
            JobId::new(&self.queue_name),
            self.name,
            self.attempt,
            self.max_retries,
            self.enqueued_at,
            self.cancel,
        );
        let queue: Option<std::sync::Arc<dyn crate::queue::JobQueue>> =
            self.queue.map(|q| std::sync::Arc::new(q) as std::sync::Arc<dyn crate::queue::JobQueue>);
        ctx.with_pool(std::sync::Arc::new(self.ctx_data), queue)
    }
}

/// Runs `job` once through the code `#[job]` generated for it, as a worker
/// would: its rules checked, its payload encoded and decoded, the function
/// called with `ctx`, its result encoded. Returns the stored result (`None`
/// for a job returning `()`) or why the attempt failed.
pub async fn perform<J: Job>(job: J, ctx: JobContext) -> Result<Option<serde_json::Value>, RunError> {
    job.validate().map_err(RunError::Invalid)?;
    let descriptor = crate::registry::descriptors().find(|d| d.name == J::NAME).ok_or_else(|| {
        RunError::Job(crate::error::JobError::permanent(format!(
            "job `{}` is not in this program's registry (a job defined with `register = false`?)",
            J::NAME
        )))
    })?;
    let payload = serde_json::to_vec(&job).map_err(|e| RunError::Result(e.to_string()))?;
    let result = (descriptor.run)(ctx, PayloadFormat::Json, &payload).await?;
    Ok(result.map(|bytes| PayloadFormat::Json.to_json(&bytes)))
}

/// What [`drain`] saw end (from the store's counters, which retention does
/// not lower).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Jobs that succeeded.
    pub succeeded: u64,
    /// Attempts that failed (retried or dead).
    pub failed_attempts: u64,
    /// How far the clock was moved to reach delayed and retrying jobs.
    pub advanced: Duration,
}

/// The longest [`drain`] runs before it gives up (a job that never ends, or
/// one that keeps enqueueing others).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Runs every job of `queue` until none is pending, running, delayed or
/// retrying, with a worker pool (all linked jobs, every queue that holds a
/// job, no scheduler) that `configure` may give data and settings. When
/// only delayed or retrying jobs are left, the clock is moved to the first
/// one's time (use a [`MemoryQueue::with_manual_clock`] store, whose clock
/// nothing else moves), so a test waits for no delay and no backoff.
///
/// Fails when the pool does not start (a job takes data `configure` did not
/// give), or after [`DRAIN_LIMIT`].
pub async fn drain(
    queue: &MemoryQueue,
    configure: impl FnOnce(WorkerPoolBuilder) -> WorkerPoolBuilder,
) -> Result<Drained, Error> {
    let before = totals(queue).await?;
    let mut queues: Vec<String> = crate::registry::descriptors().map(|d| d.queue.to_owned()).collect();
    queues.extend(queue.stats().await?.queues.into_keys());
    queues.sort_unstable();
    queues.dedup();
    let builder = WorkerPool::builder(queue.clone()).queues(queues.clone());
    // Ticks would keep the store busy for ever: schedules are left out.
    #[cfg(feature = "cron")]
    let builder = builder.scheduler(false);
    let pool = configure(builder).start()?;
    let mut changes = queue.changes();
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    let mut advanced = Duration::ZERO;
    let outcome = loop {
        changes.borrow_and_update();
        let stats = queue.stats().await?;
        let busy = stats.queues.keys().map(|q| stats.queue(q)).any(|c| c.pending + c.running > 0);
        if !busy {
            match next_due(queue, &queues).await? {
                None => break Ok(()),
                // Due now or once the clock moves: a worker's next fetch
                // takes it, and its end is a change.
                Some(due) => {
                    let now = crate::queue::JobQueue::now(queue).await?;
                    let step = due.duration_since(now).unwrap_or_default();
                    if !step.is_zero() {
                        queue.advance(step);
                        advanced += step;
                    }
                }
            }
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            break Err(Error::InvalidArgument(format!(
                "drain: jobs were still running after {}",
                humantime::format_duration(DRAIN_LIMIT)
            )));
        }
    };
    pool.shutdown().await?;
    outcome?;
    let after = totals(queue).await?;
    Ok(Drained { succeeded: after.0 - before.0, failed_attempts: after.1 - before.1, advanced })
}

/// Succeeded jobs and failed attempts of every queue.
async fn totals(queue: &MemoryQueue) -> Result<(u64, u64), Error> {
    let stats = queue.stats().await?;
    Ok(stats.queues.keys().map(|q| stats.queue(q)).fold((0, 0), |(s, f), c| (s + c.processed, f + c.failed)))
}

/// The earliest due time of a delayed or retrying job.
async fn next_due(queue: &MemoryQueue, queues: &[String]) -> Result<Option<SystemTime>, Error> {
    let mut first: Option<SystemTime> = None;
    for q in queues {
        for status in [JobStatus::Scheduled, JobStatus::Retrying] {
            // Listed by due time: the first is the earliest.
            if let Some(t) = queue.list_jobs(q, status, 0, 1).await?.first().and_then(|j| j.run_at) {
                first = Some(first.map_or(t, |f| f.min(t)));
            }
        }
    }
    Ok(first)
}

/// The jobs of type `J` waiting in `queue` (pending, delayed or retrying),
/// decoded, in the order of their ids.
pub async fn enqueued<J: Job>(queue: &MemoryQueue) -> Vec<J> {
    of_type(&waiting(queue).await)
}

/// The jobs of type `J` among `jobs`, decoded, in the order of their ids.
fn of_type<J: Job>(jobs: &[JobInfo]) -> Vec<J> {
    let mut found: Vec<(&JobId, J)> = jobs
        .iter()
        .filter(|info| info.name == J::NAME)
        .filter_map(|info| Some((&info.id, serde_json::from_value::<J>(info.payload.clone()).ok()?)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(b.0));
    found.into_iter().map(|(_, j)| j).collect()
}

/// Asserts that a job of type `J` matching `matches` is waiting in `queue`,
/// and returns it; panics listing the waiting jobs otherwise.
pub async fn assert_enqueued<J: Job>(queue: &MemoryQueue, matches: impl Fn(&J) -> bool) -> J {
    let waiting = waiting(queue).await;
    let mut candidates = of_type::<J>(&waiting);
    match candidates.iter().position(&matches) {
        Some(i) => candidates.swap_remove(i),
        None => {
            let listed: Vec<String> =
                waiting.iter().map(|j| format!("  {} {:?} {}", j.name, j.status, j.payload)).collect();
            panic!(
                "no waiting `{}` job matches; {} of that type waiting; every waiting job:\n{}",
                J::NAME,
                candidates.len(),
                if listed.is_empty() { "  (none)".to_owned() } else { listed.join("\n") }
            )
        }
    }
}

/// Every waiting job of every queue.
async fn waiting(queue: &MemoryQueue) -> Vec<JobInfo> {
    let mut out = Vec::new();
    // Listing cannot fail on the embedded store.
    let Ok(stats) = queue.stats().await else { return out };
    for q in stats.queues.keys() {
        for status in [JobStatus::Pending, JobStatus::Scheduled, JobStatus::Retrying] {
            if let Ok(jobs) = queue.list_jobs(q, status, 0, usize::MAX).await {
                out.extend(jobs);
            }
        }
    }
    out
}
