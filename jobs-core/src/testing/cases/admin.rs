//! Operator calls: stats, dead-letter set.

use crate::error::Error;
use crate::job::JobOptions;
use crate::queue::{JobQueue, PoolPresence, QueueAdmin, QueueHistory, QueueInspect};
use crate::testing::harness::{test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::{JobStatus, Priority};

use super::{ms, put};

/// `stats` counts per queue and priority, with processed and failed totals.
pub async fn stats_count_per_priority<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("stats");
    put(&q, &queue, 1, Act::Succeed, JobOptions::new().priority(Priority::High)).await;
    put(&q, &queue, 2, Act::Succeed, JobOptions::new().priority(Priority::High)).await;
    put(&q, &queue, 3, Act::Succeed, JobOptions::new().priority(Priority::Low)).await;
    put(&q, &queue, 4, Act::Succeed, JobOptions::new().delay(ms(60_000))).await;
    let s = q.stats().await.unwrap();
    assert_eq!(s.get(&queue, Priority::High).pending, 2);
    assert_eq!(s.get(&queue, Priority::Low).pending, 1);
    assert_eq!(s.get(&queue, Priority::Normal).scheduled, 1);
    assert_eq!(s.get(&queue, Priority::Critical), Default::default());
    let dead = put(&q, &queue, 5, Act::Permanent, JobOptions::new().priority(Priority::Critical)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &dead, JobStatus::Dead).await;
    crate::testing::eventually("three processed", || async { q.stats().await.unwrap().queue(&queue).processed == 3 })
        .await;
    pool.shutdown().await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!(s.get(&queue, Priority::Critical).dead, 1);
    assert_eq!(s.get(&queue, Priority::Critical).failed, 1);
    assert_eq!(s.get(&queue, Priority::High).processed, 2);
    let t = s.queue(&queue);
    assert_eq!((t.pending, t.scheduled, t.running, t.dead, t.processed, t.failed), (0, 1, 0, 1, 3, 1));
}

/// `dead_jobs` lists the newest first, up to the limit.
pub async fn dead_jobs_newest_first<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("deadlist");
    let pool = test_pool(q.clone(), &[&queue]).workers(1).fetch_batch(1).start().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = put(&q, &queue, i, Act::Permanent, JobOptions::new()).await;
        wait_status(&q, &id, JobStatus::Dead).await;
        ids.push(id);
    }
    pool.shutdown().await.unwrap();
    let dead: Vec<_> = q.dead_jobs(&queue, 2).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(dead, vec![ids[2].clone(), ids[1].clone()]);
    assert!(q.dead_jobs("no-such-queue", 10).await.unwrap().is_empty());
}

/// `retry_dead` puts a dead job back with its attempts reset; a job that is
/// not dead is refused.
pub async fn retry_dead_runs_again<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("retrydead");
    let id = put(&q, &queue, 1, Act::FailFirstRun, JobOptions::new().max_retries(0)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &id, JobStatus::Dead).await;
    q.retry_dead(&id).await.unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1, "attempts reset by retry_dead");
    assert!(info.attempt_log.iter().any(|a| a.error.is_some()), "history kept");
    let err = q.retry_dead(&id).await.unwrap_err();
    assert!(matches!(err, Error::InvalidState { status: JobStatus::Succeeded, .. }), "{err:?}");
}

/// `purge_dead` deletes every dead job of a queue and says how many.
pub async fn purge_dead_deletes<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("purge");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let a = put(&q, &queue, 1, Act::Permanent, JobOptions::new()).await;
    let b = put(&q, &queue, 2, Act::Permanent, JobOptions::new()).await;
    wait_status(&q, &a, JobStatus::Dead).await;
    wait_status(&q, &b, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(q.purge_dead(&queue).await.unwrap(), 2);
    assert!(q.job(&a).await.unwrap().is_none());
    assert_eq!(q.stats().await.unwrap().queue(&queue).dead, 0);
    assert_eq!(q.purge_dead(&queue).await.unwrap(), 0);
}

/// A running pool is listed with its host, pid, queues and running jobs;
/// after shutdown it is not.
pub async fn pools_report_presence<Q: JobQueue + QueueInspect + QueueAdmin + PoolPresence + Clone>(q: Q) {
    let queue = unique_queue("presence");
    let pool = test_pool(q.clone(), &[&queue]).lease(ms(600)).start().unwrap();
    let pool_id = pool.id().to_owned();
    let job = put(&q, &queue, 1, Act::WaitForCancel, JobOptions::new()).await;
    let w = crate::testing::eventually_some("the pool lists its running job", || async {
        q.pools().await.unwrap().into_iter().find(|w| w.id == pool_id && w.running_jobs.contains(&job))
    })
    .await;
    assert_eq!(w.queues, vec![queue.clone()]);
    assert_eq!(w.pid, std::process::id());
    assert_eq!((w.workers, w.running), (4, 1));
    assert!(!w.host.is_empty());
    q.cancel(&job).await.unwrap();
    wait_status(&q, &job, JobStatus::Cancelled).await;
    pool.shutdown().await.unwrap();
    assert!(q.pools().await.unwrap().iter().all(|w| w.id != pool_id), "removed at shutdown");
}

/// Jobs are listed per state a page at a time; attempts are counted per
/// minute.
pub async fn jobs_listed_by_state_with_history<Q: JobQueue + QueueInspect + QueueAdmin + QueueHistory + Clone>(q: Q) {
    let queue = unique_queue("listing");
    let mut pending = Vec::new();
    for i in 0..5 {
        pending.push(put(&q, &queue, i, Act::Succeed, JobOptions::new()).await);
    }
    let urgent = put(&q, &queue, 9, Act::Succeed, JobOptions::new().priority(Priority::Critical)).await;
    let later = put(&q, &queue, 10, Act::Succeed, JobOptions::new().delay(ms(60_000))).await;
    let page = |status, offset, limit| {
        let q = q.clone();
        let queue = queue.clone();
        async move {
            q.list_jobs(&queue, status, offset, limit).await.unwrap().into_iter().map(|i| i.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(JobStatus::Pending, 0, 3).await, vec![urgent.clone(), pending[0].clone(), pending[1].clone()]);
    assert_eq!(page(JobStatus::Pending, 3, 10).await, pending[2..].to_vec());
    assert_eq!(page(JobStatus::Scheduled, 0, 10).await, vec![later.clone()]);
    assert!(page(JobStatus::Dead, 0, 10).await.is_empty());
    q.cancel(&later).await.unwrap();
    assert_eq!(page(JobStatus::Cancelled, 0, 10).await, vec![later]);
    let failing = put(&q, &queue, 11, Act::Permanent, JobOptions::new()).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &failing, JobStatus::Dead).await;
    crate::testing::eventually("all done", || async { q.stats().await.unwrap().queue(&queue).processed == 6 }).await;
    pool.shutdown().await.unwrap();
    assert_eq!(page(JobStatus::Dead, 0, 10).await, vec![failing]);
    assert_eq!(page(JobStatus::Succeeded, 0, 100).await.len(), 6);
    let history = q.throughput(&queue, 60).await.unwrap();
    assert_eq!(history.len(), 60);
    assert!(history.windows(2).all(|w| w[0].minute + 60 == w[1].minute));
    let (processed, failed) = history.iter().fold((0, 0), |(p, f), m| (p + m.processed, f + m.failed));
    assert_eq!((processed, failed), (6, 1));
}
