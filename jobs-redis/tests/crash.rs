//! Crash tests with real processes: worker processes killed with SIGKILL
//! under load, a worker stopped with SIGSTOP past its lease, and
//! `redis-server` itself killed with SIGKILL and restarted (AOF on).
//!
//! The worker processes are the `jobs-redis-test-worker` binary (feature
//! `testing`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, run, unique_queue};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus};
use jobs_redis::testing::{shared_server_url, RedisServer, ServerOptions, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
/// Jobs each worker process runs at once (the test worker's pool size).
const WORKERS: usize = 4;

/// A worker process (a pool of 4), SIGKILLed when dropped.
struct Worker;

impl Worker {
    fn spawn(url: &str, queue: &str, lease: Duration) -> WorkerProcess {
        WorkerProcess::spawn(WORKER_EXE, url, queue, lease)
    }
}

fn probe(queue: &str, seq: u64, act: Act) -> jobs_core::NewJob {
    ProbeJob { key: queue.to_owned(), seq, act }.into_new_job(JobOptions::new().queue(queue)).unwrap()
}

async fn running(q: &RedisQueue, ids: &[JobId]) -> BTreeSet<JobId> {
    let mut out = BTreeSet::new();
    for id in ids {
        if q.job(id).await.unwrap().unwrap().status == JobStatus::Running {
            out.insert(id.clone());
        }
    }
    out
}

/// Three worker processes are SIGKILLed in turn while busy; a fourth
/// finishes. Every job succeeds; exactly the jobs in flight at the kills ran
/// twice, each after its lease expired.
#[test]
fn killed_workers_lose_no_job() {
    run(async {
        const N: u64 = 300;
        const KILLS: u64 = 3;
        let started = Instant::now();
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("kill9");
        let lease = Duration::from_millis(1000);
        let ids = q.enqueue_many((0..N).map(|i| probe(&queue, i, Act::SleepMs(20))).collect()).await.unwrap();
        let mut in_flight = BTreeSet::new();
        for round in 1..=KILLS {
            let mut w = Worker::spawn(&url, &queue, lease);
            eventually("the worker made progress and holds jobs", || async {
                let c = q.stats().await.unwrap().queue(&queue);
                c.processed >= round * 50 && c.running > 0
            })
            .await;
            w.kill();
            // Its leases stay in Redis until they expire: exactly its jobs in
            // hand (older leases are reclaimed by the time a worker made
            // progress, a lease later).
            in_flight.extend(running(&q, &ids).await);
        }
        let _last = Worker::spawn(&url, &queue, lease);
        eventually("every job succeeded", || async { q.stats().await.unwrap().queue(&queue).processed == N }).await;
        let mut twice = BTreeSet::new();
        for id in &ids {
            let info = q.job(id).await.unwrap().unwrap();
            assert_eq!(info.status, JobStatus::Succeeded, "{info:?}");
            if info.attempts > 1 {
                assert!(info.attempt_log[0].error.as_deref().unwrap().contains("lease expired"), "{info:?}");
                twice.insert(id.clone());
            }
        }
        eprintln!(
            "kill -9 x{KILLS}: {N} jobs, {} in flight at the kills, {} ran twice, {:?}",
            in_flight.len(),
            twice.len(),
            started.elapsed()
        );
        assert!(!in_flight.is_empty(), "a kill hit a busy worker");
        assert!(in_flight.len() <= (KILLS as usize) * WORKERS * 2, "at most a fetch batch per worker slot");
        assert_eq!(twice, in_flight, "exactly the jobs in flight at the kills ran again");
    });
}

/// A worker stopped (SIGSTOP) past its lease loses its job to another
/// worker; continued, its late ack is refused and the newer attempt's
/// outcome stands.
#[test]
fn a_stopped_worker_cannot_overwrite_the_newer_attempt() {
    run(async {
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("sigstop");
        let lease = Duration::from_millis(600);
        let work = Duration::from_millis(2500);
        let id = q.enqueue_many(vec![probe(&queue, 1, Act::SleepMs(work.as_millis() as u64))]).await.unwrap().remove(0);
        let a = Worker::spawn(&url, &queue, lease);
        eventually("worker a runs the job", || async {
            q.job(&id).await.unwrap().unwrap().status == JobStatus::Running
        })
        .await;
        a.signal("STOP");
        let b = Worker::spawn(&url, &queue, lease);
        eventually("worker b took it over", || async {
            let i = q.job(&id).await.unwrap().unwrap();
            i.status == JobStatus::Running && i.attempts == 2
        })
        .await;
        // Worker a wakes up while b runs the job: its sleep is over, so it
        // acks attempt 1 at once, with its old token.
        a.signal("CONT");
        let info = jobs_core::testing::wait_status(&q, &id, JobStatus::Succeeded).await;
        drop((a, b));
        assert_eq!(info.attempts, 2, "{info:?}");
        assert_eq!(info.attempt_log.len(), 2, "{info:?}");
        assert!(info.attempt_log[0].error.as_deref().unwrap().contains("lease expired"), "{info:?}");
        let second = &info.attempt_log[1];
        let ran = second.finished_at.unwrap().duration_since(second.started_at).unwrap();
        // Had a's late ack been taken, attempt 2 would have ended early.
        assert!(ran + Duration::from_millis(50) >= work, "attempt 2 ended after {ran:?}: a's stale ack was applied");
    });
}

/// `redis-server` with `appendonly yes` is SIGKILLed and restarted while a
/// producer enqueues: every enqueue that returned `Ok` is there afterwards.
#[test]
fn acknowledged_enqueues_survive_a_redis_kill_9() {
    let mut server = RedisServer::start_with(ServerOptions { appendonly: true, ..Default::default() });
    let url = server.url();
    run(async move {
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("aof");
        let acked: Arc<Mutex<Vec<JobId>>> = Arc::default();
        let failed = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, queue, acked, failed, stop) =
                (q.clone(), queue.clone(), acked.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<_> = (0..5).map(|i| probe(&queue, seq + i, Act::Succeed)).collect();
                    seq += 5;
                    match q.enqueue_many(batch).await {
                        Ok(ids) => acked.lock().unwrap().extend(ids),
                        Err(_) => {
                            *failed.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        };
        // An idle fetcher's waiter on another queue, subscribed before the crash.
        let quiet = unique_queue("aof.quiet");
        let mut waiter = q.waiter(std::slice::from_ref(&quiet)).unwrap();
        waiter.arm();
        tokio::time::timeout(Duration::from_secs(5), waiter.wait(Duration::from_secs(3600))).await.unwrap().unwrap();
        let count = || acked.lock().unwrap().len();
        eventually("enqueues before the crash", || async { count() >= 500 }).await;
        tokio::task::block_in_place(|| server.restart());
        let before = count();
        eventually("enqueues after the restart", || async { count() >= before + 500 }).await;
        stop.store(true, Ordering::Relaxed);
        producer.await.unwrap();
        // The waiter resubscribed by itself, and hears an enqueue again.
        let channel = format!("jobs:{{{quiet}}}:wake");
        let admin = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        eventually("the waiter subscribed again", || {
            let (mut admin, channel) = (admin.clone(), channel.clone());
            async move {
                let (_, n): (String, u64) =
                    redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut admin).await.unwrap();
                n == 1
            }
        })
        .await;
        // Drain the wake-up it gives itself on resubscribing.
        waiter.arm();
        waiter.wait(Duration::from_millis(100)).await.unwrap();
        waiter.arm();
        q.enqueue_many(vec![probe(&quiet, 0, Act::Succeed)]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter.wait(Duration::from_secs(3600)))
            .await
            .expect("the waiter hears wake-ups after a restart")
            .unwrap();
        let acked = acked.lock().unwrap().clone();
        let mut lost = Vec::new();
        for id in &acked {
            if q.job(id).await.unwrap().is_none() {
                lost.push(id.clone());
            }
        }
        eprintln!(
            "redis kill -9 with AOF: {} enqueues acknowledged, {} calls failed during the outage, {} lost",
            acked.len(),
            failed.lock().unwrap(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        drop(server);
    });
}
