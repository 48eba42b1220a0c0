//! Archival on `MemoryQueue`: the archiver writes each deleted job to the
//! JSON-lines sink once and in order, across a crash between writing a
//! batch and removing it from the backlog, a torn last line, and file
//! rotation; a worker pool runs the archiver.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::archive::{read_archive, ArchiveQuery, ArchiveSettings, ArchiveSink, Archiver, JsonLinesSink};
use jobs_core::backend::{FetchRequest, Finish, Outcome, DEFAULT_MAX_CRASHES};
use jobs_core::prelude::*;
use jobs_core::{ArchiveBacklog, JobStatus, QueuePolicy, QueueRetention};

/// How long a test waits for an outcome before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

#[job(queue = "archive_pool_test")]
async fn archived_one(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// A fresh folder under the system's temporary folder, removed when
/// dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("jobs-archive-{tag}-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
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

/// A queue that archives and keeps no finished job.
async fn archiving(q: &MemoryQueue, queue: &str) {
    let retention = QueueRetention { succeeded_max: Some(0), ..Default::default() };
    q.set_policy(queue, QueuePolicy { retention, archive: true, ..Default::default() }).await.unwrap();
}

/// Runs `n` jobs of `queue` to success, then a fetch that sweeps them into
/// the backlog; returns their ids in the order they ended.
async fn run_and_sweep(q: &MemoryQueue, queue: &str, n: u32) -> Vec<JobId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(ArchivedOne { n: i }.enqueue_with(q, JobOptions::new().queue(queue)).await.unwrap());
    }
    let jobs = q.fetch(&fetch_of(queue, n as usize)).await.unwrap().jobs;
    for id in &ids {
        let j = jobs.iter().find(|j| j.id == *id).unwrap();
        let outcome = Outcome::Succeeded { result: Some(b"1".to_vec()) };
        q.finish(vec![Finish { id: j.id.clone(), token: j.token, outcome }]).await.unwrap();
    }
    assert!(q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.is_empty());
    ids
}

fn read_queue(dir: &Path, queue: &str) -> Vec<jobs_core::ArchivedJob> {
    read_archive(dir, &ArchiveQuery { queue: Some(queue.into()), ..Default::default() }).unwrap()
}

fn archiver(q: &MemoryQueue, dir: &Path, holder: &str, queue: &str) -> Archiver {
    Archiver::new(q.archive().unwrap(), Arc::new(JsonLinesSink::new(dir)), holder, vec![queue.to_owned()])
}

/// A batch written to the sink whose archiver died before removing it from
/// the backlog is not written again by the next archiver, and nothing is
/// missing: every job is in the files once, in order.
#[tokio::test]
async fn a_batch_written_before_a_crash_is_not_written_again() {
    let q = MemoryQueue::with_manual_clock();
    let queue = "crash_window";
    archiving(&q, queue).await;
    let ids = run_and_sweep(&q, queue, 5).await;
    let dir = scratch("crash");

    // The first archiver takes 3 entries, writes them, and "crashes".
    let backlog = q.archive().unwrap();
    let batch = backlog.take_archive(queue, "a", Duration::from_secs(30), 3).await.unwrap().unwrap();
    JsonLinesSink::new(&*dir).write(queue, &batch.jobs).await.unwrap();
    assert_eq!(read_queue(&dir, queue).len(), 3);

    // Another archiver (another process: a fresh sink) takes over once the
    // lease expired.
    let mut b = archiver(&q, &dir, "b", queue);
    assert_eq!(b.drain().await.unwrap(), 0, "a's lease is still live");
    q.advance(Duration::from_secs(31));
    assert_eq!(b.drain().await.unwrap(), 2, "only the two entries the sink lacks");
    let archived = read_queue(&dir, queue);
    let got: Vec<_> = archived.iter().map(|e| e.job.id.clone()).collect();
    assert_eq!(got, ids, "each job once, in order");
    assert_eq!(archived.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(archived.iter().all(|e| e.job.status == JobStatus::Succeeded && e.job.payload["n"].is_u64()));
    let left = backlog.take_archive(queue, "b", Duration::from_secs(30), 10).await.unwrap().unwrap();
    assert_eq!(left.backlog, 0, "the backlog is empty");
}

/// A line a crash cut short is removed when the sink opens the file, and
/// the entries it held are written again (they were still in the backlog).
#[tokio::test]
async fn a_torn_last_line_is_cut_off_and_written_again() {
    let q = MemoryQueue::with_manual_clock();
    let queue = "torn_line";
    archiving(&q, queue).await;
    let ids = run_and_sweep(&q, queue, 3).await;
    let dir = scratch("torn");
    let backlog = q.archive().unwrap();
    let batch = backlog.take_archive(queue, "a", Duration::from_secs(30), 2).await.unwrap().unwrap();
    JsonLinesSink::new(&*dir).write(queue, &batch.jobs[..1]).await.unwrap();
    let file = std::fs::read_dir(dir.join(queue)).unwrap().next().unwrap().unwrap().path();
    let half = serde_json::to_vec(&batch.jobs[1]).unwrap();
    let mut text = std::fs::read(&file).unwrap();
    text.extend_from_slice(&half[..half.len() / 2]);
    std::fs::write(&file, text).unwrap();

    q.advance(Duration::from_secs(31));
    assert_eq!(archiver(&q, &dir, "b", queue).drain().await.unwrap(), 2);
    let got: Vec<_> = read_queue(&dir, queue).into_iter().map(|e| e.job.id).collect();
    assert_eq!(got, ids);
    assert!(std::fs::read(&file).unwrap().ends_with(b"\n"), "no torn line is left");
}

/// A day's file past its size is closed and the next number begun; the
/// files read back in order, and by id and time range.
#[tokio::test]
async fn files_rotate_by_size_and_read_back_by_id_and_time() {
    let q = MemoryQueue::new();
    let queue = "rotate";
    archiving(&q, queue).await;
    let ids = run_and_sweep(&q, queue, 4).await;
    let dir = scratch("rotate");
    let sink = JsonLinesSink::new(&*dir).max_file_size(1);
    let mut a = Archiver::new(q.archive().unwrap(), Arc::new(sink), "a", vec![queue.to_owned()]);
    assert_eq!(a.drain().await.unwrap(), 4);
    let mut names: Vec<String> =
        std::fs::read_dir(dir.join(queue)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 4, "one entry per file at this size: {names:?}");
    assert!(names.iter().enumerate().all(|(i, n)| n.ends_with(&format!(".{i}.jsonl"))), "{names:?}");
    let got: Vec<_> = read_queue(&dir, queue).into_iter().map(|e| e.job.id).collect();
    assert_eq!(got, ids);

    let one = read_archive(&dir, &ArchiveQuery { id: Some(ids[2].clone()), ..Default::default() }).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].job.id, ids[2]);
    let ended = one[0].job.finished_at.unwrap();
    let after = ArchiveQuery { since: Some(ended + Duration::from_secs(3600)), ..Default::default() };
    assert!(read_archive(&dir, &after).unwrap().is_empty(), "nothing ended an hour later");
    let before = ArchiveQuery { until: Some(ended - Duration::from_secs(3600)), ..Default::default() };
    assert!(read_archive(&dir, &before).unwrap().is_empty(), "nothing ended an hour earlier");
    let around = ArchiveQuery {
        since: Some(ended - Duration::from_secs(3600)),
        until: Some(ended + Duration::from_secs(3600)),
        limit: Some(3),
        ..Default::default()
    };
    assert_eq!(read_archive(&dir, &around).unwrap().len(), 3, "the limit holds");
}

/// A pool given a sink archives what its fetches delete, and drains the
/// backlog when it shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_runs_the_archiver() {
    let q = MemoryQueue::new();
    let queue = "archive_pool_test";
    archiving(&q, queue).await;
    let dir = scratch("pool");
    let settings = ArchiveSettings { interval: Duration::from_millis(20), ..Default::default() };
    let metrics = JobMetrics::new();
    let pool = WorkerPool::builder(q.clone())
        .queues([queue])
        .metrics(&metrics)
        .archive(JsonLinesSink::new(&*dir))
        .archive_settings(settings)
        .start()
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(ArchivedOne { n }.enqueue(&q).await.unwrap());
    }
    let start = Instant::now();
    for id in &ids {
        while q.job(id).await.unwrap().is_some_and(|j| j.status != JobStatus::Succeeded) {
            assert!(start.elapsed() < DEADLINE, "the pool ran the jobs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    loop {
        // A fetch (with no job left to take) sweeps the finished jobs into
        // the backlog, if the pool's own fetches did not already.
        assert!(q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.is_empty());
        if read_queue(&dir, queue).len() == 3 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the pool's archiver wrote the three jobs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.shutdown().await.unwrap();
    let mut got: Vec<_> = read_queue(&dir, queue).into_iter().map(|e| e.job.id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    let text = metrics.encode().unwrap();
    assert!(text.contains("jobs_archived_total{queue=\"archive_pool_test\"} 3"), "{text}");
    assert!(text.contains("jobs_archive_backlog{queue=\"archive_pool_test\"} 0"), "{text}");
}

/// A full backlog holds the retention back: the jobs past the bound stay
/// stored (and new jobs still run) until the archiver makes room; then
/// they are archived in their turn, after the others.
#[tokio::test]
async fn a_full_backlog_holds_the_retention_back() {
    let q = MemoryQueue::new();
    let queue = "full_backlog";
    archiving(&q, queue).await;
    let n = jobs_core::ARCHIVE_BACKLOG_MAX + 3;
    let mut ids = Vec::new();
    for chunk in 0..n.div_ceil(1000) {
        let size = (n - chunk * 1000).min(1000) as u32;
        ids.extend(run_and_sweep(&q, queue, size).await);
    }
    // More sweeps than needed for every job, were there room.
    for _ in 0..n / 1000 + 2 {
        assert!(q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.is_empty());
    }
    let backlog = q.archive().unwrap();
    let full = backlog.take_archive(queue, "a", Duration::from_secs(30), 1).await.unwrap().unwrap();
    assert_eq!(full.backlog, jobs_core::ARCHIVE_BACKLOG_MAX as u64, "the bound");
    for id in &ids[jobs_core::ARCHIVE_BACKLOG_MAX..] {
        assert!(q.job(id).await.unwrap().is_some(), "past the bound, {id} stays stored");
    }
    let late = ArchivedOne { n: 7 }.enqueue_with(&q, JobOptions::new().queue(queue)).await.unwrap();
    let taken = q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs;
    let taken: Vec<_> = taken.into_iter().map(|j| j.id).collect();
    assert_eq!(taken, [late], "jobs still run");

    let dir = scratch("full");
    let mut a = archiver(&q, &dir, "a", queue);
    assert_eq!(a.drain().await.unwrap(), jobs_core::ARCHIVE_BACKLOG_MAX as u64);
    assert!(q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.is_empty());
    assert_eq!(a.drain().await.unwrap(), 3, "the rest, once there was room");
    let got: Vec<_> = read_queue(&dir, queue).into_iter().map(|e| e.job.id).collect();
    assert_eq!(got, ids, "every job once, in order");
}

/// An entry dated before the current file's day (a clock that went back)
/// goes to the current file: the newest file ends with the newest entry,
/// which is what the sink reads back as its position.
#[tokio::test]
async fn days_only_move_forward_in_the_files() {
    let q = MemoryQueue::new();
    let queue = "clock_back";
    archiving(&q, queue).await;
    run_and_sweep(&q, queue, 2).await;
    let dir = scratch("clock");
    let backlog = q.archive().unwrap();
    let mut batch = backlog.take_archive(queue, "a", Duration::from_secs(30), 2).await.unwrap().unwrap().jobs;
    batch[0].archived_at += Duration::from_secs(2 * 24 * 3600);
    let sink = JsonLinesSink::new(&*dir);
    sink.write(queue, &batch).await.unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.join(queue)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "one file, of the later day: {names:?}");
    let last = JsonLinesSink::new(&*dir).last(queue).await.unwrap().unwrap();
    assert_eq!((last.backlog, last.seq), (batch[1].backlog.clone(), batch[1].seq));
}
