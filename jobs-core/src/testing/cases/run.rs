//! Running jobs: order, timing, pools and shutdown.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use crate::job::{JobExt, JobOptions};
use crate::queue::{JobQueue, QueueAdmin, QueueInspect};
use crate::testing::harness::{eventually, probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::{JobStatus, Priority};

use super::{ms, probe_job, put, put1};

/// A job runs once and ends succeeded, with one attempt.
pub async fn job_runs_once_and_succeeds<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("once");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1);
    assert!(info.finished_at.is_some());
    assert_eq!(info.attempt_log.len(), 1);
    assert_eq!(info.attempt_log[0].error, None);
    assert_eq!(probe(&queue).start_count(), 1);
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.queue(&queue).processed, 1);
    assert_eq!(stats.queue(&queue).pending, 0);
    assert_eq!(stats.queue(&queue).running, 0);
}

/// The function's `Ok` value is stored as the job's result.
pub async fn job_result_is_stored<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("result");
    let id = put1(&q, &queue, 42, Act::Succeed).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.result, Some(serde_json::json!(42)));
}

/// `JobContext` names the job, its queue, the attempt and the retries.
pub async fn context_describes_the_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("ctx");
    let id = put(&q, &queue, 1, Act::FailTimes(1), JobOptions::new().max_retries(4)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let starts = probe(&queue).starts();
    assert_eq!(starts.len(), 2);
    assert_eq!((starts[0].attempt, starts[1].attempt), (1, 2));
    assert!(starts.iter().all(|s| s.id == id && s.queue == queue && s.max_retries == 4));
}

/// Within a queue, every critical job starts before any high one, and so on.
pub async fn strict_priority_within_queue<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("prio");
    q.pause(&queue).await.unwrap();
    let order = [Priority::Low, Priority::Normal, Priority::High, Priority::Critical, Priority::Low, Priority::High];
    for (i, p) in order.iter().enumerate() {
        put(&q, &queue, i as u64, Act::Succeed, JobOptions::new().priority(*p)).await;
    }
    let pool = test_pool(q.clone(), &[&queue]).workers(1).fetch_batch(1).start().unwrap();
    q.resume(&queue).await.unwrap();
    let p = probe(&queue);
    eventually("all six ran", || async { p.ends().len() == 6 }).await;
    pool.shutdown().await.unwrap();
    let seqs: Vec<u64> = p.starts().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![3, 2, 5, 1, 0, 4]);
}

/// Jobs of one priority start in the order they were enqueued.
pub async fn fifo_within_priority<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("fifo");
    for i in 0..20 {
        put1(&q, &queue, i, Act::Succeed).await;
    }
    let pool = test_pool(q.clone(), &[&queue]).workers(1).fetch_batch(1).start().unwrap();
    let p = probe(&queue);
    eventually("all ran", || async { p.ends().len() == 20 }).await;
    pool.shutdown().await.unwrap();
    let seqs: Vec<u64> = p.starts().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
}

/// A delayed job is scheduled until its time, then starts without any
/// enqueue waking the pool (the fetcher's timer).
pub async fn delayed_job_starts_on_time<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("delay");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let before = Instant::now();
    let id = put(&q, &queue, 1, Act::Succeed, JobOptions::new().delay(ms(400))).await;
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!(info.status, JobStatus::Scheduled);
    assert!(info.run_at.is_some());
    assert_eq!(q.stats().await.unwrap().queue(&queue).scheduled, 1);
    wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let started = probe(&queue).starts()[0].at;
    assert!(started.duration_since(before) >= ms(390), "started after {:?}", started.duration_since(before));
}

/// `schedule_at` runs a job at a wall-clock time.
pub async fn schedule_at_starts_on_time<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("at");
    let when = SystemTime::now() + ms(300);
    let id = probe_job(&queue, 1, Act::Succeed)
        .enqueue_with(&q, JobOptions::new().queue(&queue).scheduled_at(when))
        .await
        .unwrap();
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Scheduled);
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let started = q.job(&id).await.unwrap().unwrap().attempt_log[0].started_at;
    assert!(started + ms(10) >= when, "started {:?} early", when.duration_since(started));
}

/// Two pools on one queue: each of many jobs runs exactly once.
pub async fn two_pools_run_each_job_once<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("twopools");
    let a = test_pool(q.clone(), &[&queue]).workers(8).start().unwrap();
    let b = test_pool(q.clone(), &[&queue]).workers(8).start().unwrap();
    let jobs = (0..400)
        .map(|i| probe_job(&queue, i, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap())
        .collect();
    q.enqueue_many(jobs).await.unwrap();
    let p = probe(&queue);
    eventually("400 jobs ran", || async { q.stats().await.unwrap().queue(&queue).processed == 400 }).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let mut seen = HashMap::new();
    for s in p.starts() {
        *seen.entry(s.seq).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 400);
    assert!(seen.values().all(|n| *n == 1), "a job ran twice");
}

/// `shutdown` stops fetching and lets running jobs finish within the grace.
pub async fn shutdown_waits_for_running_jobs<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("graceful");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let id = put1(&q, &queue, 1, Act::SleepMs(300)).await;
    let p = probe(&queue);
    eventually("job started", || async { p.start_count() == 1 }).await;
    pool.shutdown().await.unwrap();
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Succeeded);
    // Nothing more is fetched after shutdown.
    let later = put1(&q, &queue, 2, Act::Succeed).await;
    tokio::task::yield_now().await;
    assert_eq!(q.job(&later).await.unwrap().unwrap().status, JobStatus::Pending);
}

/// Past the grace period, running jobs see `cancelled()` and go back to
/// pending at once, without counting the attempt.
pub async fn shutdown_hands_back_after_grace<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("handback");
    let pool = test_pool(q.clone(), &[&queue]).grace_period(ms(100)).start().unwrap();
    let id = put1(&q, &queue, 1, Act::IgnoreCancelMs(2_000)).await;
    let p = probe(&queue);
    eventually("job started", || async { p.start_count() == 1 }).await;
    pool.shutdown().await.unwrap();
    // It ignores the signal: shutdown stopped it before handing it back, so
    // no other pool can start it while it still runs here.
    assert_eq!(p.stops(), vec![1], "the run stopped before shutdown returned");
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!(info.status, JobStatus::Pending);
    assert_eq!(info.attempts, 0, "a hand-back is not an attempt");
    eventually("job saw cancelled()", || async { p.cancels() == vec![1] }).await;
    // Another pool takes it straight away: no lease to wait out.
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    q.cancel(&id).await.unwrap();
    let info = wait_status(&q, &id, JobStatus::Cancelled).await;
    pool.shutdown().await.unwrap();
    assert!(info.attempts <= 1);
}

/// A paused queue keeps its jobs; resuming lets them run.
pub async fn pause_and_resume<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("pause");
    q.pause(&queue).await.unwrap();
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    assert!(q.stats().await.unwrap().queues[&queue].paused);
    // Give the pool a real chance to (wrongly) take it.
    let other = unique_queue("pause.probe");
    let other_pool = test_pool(q.clone(), &[&other]).start().unwrap();
    let marker = put1(&q, &other, 1, Act::Succeed).await;
    wait_status(&q, &marker, JobStatus::Succeeded).await;
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending);
    q.resume(&queue).await.unwrap();
    wait_status(&q, &id, JobStatus::Succeeded).await;
    assert!(!q.stats().await.unwrap().queues[&queue].paused);
    pool.shutdown().await.unwrap();
    other_pool.shutdown().await.unwrap();
}

/// With weights, a busy first queue does not starve the second.
pub async fn weighted_queues_do_not_starve<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let busy = unique_queue("busy");
    let quiet = unique_queue("quiet");
    let jobs = (0..300)
        .map(|i| probe_job(&busy, i, Act::Succeed).into_new_job(JobOptions::new().queue(&busy)).unwrap())
        .collect();
    q.enqueue_many(jobs).await.unwrap();
    let quiet_id = put1(&q, &quiet, 1, Act::Succeed).await;
    let pool = crate::worker::WorkerPool::builder(q.clone())
        .weighted_queues([(busy.as_str(), 3), (quiet.as_str(), 1)])
        .workers(1)
        .fetch_batch(1)
        .start()
        .unwrap();
    wait_status(&q, &quiet_id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let quiet_order = probe(&quiet).starts()[0].order;
    let before = probe(&busy).starts().iter().filter(|s| s.order < quiet_order).count();
    // Taken first with probability 1/4 at each fetch: 3 busy jobs before it
    // on average, more than 60 with a probability below 1e-7.
    assert!(before < 60, "the quiet queue waited behind {before} busy jobs");
}

/// 10,000 jobs over four priorities, 16 workers: each runs exactly once, and
/// no job starts before a higher-priority job that was pending when it was
/// fetched (beyond one fetch batch of concurrency).
pub async fn priority_order_under_load<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    const N: u64 = 10_000;
    const WORKERS: usize = 16;
    let queue = unique_queue("load");
    q.pause(&queue).await.unwrap();
    let jobs = (0..N)
        .map(|i| {
            let p = Priority::ALL[(i % 4) as usize];
            probe_job(&queue, i, Act::Succeed).into_new_job(JobOptions::new().queue(&queue).priority(p)).unwrap()
        })
        .collect::<Vec<_>>();
    for chunk in jobs.chunks(1000) {
        q.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    let pool = test_pool(q.clone(), &[&queue]).workers(WORKERS).fetch_batch(WORKERS).start().unwrap();
    q.resume(&queue).await.unwrap();
    let p = probe(&queue);
    eventually("10,000 jobs ran", || async { p.ends().len() as u64 == N }).await;
    pool.shutdown().await.unwrap();
    let mut starts = p.starts();
    assert_eq!(starts.len() as u64, N, "each job exactly once");
    starts.sort_by_key(|s| s.order);
    let mut seen = vec![false; N as usize];
    for s in &starts {
        assert!(!std::mem::replace(&mut seen[s.seq as usize], true), "job {} ran twice", s.seq);
    }
    // The fetch time of each job (its attempt's start as the backend
    // recorded it): every job of a rank was fetched no later than the first
    // job of the next rank, i.e. no job was taken while a more urgent one
    // was pending, except inside one fetch batch (equal fetch times).
    let mut fetched: [Vec<SystemTime>; 4] = Default::default();
    for s in &starts {
        let info = q.job(&s.id).await.unwrap().expect("kept for the retention period");
        fetched[(s.seq % 4) as usize].push(info.attempt_log[0].started_at);
    }
    for rank in 1..4 {
        let last_higher = fetched[..rank].iter().flatten().max().unwrap();
        let first = fetched[rank].iter().min().unwrap();
        assert!(last_higher <= first, "a rank-{rank} job was fetched while more urgent jobs were pending");
    }
}

/// A result past the pool's limit is not stored: the attempt ends dead with
/// an error that names the sizes; a result within it is stored.
pub async fn oversized_result_is_refused<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    use crate::testing::jobs::SizedResultJob;
    let queue = unique_queue("bigresult");
    let pool = test_pool(q.clone(), &[&queue]).max_result(1024).start().unwrap();
    let small = SizedResultJob { len: 100 }.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let big = SizedResultJob { len: 4096 }.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let small = wait_status(&q, &small, JobStatus::Succeeded).await;
    let big = wait_status(&q, &big, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    assert_eq!(small.result, Some(serde_json::json!("x".repeat(100))));
    assert_eq!((big.attempts, big.result), (1, None), "not retried, nothing stored");
    let error = big.attempt_log[0].error.as_deref().unwrap();
    assert!(error.contains("4098 bytes, over the limit of 1024"), "{error}");
}
