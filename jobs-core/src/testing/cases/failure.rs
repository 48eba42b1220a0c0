//! Failed attempts: retries, dead letters, panics, timeouts, bad data.

use crate::job::JobOptions;
use crate::queue::{JobQueue, QueueAdmin, QueueInspect};
use crate::testing::harness::{probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::{Act, SlowJob, TwoRetries};
use crate::vocab::JobStatus;
use crate::worker::UnknownJobs;
use crate::JobExt;

use super::{ms, put, raw_job};

/// A job that fails twice, then succeeds: three attempts, both errors kept.
pub async fn retry_then_succeed_records_errors<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("retry");
    let id = put(&q, &queue, 1, Act::FailTimes(2), JobOptions::new().max_retries(3)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 3);
    let errors: Vec<_> = info.attempt_log.iter().map(|a| a.error.clone()).collect();
    assert_eq!(errors, vec![Some("planned failure 1".into()), Some("planned failure 2".into()), None]);
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.processed, stats.failed), (1, 2));
}

/// `retries = N` means N + 1 attempts; then the job is dead, with every
/// attempt's error.
pub async fn retries_exhausted_goes_dead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("exhaust");
    let id = put(&q, &queue, 1, Act::FailAlways, JobOptions::new().max_retries(2)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 3);
    assert_eq!(probe(&queue).start_count(), 3);
    assert!(info.attempt_log.iter().all(|a| a.error.as_deref().is_some_and(|e| e.contains("always fails"))));
    assert_eq!(info.last_error(), Some("always fails (attempt 3)"));
    assert_eq!(q.dead_jobs(&queue, 10).await.unwrap()[0].id, id);
}

/// `JobError::permanent` goes to the dead-letter set at once.
pub async fn permanent_error_goes_dead_at_once<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("permanent");
    let id = put(&q, &queue, 1, Act::Permanent, JobOptions::new().max_retries(5)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1);
    assert_eq!(info.last_error(), Some("this input can never work"));
}

/// A panic is a failed attempt; the pool keeps working.
pub async fn panic_is_a_failed_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("panic");
    let pool = test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    let bad = put(&q, &queue, 1, Act::Panic, JobOptions::new().max_retries(0)).await;
    let info = wait_status(&q, &bad, JobStatus::Dead).await;
    assert!(info.last_error().unwrap().contains("panicked: probe 1 panicked on purpose"), "{info:?}");
    let good = put(&q, &queue, 2, Act::Succeed, JobOptions::new()).await;
    wait_status(&q, &good, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
}

/// An attempt past its timeout fails; the pool keeps working.
pub async fn timeout_is_a_failed_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("timeout");
    let pool = test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    let id = SlowJob { key: queue.clone() }.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    assert_eq!(info.attempts, 1, "retries = 0 on the attribute");
    assert!(info.last_error().unwrap().contains("timed out after 150ms"), "{info:?}");
    let good = put(&q, &queue, 2, Act::Succeed, JobOptions::new()).await;
    wait_status(&q, &good, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
}

/// A payload that does not decode is dead-lettered with a clear error.
pub async fn undecodable_payload_goes_dead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("garbage");
    let mut job = raw_job(&queue, "conformance.probe", br#"{"key": 5, "seq": "x""#);
    job.max_retries = Some(5);
    let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1, "a payload that does not decode is not retried");
    assert!(info.last_error().unwrap().contains("payload does not decode"), "{info:?}");
}

/// A job name no handler knows is dead-lettered, naming the job.
pub async fn unknown_job_name_goes_dead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("unknown");
    let id = q.enqueue_many(vec![raw_job(&queue, "no.such.job", b"{}")]).await.unwrap().remove(0);
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert!(info.last_error().unwrap().contains("no handler for job `no.such.job`"), "{info:?}");
}

/// With `UnknownJobs::Requeue`, an unknown name goes back without counting
/// attempts, for another pool, and is dead after the limit.
pub async fn unknown_job_name_can_be_handed_back<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("handover");
    let id = q.enqueue_many(vec![raw_job(&queue, "no.such.job", b"{}")]).await.unwrap().remove(0);
    let pool = test_pool(q.clone(), &[&queue])
        .unknown_jobs(UnknownJobs::Requeue { delay: ms(50), limit: ms(600) })
        .start()
        .unwrap();
    crate::testing::eventually("handed back at least once", || async {
        let i = q.job(&id).await.unwrap().unwrap();
        i.status == JobStatus::Scheduled || i.status == JobStatus::Dead
    })
    .await;
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert!(info.attempts <= 1, "hand-backs are not attempts: {}", info.attempts);
    assert!(info.last_error().unwrap().contains("no pool took it"), "{info:?}");
}

/// Retries: options over the attribute over the pool default.
pub async fn max_retries_precedence<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("precedence");
    let pool = test_pool(q.clone(), &[&queue]).max_retries(1).start().unwrap();
    let attr = TwoRetries { key: queue.clone() }.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let opt = TwoRetries { key: queue.clone() }
        .enqueue_with(&q, JobOptions::new().queue(&queue).max_retries(0))
        .await
        .unwrap();
    let pool_default = put(&q, &queue, 1, Act::FailAlways, JobOptions::new()).await;
    assert_eq!(wait_status(&q, &attr, JobStatus::Dead).await.attempts, 3);
    assert_eq!(wait_status(&q, &opt, JobStatus::Dead).await.attempts, 1);
    assert_eq!(wait_status(&q, &pool_default, JobStatus::Dead).await.attempts, 2);
    pool.shutdown().await.unwrap();
}

/// A panic while the worker checks a payload (in a `Deserialize` impl or a
/// custom validator, before the body) is a failed attempt: the job is
/// retried, then dead with the panic's message, and the pool keeps working.
pub async fn panic_in_payload_check_is_a_failed_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("touchy");
    let pool = test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    let payloads: [&[u8]; 2] =
        [br#"{"key": "k", "text": "panic", "n": 1}"#, br#"{"key": "k", "text": "fine", "n": -1}"#];
    for (payload, why) in payloads.into_iter().zip(["Deserialize panics", "custom validator panics"]) {
        let mut job = raw_job(&queue, "conformance.touchy", payload);
        job.max_retries = Some(1);
        let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);
        let info = wait_status(&q, &id, JobStatus::Dead).await;
        assert_eq!(info.attempts, 2, "retries = 1: {info:?}");
        assert!(info.attempt_log.iter().all(|a| a.error.as_deref().is_some_and(|e| e.contains(why))), "{info:?}");
    }
    assert_eq!(probe(&queue).start_count(), 0, "the body never ran");
    let good = put(&q, &queue, 2, Act::Succeed, JobOptions::new()).await;
    wait_status(&q, &good, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
}
