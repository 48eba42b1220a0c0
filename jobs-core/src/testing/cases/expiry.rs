//! Expiry (`JobOptions::expires_in`): a job not started in time ends
//! expired and never runs.

use std::time::Duration;

use crate::job::{JobExt, JobOptions};
use crate::queue::{JobQueue, QueueAdmin, QueueInspect, EXPIRE_BATCH};
use crate::testing::harness::{eventually, probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::{JobId, JobStatus};
use crate::Backoff;

use super::{fetch_of, ms, probe_job, put};

/// Waits until the backend's clock is past the expiry of job `id`.
async fn until_expired<Q: JobQueue + QueueInspect + ?Sized>(q: &Q, id: &JobId) {
    let info = q.job(id).await.unwrap().unwrap();
    let expires = info.expires_at.expect("the job shows its expiry");
    eventually("the backend's clock passes the expiry", || async { q.now().await.unwrap() > expires }).await;
}

/// A job whose expiry passed before a worker took it ends expired: never
/// run, counted, kept like a finished job; a job whose expiry is far off
/// runs as usual.
pub async fn expired_job_never_runs<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("expiry");
    let unique = || JobOptions::new().unique_for(Duration::from_secs(3600));
    let late = put(&q, &queue, 1, Act::Succeed, unique().expires_in(ms(50))).await;
    let fine = put(&q, &queue, 2, Act::Succeed, JobOptions::new().expires_in(Duration::from_secs(3600))).await;
    let info = q.job(&late).await.unwrap().unwrap();
    assert_eq!(info.status, JobStatus::Pending);
    until_expired(&q, &late).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &fine, JobStatus::Succeeded).await;
    let info = wait_status(&q, &late, JobStatus::Expired).await;
    pool.shutdown().await.unwrap();
    assert_eq!(probe(&queue).starts().iter().map(|s| s.seq).collect::<Vec<_>>(), vec![2], "the expired job never ran");
    assert_eq!(info.attempts, 0);
    assert!(info.attempt_log.is_empty());
    assert!(info.finished_at.is_some());
    assert!(info.status.is_finished());
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.expired, stats.processed, stats.pending), (1, 1, 0));
    assert_eq!(
        q.list_jobs(&queue, JobStatus::Expired, 0, 10).await.unwrap().iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&late]
    );
    // Finished: nothing to cancel.
    assert_eq!(q.cancel(&late).await.unwrap(), crate::queue::CancelResult::AlreadyFinished(JobStatus::Expired));
    // Nor does it hold its deduplication key: an equal job is a new one.
    let again = put(&q, &queue, 1, Act::Succeed, unique()).await;
    assert_ne!(again, late);
}

/// Expiry is about starting: a job whose first attempt failed has started,
/// and its retry runs even when it is due after the expiry.
pub async fn retry_after_expiry_still_runs<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("expiryretry");
    let id = put(&q, &queue, 1, Act::FailTimes(1), JobOptions::new().max_retries(1).expires_in(ms(300))).await;
    let backoff = Backoff { base: ms(600), factor: 1.0, cap: ms(600), jitter: false };
    let pool = test_pool(q.clone(), &[&queue]).backoff(backoff).start().unwrap();
    let retrying = wait_status(&q, &id, JobStatus::Retrying).await;
    assert!(retrying.run_at > retrying.expires_at, "the retry is due after the expiry: {retrying:?}");
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 2);
    assert_eq!(probe(&queue).start_count(), 2);
}

/// A backlog of expired jobs never stalls a fetch: one fetch ends at most
/// `EXPIRE_BATCH` of them and asks to be called again at once (`next_due`
/// of zero); the next one gets through to the live job behind them. Each
/// fetch touches only the jobs it pops.
pub async fn expired_backlog_does_not_stall_fetching<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("expirybacklog");
    let n = EXPIRE_BATCH + 200;
    let opts = JobOptions::new().queue(&queue).expires_in(ms(50));
    let backlog: Vec<_> =
        (0..n as u64).map(|i| probe_job(&queue, i, Act::Succeed).into_new_job(opts.clone()).unwrap()).collect();
    let last = q.enqueue_many(backlog).await.unwrap().pop().unwrap();
    until_expired(&q, &last).await;
    let live = put(&q, &queue, 99_999, Act::Succeed, JobOptions::new()).await;
    let req = fetch_of(&queue, 1);
    let first = q.fetch(&req).await.unwrap();
    assert!(first.jobs.is_empty());
    assert_eq!(first.expired.len(), EXPIRE_BATCH, "bounded work per fetch");
    assert_eq!(first.next_due, Some(Duration::ZERO), "and the fetcher is told to come back at once");
    let second = q.fetch(&req).await.unwrap();
    assert_eq!(second.expired.len(), n - EXPIRE_BATCH);
    assert_eq!(second.jobs.iter().map(|j| &j.id).collect::<Vec<_>>(), vec![&live], "progress: the live job is taken");
    assert!(second.expired.iter().all(|e| e.name == "conformance.probe" && e.id.queue() == queue));
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.expired, stats.pending, stats.running), (n as u64, 0, 1));
}

/// A pool clears an expired backlog by itself and runs the job behind it
/// without waiting for a wake-up or a timer.
pub async fn pool_runs_the_job_behind_an_expired_backlog<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("expirypool");
    let n = EXPIRE_BATCH * 2 + 10;
    let opts = JobOptions::new().queue(&queue).expires_in(ms(50));
    let backlog: Vec<_> =
        (0..n as u64).map(|i| probe_job(&queue, i, Act::Succeed).into_new_job(opts.clone()).unwrap()).collect();
    let last = q.enqueue_many(backlog).await.unwrap().pop().unwrap();
    until_expired(&q, &last).await;
    let live = put(&q, &queue, 99_999, Act::Succeed, JobOptions::new()).await;
    let pool = test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    wait_status(&q, &live, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(probe(&queue).starts().iter().map(|s| s.seq).collect::<Vec<_>>(), vec![99_999]);
    assert_eq!(q.stats().await.unwrap().queue(&queue).expired, n as u64);
}
