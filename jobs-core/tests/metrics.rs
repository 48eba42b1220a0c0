//! `JobMetrics` counted by a real pool run on `MemoryQueue`: enqueues,
//! attempts by status, durations, retries, dead jobs, busy workers.

use std::future::Future;
use std::time::{Duration, Instant};

use jobs_core::metrics::prometheus::proto::{MetricFamily, MetricType};
use jobs_core::prelude::*;
use jobs_core::{Backoff, JobMetrics};

const QUEUE: &str = "metrics_test";

#[job(queue = "metrics_test", retries = 2)]
async fn flaky(ctx: JobContext, fail_times: u32) -> Result<(), JobError> {
    if ctx.attempt() <= fail_times {
        return Err(JobError::retryable(format!("planned failure {}", ctx.attempt())));
    }
    Ok(())
}

#[job(queue = "metrics_test", retries = 3)]
async fn doomed() -> Result<(), JobError> {
    Err(JobError::permanent("this input can never work"))
}

#[job(queue = "metrics_test", retries = 1)]
async fn always_fails() -> Result<(), JobError> {
    Err(JobError::retryable("still broken"))
}

/// Waits for `cond` with a deadline, checking every 5 ms.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The value of one series: counter or gauge value, or a histogram's count.
fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(f) = families.iter().find(|f| f.name() == name) else { return 0.0 };
    f.get_metric()
        .iter()
        .filter(|m| labels.iter().all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v)))
        .map(|m| match f.get_field_type() {
            MetricType::HISTOGRAM => m.get_histogram().get_sample_count() as f64,
            MetricType::COUNTER => m.get_counter().get_value(),
            _ => m.get_gauge().get_value(),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_run_counts_every_outcome() {
    let metrics = JobMetrics::new();
    let queue = metrics.instrument(MemoryQueue::new());
    let mut ids = Vec::new();
    for fail_times in [0, 0, 0, 1] {
        ids.push(Flaky { fail_times }.enqueue(&queue).await.expect("enqueue"));
    }
    ids.push(Doomed {}.enqueue_with(&queue, JobOptions::new().priority(Priority::High)).await.expect("enqueue"));
    ids.push(AlwaysFails {}.enqueue(&queue).await.expect("enqueue"));
    // A duplicate inside its `unique_for` window stores nothing: not counted.
    let once = JobOptions::new().unique_for(Duration::from_secs(60)).delay(Duration::from_secs(3600));
    let a = Flaky { fail_times: 9 }.enqueue_with(&queue, once.clone()).await.expect("enqueue");
    let b = Flaky { fail_times: 9 }.enqueue_with(&queue, once).await.expect("enqueue");
    assert_eq!(a, b);

    let pool = WorkerPool::builder(queue.clone())
        .queues([QUEUE])
        .workers(2)
        .backoff(Backoff {
            base: Duration::from_millis(10),
            factor: 2.0,
            cap: Duration::from_millis(50),
            jitter: false,
        })
        .metrics(&metrics)
        .start()
        .expect("pool starts");
    let g = metrics.registry().gather();
    assert_eq!(value(&g, "jobs_worker_slots", &[]), 2.0);

    eventually("every job finished", || {
        let (q, ids) = (&queue, &ids);
        async move {
            for id in ids {
                match q.job(id).await {
                    Ok(Some(info)) if info.status.is_finished() => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;

    let g = metrics.registry().gather();
    let flaky = [("job", "flaky"), ("queue", QUEUE)];
    let doomed = [("job", "doomed"), ("queue", QUEUE)];
    let always = [("job", "always_fails"), ("queue", QUEUE)];
    assert_eq!(value(&g, "jobs_enqueued_total", &[("job", "flaky"), ("priority", "normal")]), 5.0);
    assert_eq!(value(&g, "jobs_enqueued_total", &[("job", "doomed"), ("priority", "high")]), 1.0);
    assert_eq!(value(&g, "jobs_enqueued_total", &always), 1.0);

    assert_eq!(value(&g, "jobs_processed_total", &[flaky[0], flaky[1], ("status", "succeeded")]), 4.0);
    assert_eq!(value(&g, "jobs_processed_total", &[flaky[0], flaky[1], ("status", "failed")]), 1.0);
    assert_eq!(value(&g, "jobs_processed_total", &[doomed[0], doomed[1], ("status", "dead")]), 1.0);
    assert_eq!(value(&g, "jobs_processed_total", &[always[0], always[1], ("status", "failed")]), 1.0);
    assert_eq!(value(&g, "jobs_processed_total", &[always[0], always[1], ("status", "dead")]), 1.0);

    assert_eq!(value(&g, "jobs_retries_total", &flaky), 1.0);
    assert_eq!(value(&g, "jobs_retries_total", &always), 1.0);
    assert_eq!(value(&g, "jobs_retries_total", &doomed), 0.0, "a permanent failure is not retried");
    assert_eq!(value(&g, "jobs_dead_total", &doomed), 1.0);
    assert_eq!(value(&g, "jobs_dead_total", &always), 1.0);
    assert_eq!(value(&g, "jobs_dead_total", &flaky), 0.0);

    assert_eq!(value(&g, "jobs_duration_seconds", &flaky), 5.0, "one observation per attempt");
    assert_eq!(value(&g, "jobs_duration_seconds", &always), 2.0);

    // A slot is busy until its attempt's task ends, just after the result.
    eventually("no worker busy", || async { value(&metrics.registry().gather(), "jobs_active_workers", &[]) == 0.0 })
        .await;
    pool.shutdown().await.expect("clean shutdown");
    let g = metrics.registry().gather();
    assert_eq!(value(&g, "jobs_worker_slots", &[]), 0.0, "a stopped pool gives its slots back");

    // Queue sizes come from the backend's stats when asked for.
    metrics.update_queue_sizes(&queue).await.expect("stats");
    let g = metrics.registry().gather();
    let dead = [("queue", QUEUE), ("state", "dead")];
    assert_eq!(value(&g, "jobs_queue_size", &dead), 2.0);
    assert_eq!(value(&g, "jobs_queue_size", &[("queue", QUEUE), ("state", "scheduled")]), 1.0);
    assert_eq!(value(&g, "jobs_backend_up", &[]), 1.0);
    let text = metrics.encode().expect("encodes");
    assert!(!text.contains(&ids[0].to_string()), "never a job id in a label");
}
