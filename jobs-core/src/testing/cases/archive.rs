//! Per-queue retention (`QueuePolicy::retention`) and the archive backlog
//! (`QueuePolicy::archive`, `ArchiveBacklog`).

use std::time::Duration;

use crate::queue::{
    ArchiveBacklog, Finish, JobQueue, LeasedJob, Outcome, QueueAdmin, QueueInspect, QueuePolicy, QueueRetention,
};
use crate::testing::harness::unique_queue;
use crate::testing::jobs::Act;
use crate::vocab::{JobId, JobStatus};

use super::{fetch_of, put1};

/// Enqueues `n` jobs on `queue`, takes them and ends each with `outcome`
/// (one finish call per job, so their end times keep their order).
async fn run_to_end<Q: JobQueue>(q: &Q, queue: &str, n: u64, outcome: impl Fn() -> Outcome) -> Vec<JobId> {
    let mut ids = Vec::new();
    for seq in 0..n {
        ids.push(put1(q, queue, seq, Act::Succeed).await);
    }
    let jobs: Vec<LeasedJob> = q.fetch(&fetch_of(queue, n as usize)).await.unwrap().jobs;
    assert_eq!(jobs.len(), n as usize);
    for id in &ids {
        let job = jobs.iter().find(|j| j.id == *id).unwrap();
        q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome: outcome() }]).await.unwrap();
    }
    ids
}

/// Runs the retention of `queue`, which has no job waiting: it runs with
/// every fetch that asks for jobs (one that asks for none may skip it).
/// Returns the queues the fetch reports it archived from.
async fn sweep<Q: JobQueue>(q: &Q, queue: &str) -> Vec<String> {
    let fetched = q.fetch(&fetch_of(queue, 1)).await.unwrap();
    assert!(fetched.jobs.is_empty());
    fetched.archived
}

fn succeeded() -> Outcome {
    Outcome::Succeeded { result: Some(br#"{"ok":true}"#.to_vec()) }
}

fn dead() -> Outcome {
    Outcome::Dead { error: "broken for good".into() }
}

/// Which of `ids` are still stored.
async fn kept<Q: QueueInspect>(q: &Q, ids: &[JobId]) -> Vec<bool> {
    let mut out = Vec::new();
    for id in ids {
        out.push(q.job(id).await.unwrap().is_some());
    }
    out
}

/// A queue's own retention bounds win over the backend's: its finished and
/// dead jobs past its own counts go (oldest first) at the next fetch, while
/// another queue, with no bounds of its own, keeps the backend's and all
/// of its jobs.
pub async fn queue_retention_overrides_the_backends<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let own = unique_queue("retain-own");
    let other = unique_queue("retain-backend");
    let retention = QueueRetention { succeeded_max: Some(1), dead_max: Some(1), ..Default::default() };
    let policy = QueuePolicy { retention, ..Default::default() };
    q.set_policy(&own, policy.clone()).await.unwrap();
    assert_eq!(q.policy(&own).await.unwrap(), policy, "the policy reads back with its retention");

    let done_own = run_to_end(&q, &own, 3, succeeded).await;
    let dead_own = run_to_end(&q, &own, 2, dead).await;
    let done_other = run_to_end(&q, &other, 3, succeeded).await;
    let dead_other = run_to_end(&q, &other, 2, dead).await;
    sweep(&q, &own).await;
    sweep(&q, &other).await;

    assert_eq!(kept(&q, &done_own).await, [false, false, true], "the queue's succeeded_max of 1, oldest gone");
    assert_eq!(kept(&q, &dead_own).await, [false, true], "the queue's dead_max of 1, oldest gone");
    assert_eq!(kept(&q, &done_other).await, [true; 3], "the backend's bounds keep them");
    assert_eq!(kept(&q, &dead_other).await, [true; 2], "the backend's bounds keep them");
    assert_eq!(q.stats().await.unwrap().queue(&own).dead, 1, "the dead count follows");
}

/// A queue that archives puts each job its retention deletes in its backlog,
/// whole and in deletion order: finished ones by count, dead ones by count.
/// One holder at a time reads it; entries go only when acknowledged, and
/// their positions keep growing. A queue that does not archive keeps no
/// backlog.
pub async fn archive_backlog_keeps_deleted_jobs_in_order<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let backlog = q.archive().expect("the backend keeps archive backlogs");
    let queue = unique_queue("archive");
    let plain = unique_queue("archive-off");
    let retention = QueueRetention { succeeded_max: Some(1), dead_max: Some(0), ..Default::default() };
    q.set_policy(&queue, QueuePolicy { retention, archive: true, ..Default::default() }).await.unwrap();
    q.set_policy(&plain, QueuePolicy { retention, ..Default::default() }).await.unwrap();

    let done = run_to_end(&q, &queue, 4, succeeded).await;
    let died = run_to_end(&q, &queue, 1, dead).await;
    run_to_end(&q, &plain, 3, succeeded).await;
    sweep(&q, &queue).await;
    sweep(&q, &plain).await;
    assert_eq!(kept(&q, &done).await, [false, false, false, true]);
    assert_eq!(kept(&q, &died).await, [false]);

    let lease = Duration::from_secs(30);
    let batch = backlog.take_archive(&queue, "a", lease, 100).await.unwrap().expect("nobody else holds it");
    assert!(batch.taken, "taken, not renewed");
    assert_eq!(batch.backlog, 4);
    let ids: Vec<_> = batch.jobs.iter().map(|e| e.job.id.clone()).collect();
    let mut want = done[..3].to_vec();
    want.push(died[0].clone());
    assert_eq!(ids, want, "in deletion order: the finished trimmed first, then the dead one");
    let seqs: Vec<u64> = batch.jobs.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "positions grow: {seqs:?}");
    assert!(batch.jobs.iter().all(|e| e.backlog == batch.jobs[0].backlog && !e.backlog.is_empty()));
    let first = &batch.jobs[0].job;
    assert_eq!(first.status, JobStatus::Succeeded);
    assert_eq!(first.result, Some(serde_json::json!({"ok": true})), "the result is kept");
    assert_eq!(first.payload["key"], serde_json::json!(queue), "the payload is kept");
    assert!(first.finished_at.is_some() && first.attempts == 1);
    let last = &batch.jobs[3].job;
    assert_eq!(last.status, JobStatus::Dead);
    assert_eq!(last.attempt_log.last().and_then(|a| a.error.as_deref()), Some("broken for good"));

    assert!(backlog.take_archive(&queue, "b", lease, 100).await.unwrap().is_none(), "a's lease is live");
    let again = backlog.take_archive(&queue, "a", lease, 2).await.unwrap().unwrap();
    assert!(!again.taken, "renewed");
    assert_eq!(again.jobs.len(), 2, "at most max");
    assert_eq!(backlog.ack_archive(&queue, seqs[1]).await.unwrap(), 2, "two acknowledged, two left");
    let rest = backlog.take_archive(&queue, "a", lease, 100).await.unwrap().unwrap();
    assert_eq!(rest.jobs.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[2..].to_vec());
    backlog.release_archive(&queue, "a").await.unwrap();
    let b = backlog.take_archive(&queue, "b", lease, 100).await.unwrap().expect("released: b takes over");
    assert!(b.taken);
    assert_eq!(backlog.ack_archive(&queue, seqs[3]).await.unwrap(), 0);

    // A later deletion continues the positions; the fetch that made it
    // says so (a pool's archiver is woken by it).
    run_to_end(&q, &queue, 1, succeeded).await;
    assert_eq!(sweep(&q, &queue).await, std::slice::from_ref(&queue));
    assert!(sweep(&q, &queue).await.is_empty(), "nothing more to archive");
    let next = backlog.take_archive(&queue, "b", lease, 100).await.unwrap().unwrap();
    assert_eq!(next.jobs.len(), 1);
    assert!(next.jobs[0].seq > seqs[3], "never reused");
    assert_eq!(next.jobs[0].job.id, done[3], "the older of the two finished went");

    let none = backlog.take_archive(&plain, "a", lease, 100).await.unwrap().unwrap();
    assert_eq!((none.jobs.len(), none.backlog), (0, 0), "a queue that does not archive keeps no backlog");
}

/// A full archive backlog holds the retention back: the jobs past its bound
/// stay stored, and new jobs still run, until entries are acknowledged;
/// then they go into the backlog in their turn.
pub async fn full_archive_backlog_holds_the_retention_back<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let backlog = q.archive().expect("the backend keeps archive backlogs");
    let queue = unique_queue("archive-full");
    let retention = QueueRetention { succeeded_max: Some(0), ..Default::default() };
    q.set_policy(&queue, QueuePolicy { retention, archive: true, ..Default::default() }).await.unwrap();
    let n = crate::queue::ARCHIVE_BACKLOG_MAX + 3;
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let size = left.min(1000);
        left -= size;
        let jobs: Vec<_> = (0..size).map(|_| super::raw_job(&queue, "archived", b"{}")).collect();
        let batch = q.enqueue_many(jobs).await.unwrap();
        let leased = q.fetch(&fetch_of(&queue, size)).await.unwrap().jobs;
        assert_eq!(leased.len(), size);
        let ends = leased
            .iter()
            .map(|j| Finish { id: j.id.clone(), token: j.token, outcome: Outcome::Succeeded { result: None } })
            .collect();
        q.finish(ends).await.unwrap();
        ids.extend(batch);
    }
    for _ in 0..n / 1000 + 2 {
        sweep(&q, &queue).await;
    }
    let lease = Duration::from_secs(30);
    let full = backlog.take_archive(&queue, "a", lease, 1).await.unwrap().unwrap();
    assert_eq!(full.backlog, crate::queue::ARCHIVE_BACKLOG_MAX as u64, "the bound");
    let past = &ids[crate::queue::ARCHIVE_BACKLOG_MAX..];
    assert_eq!(kept(&q, past).await, [true; 3], "past the bound, jobs stay stored");
    let late = put1(&q, &queue, 1, Act::Succeed).await;
    let taken: Vec<_> = q.fetch(&fetch_of(&queue, 1)).await.unwrap().jobs.into_iter().map(|j| j.id).collect();
    assert_eq!(taken, [late], "jobs still run");

    assert_eq!(backlog.ack_archive(&queue, full.jobs[0].seq + 1).await.unwrap(), full.backlog - 2);
    sweep(&q, &queue).await;
    assert_eq!(kept(&q, past).await, [false, false, true], "as many as there was room for, oldest first");
}
