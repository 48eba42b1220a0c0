//! Crash tests with real processes: worker processes killed with SIGKILL
//! under load, a worker stopped with SIGSTOP past its lease, and
//! `redis-server` itself killed with SIGKILL and restarted (AOF on).
//!
//! The worker processes are the `jobs-redis-test-worker` binary (feature
//! `testing`); their handlers write a run log (`jobs_redis::testing::runlog`),
//! so the tests count what ran, not only what Redis counted.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, run, unique_queue};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, QueueInspect};
use jobs_redis::testing::runlog::{self, refused};
use jobs_redis::testing::{
    check_kill_runs, kill_in_turn, shared_server_url, CrashJob, Ran, RedisServer, Run, RunLog, ServerOptions,
    WorkerProcess,
};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
/// Jobs each worker process runs at once (the test worker's pool size).
const WORKERS: usize = 4;

/// A worker process (a pool of 4) writing to the run log `log`, SIGKILLed
/// when dropped.
fn worker(url: &str, queue: &str, lease: Duration, log: &Path) -> WorkerProcess {
    WorkerProcess::spawn_with_run_log(WORKER_EXE, url, queue, lease, log)
}

fn probe(queue: &str, seq: u64, act: Act) -> jobs_core::NewJob {
    ProbeJob { key: queue.to_owned(), seq, act }.into_new_job(JobOptions::new().queue(queue)).unwrap()
}

fn crash_job(queue: &str, seq: u64, sleep_ms: u64) -> jobs_core::NewJob {
    CrashJob { seq, sleep_ms }.into_new_job(JobOptions::new().queue(queue)).unwrap()
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
/// finishes. From the run log: every job ran to completion, with the result
/// of its last run; a job ran again only after a run in a killed process
/// (cut short, or ended with its result not yet recorded); no run was left
/// unfinished by a live process. From Redis: only jobs leased at the kills
/// were attempted again, each after its lease expired. Before each kill a
/// long job is seen running in the worker, so each kill cuts a handler short.
#[test]
fn killed_workers_lose_no_job() {
    run(async {
        const N: u64 = 300;
        const KILLS: u64 = 3;
        let started = Instant::now();
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("kill9");
        let log = runlog::temp_path("kill9");
        let lease = Duration::from_millis(1000);
        let mut ids = q.enqueue_many((0..N).map(|i| crash_job(&queue, i, 20)).collect()).await.unwrap();
        let mut in_flight = BTreeSet::new();
        let start = || worker(&url, &queue, lease, &log);
        // A killed worker's leases stay in Redis until they expire: exactly
        // its jobs in hand (older leases are reclaimed by the time a worker
        // made progress, a lease later).
        let note = async |ids: &[JobId]| in_flight.extend(running(&q, ids).await);
        let killed = kill_in_turn(&q, &queue, &log, (KILLS, 50, N), &mut ids, start, note).await;
        let last = worker(&url, &queue, lease, &log);
        let total = ids.len() as u64;
        eventually("every job succeeded", || async { q.stats().await.unwrap().queue(&queue).processed == total }).await;
        let runs = check_kill_runs(&q, &log, &ids, &killed).await;
        let mut again = BTreeSet::new();
        for id in &ids {
            if q.job(id).await.unwrap().unwrap().attempts > 1 {
                again.insert(id.clone());
            }
        }
        let read = RunLog::read(&log);
        let ran_again: BTreeSet<JobId> = ids.iter().filter(|id| read.of(id).len() > 1).cloned().collect();
        eprintln!(
            "kill -9 x{KILLS}: {N} jobs, {} leased at the kills, {} attempted again, {runs:?}, {:?}",
            in_flight.len(),
            again.len(),
            started.elapsed()
        );
        drop(last);
        assert!(runs.interrupted > 0, "a kill cut a running handler short");
        assert!(in_flight.len() <= (KILLS as usize) * WORKERS * 2, "at most a fetch batch per worker slot");
        // A job leased at a kill has another attempt only when its start had
        // been recorded (a lease lost before that is a crash, not an
        // attempt): so the attempted again are among the leased.
        assert!(again.is_subset(&in_flight), "only jobs leased at the kills were attempted again");
        assert!(ran_again.is_subset(&in_flight), "a job that ran again was leased at a kill");
        let _ = std::fs::remove_file(&log);
    });
}

/// A worker stopped (SIGSTOP) past its lease loses its job to another
/// worker; continued, its handler ends and its late result is sent and
/// refused (its pool logs the refusal), and the job ends with the newer
/// attempt's result.
#[test]
fn a_stopped_worker_cannot_overwrite_the_newer_attempt() {
    run(async {
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("sigstop");
        let log = runlog::temp_path("sigstop");
        let lease = Duration::from_millis(600);
        let work = Duration::from_millis(2500);
        let id = q.enqueue_many(vec![crash_job(&queue, 1, work.as_millis() as u64)]).await.unwrap().remove(0);
        let runs = || RunLog::read(&log).of(&id).to_vec();
        let a = worker(&url, &queue, lease, &log);
        eventually("worker a's handler started", || async { runs().iter().any(|r| r.pid == a.pid()) }).await;
        // Its start recorded too: else the lost lease is a crash, not an
        // attempt, and b runs attempt 1 again.
        eventually("worker a's start is recorded", || runlog::start_recorded(&q, &id)).await;
        a.signal("STOP");
        let b = worker(&url, &queue, lease, &log);
        eventually("worker b's handler started attempt 2", || async {
            runs().iter().any(|r| r.pid == b.pid() && r.attempt == 2)
        })
        .await;
        // Worker a wakes up while b runs the job: its handler ends (at once,
        // or when its sleep is over) and it sends attempt 1's result with
        // its old token.
        a.signal("CONT");
        eventually("worker a's late result was refused", || async { refused(&a.stderr(), &id) }).await;
        let info = jobs_core::testing::wait_status(&q, &id, JobStatus::Succeeded).await;
        let runs = runs();
        let (a_pid, b_pid, b_stderr) = (a.pid(), b.pid(), b.stderr());
        drop((a, b));
        let [first, second] = runs.as_slice() else { panic!("two runs: {runs:?}") };
        assert!(matches!(first, Run { attempt: 1, end_ms: Some(_), .. } if first.pid == a_pid), "{runs:?}");
        assert!(matches!(second, Run { attempt: 2, end_ms: Some(_), .. } if second.pid == b_pid), "{runs:?}");
        assert!(first.end_ms.unwrap() >= second.start_ms, "a's handler ended after b took the job over: {runs:?}");
        assert!(!refused(&b_stderr, &id), "b's result was taken: {b_stderr}");
        assert_eq!(info.attempts, 2, "{info:?}");
        assert_eq!(info.attempt_log.len(), 2, "{info:?}");
        assert!(info.attempt_log[0].error.as_deref().unwrap().contains("lease expired"), "{info:?}");
        let result: Ran = serde_json::from_value(info.result.clone().unwrap()).unwrap();
        assert_eq!(result, Ran { attempt: 2, pid: b_pid }, "the stored result is the newer attempt's");
        let second = &info.attempt_log[1];
        let ran = second.finished_at.unwrap().duration_since(second.started_at).unwrap();
        // Had a's late result been taken, attempt 2 would have ended early.
        assert!(ran + Duration::from_millis(50) >= work, "attempt 2 ended after {ran:?}: a's stale result was applied");
        let _ = std::fs::remove_file(&log);
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
