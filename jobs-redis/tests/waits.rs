//! Typed waits under worker crashes: one producer waits for every job's
//! result while three worker processes run them and are SIGKILLed and
//! replaced at random moments.
//!
//! `JOBS_TEST_WAITS` sets the number of jobs (default 2,000;
//! `scripts/waits-under-kill` runs it with 10,000).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jobs_core::{JobExt, JobHandle, JobId, JobOptions, JobStatus, QueueInspect, WaitError};
use jobs_redis::testing::{runlog, CrashJob, Ran, RedisServer, RunLog, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");

/// Every wait returns once, with the value the job's recorded run returned
/// (the attempt and process of a run that the run log shows ended), or with
/// the job's failure; none hangs, none is lost to a kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wait_returns_its_jobs_value_across_worker_kills() {
    let n: u64 = std::env::var("JOBS_TEST_WAITS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let server = RedisServer::start();
    let url = server.url();
    let queue = jobs_core::testing::unique_queue("waits");
    let log = runlog::temp_path("waits");
    let lease = Duration::from_millis(1_000);
    let q = RedisQueue::connect(&url).await.unwrap();

    let jobs = (0..n).map(|seq| CrashJob { seq, sleep_ms: seq % 4 });
    let ids = CrashJob::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue)).await.unwrap();
    let started = Instant::now();
    let waits: Vec<_> = ids
        .iter()
        .map(|id| {
            let h = JobHandle::<CrashJob>::new(&q, id.clone());
            tokio::spawn(async move { (h.id().clone(), h.wait(Duration::from_secs(300)).await) })
        })
        .collect();

    let mut workers: Vec<WorkerProcess> =
        (0..3).map(|_| WorkerProcess::spawn_with_run_log(WORKER_EXE, &url, &queue, lease, &log)).collect();
    let mut killed = Vec::new();
    // Kills at random moments while jobs remain; the pace of the kills is
    // the test's input, not a wait for an outcome.
    while waits.iter().any(|w| !w.is_finished()) && started.elapsed() < Duration::from_secs(240) {
        tokio::time::sleep(Duration::from_millis(150 + rand_below(450))).await;
        let victim = rand_below(workers.len() as u64) as usize;
        let mut w = workers.swap_remove(victim);
        killed.push(w.pid());
        w.kill();
        workers.push(WorkerProcess::spawn_with_run_log(WORKER_EXE, &url, &queue, lease, &log));
    }

    let mut outcomes: BTreeMap<JobId, Result<Ran, WaitError>> = BTreeMap::new();
    for w in waits {
        let (id, r) = w.await.unwrap();
        assert!(outcomes.insert(id.clone(), r).is_none(), "{id} returned twice");
    }
    let took = started.elapsed();
    let runs = RunLog::read(&log);
    assert!(runs.bad_lines.is_empty(), "{:?}", runs.bad_lines);
    let (mut ok, mut dead) = (0, 0);
    for id in &ids {
        let info = q.job(id).await.unwrap().unwrap();
        match outcomes.remove(id).unwrap_or_else(|| panic!("no outcome for {id}")) {
            Ok(ran) => {
                ok += 1;
                assert_eq!(info.status, JobStatus::Succeeded, "{id}");
                let stored: Ran = serde_json::from_value(info.result.clone().unwrap()).unwrap();
                assert_eq!(ran, stored, "{id}: the wait's value is the stored result");
                let run = runs.of(id).iter().find(|r| r.attempt == ran.attempt && r.pid == ran.pid);
                assert!(
                    run.is_some_and(|r| r.end_ms.is_some()),
                    "{id}: {ran:?} is a run that ended: {:?}",
                    runs.of(id)
                );
            }
            Err(WaitError::Dead { attempts, .. }) => {
                dead += 1;
                assert_eq!(info.status, JobStatus::Dead, "{id}");
                assert_eq!(attempts, info.attempts, "{id}");
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
    assert!(outcomes.is_empty());
    eprintln!(
        "{n} waits: {ok} values, {dead} dead, in {:.1} s, {} worker processes killed",
        took.as_secs_f64(),
        killed.len()
    );
    let _ = std::fs::remove_file(&log);
    drop(server);
}

fn rand_below(n: u64) -> u64 {
    rand::random_range(0..n.max(1))
}
