//! Archival on Redis, through the archiver and the JSON-lines sink: a batch
//! written just before a crash is not written again once the crashed
//! archiver's lease expired, and archivers taking a queue over from one
//! another (after a clean stop or a lapsed lease) write each job once, in
//! order.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::archive::{read_archive, ArchiveQuery, ArchiveSettings, ArchiveSink, Archiver, JsonLinesSink};
use jobs_core::backend::{FetchRequest, Finish, Outcome, DEFAULT_MAX_CRASHES};
use jobs_core::{ArchiveBacklog, JobExt, JobId, JobOptions, JobQueue, QueueAdmin, QueuePolicy, QueueRetention};
use jobs_redis::testing::{CrashJob, RedisServer};
use jobs_redis::RedisQueue;

/// How long a test waits for an outcome before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh folder, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    Scratch(std::env::temp_dir().join(format!("jobs-redis-archive-{tag}-{}", JobId::new("t").ulid())))
}

fn fetch_of(queue: &str, max: usize) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.to_owned()],
        max,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: DEFAULT_MAX_CRASHES,
    }
}

/// A queue that archives and keeps none of its finished jobs.
async fn archiving(q: &RedisQueue, tag: &str) -> String {
    let queue = jobs_core::testing::unique_queue(tag);
    let retention = QueueRetention { succeeded_max: Some(0), ..Default::default() };
    q.set_policy(&queue, QueuePolicy { retention, archive: true, ..Default::default() }).await.unwrap();
    queue
}

/// Runs `n` jobs to success and sweeps them into the backlog; their ids,
/// in the order they ended.
async fn run_and_sweep(q: &RedisQueue, queue: &str, n: u64) -> Vec<JobId> {
    let jobs = (0..n).map(|seq| CrashJob { seq, sleep_ms: 0 });
    let ids = CrashJob::enqueue_all_with(q, jobs, JobOptions::new().queue(queue)).await.unwrap();
    let leased = q.fetch(&fetch_of(queue, ids.len())).await.unwrap().jobs;
    for id in &ids {
        let j = leased.iter().find(|j| j.id == *id).unwrap();
        let outcome = Outcome::Succeeded { result: None };
        q.finish(vec![Finish { id: id.clone(), token: j.token, outcome }]).await.unwrap();
    }
    assert!(q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.is_empty());
    ids
}

fn archiver(q: &RedisQueue, dir: &Scratch, holder: &str, queue: &str, lease: Duration) -> Archiver {
    let settings = ArchiveSettings { lease, ..Default::default() };
    Archiver::new(q.archive().unwrap(), Arc::new(JsonLinesSink::new(&dir.0)), holder, vec![queue.to_owned()])
        .settings(settings)
}

fn archived_ids(dir: &Scratch, queue: &str) -> Vec<JobId> {
    let all = read_archive(&dir.0, &ArchiveQuery { queue: Some(queue.into()), ..Default::default() }).unwrap();
    all.into_iter().map(|e| e.job.id).collect()
}

/// Drains with `a` until it wrote `n` entries (it waits for another's
/// lease to lapse meanwhile).
async fn drain_until(a: &mut Archiver, n: u64) {
    let start = Instant::now();
    let mut written = 0;
    while written < n {
        written += a.drain().await.unwrap();
        assert!(start.elapsed() < DEADLINE, "wrote {written} of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(written, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_before_a_crash_is_not_written_again() {
    let server = RedisServer::start();
    let q = RedisQueue::connect(&server.url()).await.unwrap();
    let queue = archiving(&q, "arch-crash").await;
    let ids = run_and_sweep(&q, &queue, 5).await;
    let dir = scratch("crash");

    // The first archiver takes 3 entries, writes them and dies, its lease
    // left to lapse.
    let lease = Duration::from_millis(300);
    let batch = q.archive().unwrap().take_archive(&queue, "a", lease, 3).await.unwrap().unwrap();
    JsonLinesSink::new(&dir.0).write(&queue, &batch.jobs).await.unwrap();

    let mut b = archiver(&q, &dir, "b", &queue, lease);
    assert_eq!(b.drain().await.unwrap(), 0, "a's lease is live");
    drain_until(&mut b, 2).await;
    assert_eq!(archived_ids(&dir, &queue), ids, "each job once, in order");
    let left = q.archive().unwrap().take_archive(&queue, "b", lease, 10).await.unwrap().unwrap();
    assert_eq!(left.backlog, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archivers_taking_over_from_one_another_write_each_job_once() {
    let server = RedisServer::start();
    let q = RedisQueue::connect(&server.url()).await.unwrap();
    let queue = archiving(&q, "arch-handover").await;
    let dir = scratch("handover");
    let lease = Duration::from_millis(200);
    let (mut a, mut b) = (archiver(&q, &dir, "a", &queue, lease), archiver(&q, &dir, "b", &queue, lease));
    let backlog = q.archive().unwrap();
    let mut all = Vec::new();
    for round in 0..6u64 {
        all.extend(run_and_sweep(&q, &queue, 7 + round).await);
        let (now, other) = if round % 2 == 0 { (&mut a, "b") } else { (&mut b, "a") };
        if round % 4 < 2 {
            // The other stopped cleanly: its lease is given up.
            backlog.release_archive(&queue, other).await.unwrap();
        }
        // Else its lease lapses: `now` waits for it.
        drain_until(now, 7 + round).await;
    }
    assert_eq!(archived_ids(&dir, &queue), all, "each job once, in order, whoever wrote it");
}
