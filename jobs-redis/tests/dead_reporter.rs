//! An error reporter across crashes: worker processes whose pools report
//! dead jobs through `on_dead` (to a dead log the test reads) run jobs that
//! always fail, and are SIGKILLed mid-run, some during a job's last
//! attempt. Every dead job is reported exactly once, by id, whether it died
//! in a live pool or with a killed one (then reported by the pool whose
//! fetch reclaimed its lease).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jobs_core::testing::{eventually, run, unique_queue};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, NewJob, Priority, QueueInspect};
use jobs_redis::keys::QueueKeys;
use jobs_redis::testing::deadlog::{self, FailingJob};
use jobs_redis::testing::runlog::{self, RunLog};
use jobs_redis::testing::{shared_server_url, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");

/// A worker process (a pool of 4, retries after a fixed 50 ms) writing the
/// run log and the dead log, SIGKILLed when dropped.
fn worker(url: &str, queue: &str, lease: Duration, run_log: &Path, dead_log: &Path) -> WorkerProcess {
    let mut cmd = Command::new(WORKER_EXE);
    cmd.args([url, queue, &lease.as_millis().to_string(), "50"])
        .env("JOBS_REDIS_TEST_RUN_LOG", run_log)
        .env("JOBS_REDIS_TEST_DEAD_LOG", dead_log);
    WorkerProcess::spawn_command(cmd)
}

fn failing(queue: &str, seq: u64, sleep_ms: u64, options: JobOptions) -> NewJob {
    FailingJob { seq, sleep_ms }.into_new_job(options.queue(queue)).unwrap()
}

/// Three worker processes are SIGKILLed in turn while they run failing jobs,
/// each while a job on its last attempt (no retries) is seen running in it;
/// a fourth runs what is left. Every job ends dead, and the dead log holds
/// exactly one report per job id, with the attempts Redis counted. The jobs
/// that died with a killed worker (their start recorded before the kill)
/// were reported by another process, through the lease their worker lost.
#[test]
fn every_dead_job_is_reported_once_across_kills() {
    run(async {
        const N: u64 = 24;
        const KILLS: u64 = 3;
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("reporter");
        let (run_log, dead_log) = (runlog::temp_path("reporter"), runlog::temp_path("reporter-dead"));
        let lease = Duration::from_millis(1000);
        let admin = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let started = QueueKeys::new("jobs", &queue).started();
        let mut ids =
            q.enqueue_many((0..N).map(|i| failing(&queue, i, 250, JobOptions::new())).collect()).await.unwrap();
        let mut last_attempts: Vec<(JobId, u32)> = Vec::new();
        for round in 1..=KILLS {
            let mut w = worker(&url, &queue, lease, &run_log, &dead_log);
            let pid = w.pid();
            eventually("the worker ran jobs", || async {
                RunLog::read(&run_log).runs.values().flatten().filter(|r| r.pid == pid).count() >= 4
            })
            .await;
            // On its last attempt, and most urgent: the next free slot takes it.
            let options = JobOptions::new().max_retries(0).priority(Priority::Critical);
            let long = q.enqueue_many(vec![failing(&queue, N + round, 3_000, options)]).await.unwrap().remove(0);
            eventually("the last attempt runs in the worker about to be killed", || async {
                RunLog::read(&run_log).of(&long).iter().any(|r| r.pid == pid && r.end_ms.is_none())
            })
            .await;
            // Its start recorded (else the lost lease is a crash, not an
            // attempt, and the job runs again elsewhere instead of dying).
            eventually("the last attempt's start is recorded", || async {
                let mut c = admin.clone();
                redis::cmd("HEXISTS").arg(&started).arg(long.ulid().to_string()).query_async(&mut c).await.unwrap()
            })
            .await;
            w.kill();
            ids.push(long.clone());
            last_attempts.push((long, pid));
        }
        let last = worker(&url, &queue, lease, &run_log, &dead_log);
        let total = ids.len() as u64;
        eventually("every job is dead", || async { q.stats().await.unwrap().queue(&queue).dead == total }).await;
        eventually("every death is reported", || async { deadlog::read(&dead_log).len() == ids.len() }).await;
        let reports = deadlog::read(&dead_log);
        let mut with_lease_lost = 0u64;
        for id in &ids {
            let info = q.job(id).await.unwrap().unwrap();
            assert_eq!(info.status, JobStatus::Dead, "{info:?}");
            let got = deadlog::of(&reports, id);
            assert_eq!(got.len(), 1, "job {id} must be reported once: {got:?}");
            assert_eq!(got[0].attempts, info.attempts, "job {id}: {info:?}");
            if let Some((_, pid)) = last_attempts.iter().find(|(l, _)| l == id) {
                assert_ne!(got[0].pid, *pid, "job {id} died with its worker: another process reports it");
                if info.last_error().is_some_and(|e| e.contains("lease expired")) {
                    with_lease_lost += 1;
                }
            }
        }
        let known: BTreeSet<String> = ids.iter().map(ToString::to_string).collect();
        assert!(reports.keys().all(|id| known.contains(id)), "only this test's jobs: {reports:?}");
        let run_log_read = RunLog::read(&run_log);
        let interrupted = run_log_read.runs.values().flatten().filter(|r| r.end_ms.is_none()).count();
        eprintln!(
            "dead reporter: {} jobs dead, {KILLS} kills, {interrupted} runs cut short, {with_lease_lost} of the \
             killed last attempts reported through their lost lease",
            ids.len()
        );
        assert_eq!(with_lease_lost, KILLS, "every killed last attempt died with its lease and was reported");
        drop(last);
        let _ = std::fs::remove_file(&run_log);
        let _ = std::fs::remove_file(&dead_log);
    });
}
