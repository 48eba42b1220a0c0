//! Producer-side behaviours.

use crate::error::Error;
use crate::job::{JobExt, JobOptions};
use crate::queue::{JobQueue, QueueAdmin, QueueInspect, QueuePolicy};
use crate::testing::harness::unique_queue;
use crate::testing::jobs::{Act, ProbeJob, ValidatedJob};
use crate::vocab::{JobId, JobStatus, Priority};

use super::{probe_job, put, put1};

/// An enqueued job is stored pending, on its queue, with its payload.
pub async fn enqueue_stores_pending_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("enq");
    let id = put1(&q, &queue, 7, Act::Succeed).await;
    assert_eq!(id.queue(), queue);
    let info = q.job(&id).await.unwrap().expect("stored");
    assert_eq!(info.status, JobStatus::Pending);
    assert_eq!(info.name, "conformance.probe");
    assert_eq!(info.queue, queue);
    assert_eq!(info.attempts, 0);
    assert_eq!(info.payload["seq"], 7);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}

/// A payload that breaks its rules is refused with every broken rule named,
/// and nothing is written.
pub async fn enqueue_validation_error_writes_nothing<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("invalid");
    let err = ValidatedJob { to: "not-an-email".into(), count: 11 }
        .enqueue_with(&q, JobOptions::new().queue(&queue))
        .await
        .expect_err("invalid payload refused");
    let Error::Validation(v) = &err else { panic!("expected a validation error, got {err:?}") };
    assert_eq!(v.errors.len(), 2, "{v}");
    assert_eq!((v.errors[0].field.as_str(), v.errors[0].rule.as_str()), ("to", "email"));
    assert_eq!((v.errors[1].field.as_str(), v.errors[1].rule.as_str()), ("count", "range"));
    assert_eq!(q.stats().await.unwrap().queue(&queue), Default::default());
    // schedule_at validates first too.
    let when = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    assert!(ValidatedJob { to: "x".into(), count: 1 }.schedule_at(&q, when).await.is_err());
}

/// `enqueue_many` stores a batch and returns ids in order.
pub async fn enqueue_many_keeps_order<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("many");
    let jobs = (0..50)
        .map(|i| probe_job(&queue, i, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap())
        .collect::<Vec<_>>();
    let want: Vec<(String, ulid::Ulid)> = jobs.iter().map(|j| (j.id.queue().to_owned(), j.id.ulid())).collect();
    let ids = q.enqueue_many(jobs).await.unwrap();
    // The jobs given, in order (a backend may name the partition it stored
    // each one in: the id it returns is the one to use).
    assert_eq!(ids.iter().map(|id| (id.queue().to_owned(), id.ulid())).collect::<Vec<_>>(), want);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(q.job(id).await.unwrap().unwrap().payload["seq"], i as u64);
    }
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 50);
}

/// A batch that a queue's limit refuses stores none of its jobs.
pub async fn enqueue_many_is_all_or_nothing<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("atomic");
    q.set_policy(&queue, QueuePolicy { max_jobs: Some(3), priority_levels: vec![], ..Default::default() })
        .await
        .unwrap();
    put1(&q, &queue, 0, Act::Succeed).await;
    let jobs = (1..=3)
        .map(|i| probe_job(&queue, i, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap())
        .collect::<Vec<_>>();
    let err = q.enqueue_many(jobs).await.expect_err("4 > max_jobs 3");
    assert!(matches!(err, Error::QueueFull { max_jobs: 3, .. }), "{err:?}");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}

/// `enqueue_all` goes to the backend in one batch: when a queue's limit
/// refuses it, none of its jobs is stored.
pub async fn enqueue_all_is_all_or_nothing<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("all");
    q.set_policy(&queue, QueuePolicy { max_jobs: Some(3), priority_levels: vec![], ..Default::default() })
        .await
        .unwrap();
    put1(&q, &queue, 0, Act::Succeed).await;
    let batch = (1..=3).map(|i| probe_job(&queue, i, Act::Succeed));
    let err = ProbeJob::enqueue_all_with(&q, batch, JobOptions::new().queue(&queue)).await.expect_err("4 > max_jobs 3");
    assert!(matches!(err, Error::QueueFull { max_jobs: 3, .. }), "{err:?}");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
    let batch = (1..=2).map(|i| probe_job(&queue, i, Act::Succeed));
    let ids = ProbeJob::enqueue_all_with(&q, batch, JobOptions::new().queue(&queue)).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 3);
}

/// An unknown id is `None`; cancelling or retrying it is `NotFound`.
pub async fn job_unknown_id_is_none<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let id = JobId::new(&unique_queue("none"));
    assert!(q.job(&id).await.unwrap().is_none());
    assert!(matches!(q.cancel(&id).await, Err(Error::NotFound(_))));
    assert!(matches!(q.retry_dead(&id).await, Err(Error::NotFound(_))));
}

/// `max_jobs` refuses new jobs past the bound with a clear error; a retry is
/// never refused.
pub async fn max_jobs_refuses_but_never_a_retry<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("maxjobs");
    q.set_policy(&queue, QueuePolicy { max_jobs: Some(2), priority_levels: vec![], ..Default::default() })
        .await
        .unwrap();
    put1(&q, &queue, 1, Act::FailTimes(1)).await;
    put1(&q, &queue, 2, Act::Succeed).await;
    let err = probe_job(&queue, 3, Act::Succeed).enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap_err();
    assert!(err.to_string().contains("is full"), "{err}");
    // The failing job retries while the queue is at its bound.
    let p = crate::testing::probe(&queue);
    let pool = crate::testing::test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    crate::testing::eventually("both jobs done", || async { q.stats().await.unwrap().queue(&queue).processed == 2 })
        .await;
    pool.shutdown().await.unwrap();
    assert_eq!(p.start_count(), 3, "job 1 ran twice, job 2 once");
}

/// A queue's `priority_levels` refuse other priorities, naming what it takes.
pub async fn priority_levels_refuse_other_priorities<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("levels");
    let levels = vec![Priority::Normal, Priority::High];
    q.set_policy(&queue, QueuePolicy { max_jobs: None, priority_levels: levels, ..Default::default() }).await.unwrap();
    put(&q, &queue, 1, Act::Succeed, JobOptions::new().priority(Priority::High)).await;
    let err = probe_job(&queue, 2, Act::Succeed)
        .enqueue_with(&q, JobOptions::new().queue(&queue).priority(Priority::Critical))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PriorityNotAccepted { priority: Priority::Critical, .. }), "{err:?}");
    assert!(err.to_string().contains("normal, high"), "{err}");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}

/// `unique_for`: an equal payload within the window returns the live job's
/// id and writes nothing; another payload, or after the job finished, is new.
pub async fn unique_for_deduplicates<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("unique");
    let opts = || JobOptions::new().unique_for(std::time::Duration::from_secs(60));
    let a = put(&q, &queue, 1, Act::Succeed, opts()).await;
    let b = put(&q, &queue, 1, Act::Succeed, opts()).await;
    let c = put(&q, &queue, 2, Act::Succeed, opts()).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 2);
    let pool = crate::testing::test_pool(q.clone(), &[&queue]).start().unwrap();
    crate::testing::wait_status(&q, &a, crate::vocab::JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let d = put(&q, &queue, 1, Act::Succeed, opts()).await;
    assert_ne!(a, d, "a finished job no longer deduplicates");
}

/// A job sent to another queue with `JobOptions::queue` runs there.
pub async fn queue_override_routes_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("routed");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    assert_eq!(id.queue(), queue);
    let pool = crate::testing::test_pool(q.clone(), &[&queue]).start().unwrap();
    crate::testing::wait_status(&q, &id, crate::vocab::JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(crate::testing::probe(&queue).starts()[0].queue, queue);
    let bad = probe_job(&queue, 2, Act::Succeed).enqueue_with(&q, JobOptions::new().queue("bad queue!")).await;
    assert!(matches!(bad, Err(Error::InvalidQueueName(_))));
}

/// A job's headers (trace context) are stored and handed to the worker.
pub async fn headers_travel_with_the_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("headers");
    let mut job = probe_job(&queue, 1, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap();
    job.headers.insert("traceparent".into(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!(info.headers["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let req = crate::queue::FetchRequest {
        queues: vec![queue.clone()],
        max: 1,
        lease: std::time::Duration::from_secs(5),
        default_max_retries: 3,
        max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
    };
    let leased = q.fetch(&req).await.unwrap().jobs.remove(0);
    assert_eq!(leased.headers, info.headers);
    let plain = put1(&q, &queue, 2, Act::Succeed).await;
    assert!(q.job(&plain).await.unwrap().unwrap().headers.is_empty(), "no span, no header");
}
