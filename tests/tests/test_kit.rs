//! The test kit (`jobs_core::test_util`): a context builder, `perform`
//! through the real glue, `drain` on a manual clock, and `assert_enqueued`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jobs_core::backend::RunError;
use jobs_core::prelude::*;
use jobs_core::test_util::{assert_enqueued, drain, enqueued, perform, TestContext};
use jobs_core::JobStatus;

/// Fails its first two attempts, then succeeds: retried with backoff.
#[job(queue = "kit", retries = 3)]
async fn flaky(ctx: JobContext, runs: Data<Runs>) -> Result<u32, JobError> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    if ctx.attempt() < 3 {
        return Err(JobError::retryable(format!("attempt {} failed", ctx.attempt())));
    }
    Ok(ctx.attempt())
}

/// Counts the runs of `flaky`.
struct Runs(AtomicU32);

/// Fails for good.
#[job(queue = "kit")]
async fn doomed(#[validate(length(min = 1))] why: String) -> Result<(), JobError> {
    Err(JobError::permanent(why))
}

/// Enqueues a reminder a week later.
#[job(queue = "kit")]
async fn sign_up(ctx: JobContext, email: String) -> Result<(), JobError> {
    let queue = ctx.queue_handle().ok_or_else(|| JobError::permanent("no queue handle"))?;
    Remind { email, days: 7 }
        .enqueue_with(queue.as_ref(), JobOptions::new().delay(Duration::from_secs(7 * 86_400)))
        .await
        .map_err(JobError::retryable)?;
    Ok(())
}

/// The reminder.
#[job(queue = "kit")]
async fn remind(email: String, days: u32) -> Result<(), JobError> {
    let _ = (email, days);
    Ok(())
}

#[tokio::test]
async fn perform_runs_the_glue_with_the_context_s_attempt_and_data() {
    let ctx = TestContext::new("flaky").attempt(3).data(Runs(AtomicU32::new(0))).build();
    assert_eq!(perform(Flaky {}, ctx).await.unwrap(), Some(serde_json::json!(3)));
    let ctx = TestContext::new("flaky").attempt(1).data(Runs(AtomicU32::new(0))).build();
    let e = perform(Flaky {}, ctx).await.unwrap_err();
    assert!(e.is_retryable() && e.to_string().contains("attempt 1 failed"), "{e}");
    // The rules run first, as at enqueue.
    let e = perform(Doomed { why: String::new() }, TestContext::new("doomed").build()).await.unwrap_err();
    assert!(matches!(e, RunError::Invalid(_)), "{e}");
    // Data the context lacks is a permanent failure naming the type.
    let e = perform(Flaky {}, TestContext::new("flaky").build()).await.unwrap_err();
    assert!(matches!(e, RunError::MissingData { .. }) && !e.is_retryable(), "{e}");
}

#[tokio::test]
async fn what_a_job_enqueues_is_asserted_by_type() {
    let queue = MemoryQueue::with_manual_clock();
    let ctx = TestContext::new("sign_up").queue(queue.clone()).build();
    perform(SignUp { email: "ann@example.com".into() }, ctx).await.unwrap();
    let r = assert_enqueued::<Remind>(&queue, |r| r.email == "ann@example.com").await;
    assert_eq!(r.days, 7);
    assert_eq!(enqueued::<Remind>(&queue).await.len(), 1);
    assert!(enqueued::<SignUp>(&queue).await.is_empty());
}

#[tokio::test]
#[should_panic(expected = "no waiting `remind` job matches; 1 of that type waiting")]
async fn assert_enqueued_fails_listing_what_waits() {
    let queue = MemoryQueue::with_manual_clock();
    Remind { email: "bob@example.com".into(), days: 1 }.enqueue(&queue).await.unwrap();
    assert_enqueued::<Remind>(&queue, |r| r.email == "ann@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_runs_retries_and_delayed_jobs_without_waiting() {
    let queue = MemoryQueue::with_manual_clock();
    let start = queue.now().await.unwrap();
    let runs = std::sync::Arc::new(Runs(AtomicU32::new(0)));
    let data = || {
        let mut e = jobs_core::Extensions::default();
        e.insert_shared(runs.clone());
        e
    };
    let wall = std::time::Instant::now();

    let flaky = Flaky {}.enqueue(&queue).await.unwrap();
    let doomed = Doomed { why: "no such account".into() }.enqueue(&queue).await.unwrap();
    let drained = drain(&queue, |pool| pool.extensions(data())).await.unwrap();
    assert_eq!((drained.succeeded, drained.failed_attempts), (1, 3), "{drained:?}");
    assert_eq!(runs.0.load(Ordering::SeqCst), 3, "two failed attempts, then a success");
    let info = queue.job(&flaky).await.unwrap().unwrap();
    assert_eq!((info.status, info.attempts), (JobStatus::Succeeded, 3));
    assert_eq!(info.attempt_log.iter().filter(|a| a.error.is_some()).count(), 2);
    let dead = queue.job(&doomed).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.last_error()), (JobStatus::Dead, Some("no such account")));
    assert!(drained.advanced > Duration::ZERO, "the backoffs were skipped by moving the clock");

    SignUp { email: "ann@example.com".into() }.enqueue(&queue).await.unwrap();
    let drained = drain(&queue, |pool| pool.extensions(data())).await.unwrap();
    assert_eq!(drained.succeeded, 2, "the sign-up, and its reminder a week later: {drained:?}");
    assert_eq!(drained.advanced, Duration::from_secs(7 * 86_400));
    assert!(enqueued::<Remind>(&queue).await.is_empty());
    let moved = queue.now().await.unwrap().duration_since(start).unwrap();
    assert!(moved > Duration::from_secs(7 * 86_400), "{moved:?}");
    // A week and the backoffs on the store's clock, not on the test's.
    assert!(wall.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn drain_refuses_a_pool_that_lacks_data_a_job_takes() {
    let queue = MemoryQueue::with_manual_clock();
    let e = drain(&queue, |pool| pool).await.unwrap_err();
    assert!(e.to_string().contains("takes `Data<test_kit::Runs>`"), "{e}");
}
