//! Flow control across real processes: a queue's `max_running` holds for
//! three worker processes of four workers each, and the slots of a process
//! killed while it held them come back once their leases expire.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jobs_core::{JobExt, JobOptions, JobStatus, QueueAdmin, QueueInspect, QueuePolicy};
use jobs_redis::testing::{runlog, CrashJob, RedisServer, RunLog, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
const MAX_RUNNING: usize = 5;

/// The most runs under way at once, from their start and end times (a run
/// that ended in the same millisecond another started counts as ended
/// first: its slot was freed before the other could take it).
fn peak(runs: &RunLog) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for r in runs.runs.values().flatten() {
        if let Some(end) = r.end_ms {
            edges.push((r.start_ms, 1));
            edges.push((end, -1));
        }
    }
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_running_holds_across_processes_and_kills() {
    let server = RedisServer::start();
    let url = server.url();
    let queue = jobs_core::testing::unique_queue("flowcap");
    let log = runlog::temp_path("flowcap");
    let q = RedisQueue::connect(&url).await.unwrap();
    let policy = QueuePolicy { max_running: Some(MAX_RUNNING as u64), ..Default::default() };
    q.set_policy(&queue, policy).await.unwrap();
    let jobs = (0..60).map(|seq| CrashJob { seq, sleep_ms: 30 + seq % 20 });
    let ids = CrashJob::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue)).await.unwrap();

    let lease = Duration::from_millis(1_000);
    let mut workers: Vec<WorkerProcess> =
        (0..3).map(|_| WorkerProcess::spawn_with_run_log(WORKER_EXE, &url, &queue, lease, &log)).collect();
    // Kill one process while it holds slots: once it has started a run.
    let victim = workers.remove(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !RunLog::read(&log).runs.values().flatten().any(|r| r.pid == victim.pid()) {
        assert!(Instant::now() < deadline, "the first process never started a job");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut victim = victim;
    victim.kill();

    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = q.job(id).await.unwrap().unwrap();
            if info.status == JobStatus::Succeeded {
                break;
            }
            assert!(Instant::now() < deadline, "{id} is {:?}: slots never came back", info.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let runs = RunLog::read(&log);
    assert!(runs.bad_lines.is_empty(), "{:?}", runs.bad_lines);
    let peak = peak(&runs);
    assert!(peak <= MAX_RUNNING, "{peak} runs at once across the processes, over max_running {MAX_RUNNING}");
    // The killed process's runs never ended; their slots stayed taken until
    // their leases expired, so the ended runs alone may fall short by them.
    let cut = runs.runs.values().flatten().filter(|r| r.end_ms.is_none()).count();
    assert!(cut >= 1, "the killed process was running a job");
    assert!(peak + cut >= MAX_RUNNING, "twelve workers for sixty jobs reach the bound: {peak} + {cut} cut short");
    for id in &ids {
        let ended = runs.of(id).iter().filter(|r| r.end_ms.is_some()).count();
        assert_eq!(ended, 1, "{id} ran to its end once: {:?}", runs.of(id));
    }
    drop(workers);
}
