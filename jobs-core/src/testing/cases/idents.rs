//! Caller ids (`JobOptions::id`) and keys (`JobOptions::key`).

use std::time::Duration;

use crate::error::Error;
use crate::job::{JobExt, JobOptions};
use crate::queue::{JobQueue, KeyMode, QueueAdmin, QueueInspect};
use crate::testing::harness::{probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::{JobStatus, Priority};

use super::{probe_job, put};

const HOUR: Duration = Duration::from_secs(3600);

/// A second enqueue with a stored job's caller id writes nothing and
/// returns that job's id, or fails naming it when asked to; the id is per
/// queue, shown in the job's info, and a batch that fails on a held id
/// writes none of its jobs.
pub async fn caller_id_returns_the_stored_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("callerid");
    let other = unique_queue("callerid2");
    let id = || JobOptions::new().id("order-42");
    let first = put(&q, &queue, 1, Act::Succeed, id()).await;
    let again = put(&q, &queue, 2, Act::Succeed, id()).await;
    assert_eq!(again, first);
    match probe_job(&queue, 3, Act::Succeed).enqueue_with(&q, id().fail_if_exists().queue(&queue)).await {
        Err(Error::IdExists { caller_id, existing }) => {
            assert_eq!((caller_id.as_str(), existing), ("order-42", first.clone()))
        }
        other => panic!("expected IdExists, got {other:?}"),
    }
    let info = q.job(&first).await.unwrap().unwrap();
    assert_eq!(info.caller_id.as_deref(), Some("order-42"));
    assert_eq!(info.payload["seq"], 1, "the stored job is untouched");
    let elsewhere = put(&q, &other, 4, Act::Succeed, id()).await;
    assert_ne!(elsewhere, first, "ids are per queue");

    // All or nothing: a new job in the same batch as a refused one is not stored.
    let fresh =
        probe_job(&queue, 5, Act::Succeed).into_new_job(JobOptions::new().id("order-43").queue(&queue)).unwrap();
    let held = probe_job(&queue, 6, Act::Succeed).into_new_job(id().fail_if_exists().queue(&queue)).unwrap();
    let fresh_id = fresh.id.clone();
    assert!(matches!(q.enqueue_many(vec![fresh, held]).await, Err(Error::IdExists { .. })));
    assert!(q.job(&fresh_id).await.unwrap().is_none(), "nothing of the refused batch was written");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);

    // Two jobs of one batch with one id: refused before anything is written.
    let a = probe_job(&queue, 7, Act::Succeed).into_new_job(JobOptions::new().id("dup").queue(&queue)).unwrap();
    let b = probe_job(&queue, 8, Act::Succeed).into_new_job(JobOptions::new().id("dup").queue(&queue)).unwrap();
    assert!(matches!(q.enqueue_many(vec![a, b]).await, Err(Error::InvalidArgument(_))));
    let too_long = "x".repeat(crate::queue::MAX_CALLER_ID_LEN + 1);
    assert!(matches!(
        probe_job(&queue, 9, Act::Succeed).enqueue_with(&q, JobOptions::new().id(too_long).queue(&queue)).await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}

/// A caller id stays held after its job ended, while the job is kept; once
/// the job is deleted, the id names a new job.
pub async fn caller_id_is_free_once_the_job_is_gone<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("calleridgone");
    let id = || JobOptions::new().id("delivery-7");
    let first = put(&q, &queue, 1, Act::Permanent, id()).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &first, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(put(&q, &queue, 2, Act::Succeed, id()).await, first, "an ended job kept still holds its id");
    assert_eq!(q.purge_dead(&queue).await.unwrap(), 1);
    let second = put(&q, &queue, 3, Act::Succeed, id()).await;
    assert_ne!(second, first, "a deleted job's id can be used again");
    let info = q.job(&second).await.unwrap().unwrap();
    assert_eq!((info.caller_id.as_deref(), info.status), (Some("delivery-7"), JobStatus::Pending));
}

/// `KeyMode::Keep`: while a job with the key waits, another enqueue with it
/// returns that job unchanged; once the job started, the key makes a new
/// job. Keys are per job name and queue.
pub async fn key_keep_returns_the_waiting_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("keykeep");
    let keep = || JobOptions::new().key("user-7", KeyMode::Keep);
    let first = put(&q, &queue, 1, Act::Succeed, keep()).await;
    assert_eq!(put(&q, &queue, 2, Act::Succeed, keep().delay(HOUR)).await, first);
    let info = q.job(&first).await.unwrap().unwrap();
    assert_eq!((info.payload["seq"].as_u64(), info.status), (Some(1), JobStatus::Pending), "kept as it was");
    assert_eq!(info.key.as_deref(), Some("user-7"));
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &first, JobStatus::Succeeded).await;
    let second = put(&q, &queue, 3, Act::Succeed, keep()).await;
    assert_ne!(second, first, "a job that started no longer holds its key");
    wait_status(&q, &second, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let seqs: Vec<u64> = probe(&queue).starts().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![1, 3]);
}

/// `KeyMode::Replace` (debounce): the waiting job takes the payload, due
/// time and priority of each new enqueue and keeps its id and enqueue
/// time; it runs once, with the last payload.
pub async fn key_replace_debounces<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("keyreplace");
    let replace = || JobOptions::new().key("doc-1", KeyMode::Replace);
    let first = put(&q, &queue, 1, Act::Succeed, replace().delay(HOUR)).await;
    let before = q.job(&first).await.unwrap().unwrap();
    assert_eq!(put(&q, &queue, 2, Act::Succeed, replace().delay(2 * HOUR)).await, first);
    let info = q.job(&first).await.unwrap().unwrap();
    let now = q.now().await.unwrap();
    assert_eq!((info.status, info.payload["seq"].as_u64()), (JobStatus::Scheduled, Some(2)));
    let due = info.run_at.expect("scheduled");
    assert!(due > now + HOUR + Duration::from_secs(3000), "the due time moved to the last enqueue's: {due:?}");
    assert_eq!(info.enqueued_at, before.enqueued_at, "the enqueue time stays");
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.scheduled, stats.pending), (1, 0));

    // Due now, at another priority: it becomes pending and runs once, as seq 3.
    let now_opts = replace().priority(Priority::High);
    assert_eq!(put(&q, &queue, 3, Act::Succeed, now_opts).await, first);
    let info = q.job(&first).await.unwrap().unwrap();
    assert_eq!((info.status, info.priority, info.run_at), (JobStatus::Pending, Priority::High, None));
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.scheduled, stats.pending), (0, 1));
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let done = wait_status(&q, &first, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(probe(&queue).starts().iter().map(|s| s.seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(done.result, Some(serde_json::json!(3)));

    // Two jobs of one batch with one name and key: refused.
    let a = probe_job(&queue, 4, Act::Succeed).into_new_job(replace().queue(&queue)).unwrap();
    let b = probe_job(&queue, 5, Act::Succeed).into_new_job(replace().queue(&queue)).unwrap();
    assert!(matches!(q.enqueue_many(vec![a, b]).await, Err(Error::InvalidArgument(_))));
}
