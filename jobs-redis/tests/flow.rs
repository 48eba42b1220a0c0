//! Flow control across real processes: a queue's `max_running` and a
//! group's `concurrency` hold for three worker processes, the slots of a
//! process killed while it held them come back once their leases expire,
//! and a group's backlog does not hold up another group.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::process::Command;

use jobs_core::{JobExt, JobId, JobOptions, JobStatus, QueueAdmin, QueueInspect, QueuePolicy};
use jobs_redis::testing::{runlog, CrashJob, GroupedCrashJob, RedisServer, Run, RunLog, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
const MAX_RUNNING: usize = 5;

/// The most runs under way at once, from their start and end times (a run
/// that ended in the same millisecond another started counts as ended
/// first: its slot was freed before the other could take it).
fn peak<'a>(runs: impl IntoIterator<Item = &'a Run>) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for r in runs {
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
    let peak = peak(runs.runs.values().flatten());
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

/// Waits until every job of `ids` succeeded, failing after `secs`.
async fn all_succeed(q: &RedisQueue, ids: &[JobId], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for id in ids {
        loop {
            let info = q.job(id).await.unwrap().unwrap();
            if info.status == JobStatus::Succeeded {
                break;
            }
            assert!(Instant::now() < deadline, "{id} is {:?}: slots never came back", info.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Three processes of eight workers, six groups of `concurrency = 2`, one
/// process killed while it runs jobs: from the run log, no instant has
/// more than two runs of one group, each group reaches two, every job ran
/// to its end once, and the killed process's slots came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_concurrency_holds_across_processes_and_kills() {
    let server = RedisServer::start();
    let url = server.url();
    let queue = jobs_core::testing::unique_queue("flowgroups");
    let log = runlog::temp_path("flowgroups");
    let q = RedisQueue::connect(&url).await.unwrap();
    let groups = ["a", "b", "c", "d", "e", "f"];
    let jobs = (0..120).map(|seq| GroupedCrashJob {
        seq,
        group: groups[seq as usize % groups.len()].to_owned(),
        sleep_ms: 20 + seq % 15,
    });
    let batch: Vec<GroupedCrashJob> = jobs.collect();
    let group_of: BTreeMap<u64, String> = batch.iter().map(|j| (j.seq, j.group.clone())).collect();
    let ids = GroupedCrashJob::enqueue_all_with(&q, batch, JobOptions::new().queue(&queue)).await.unwrap();
    let spawn = || {
        let mut cmd = Command::new(WORKER_EXE);
        cmd.args([url.as_str(), queue.as_str(), "1000"])
            .env("JOBS_REDIS_TEST_RUN_LOG", &log)
            .env("JOBS_REDIS_TEST_WORKERS", "8");
        WorkerProcess::spawn_command(cmd)
    };
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| spawn()).collect();
    let mut victim = workers.remove(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !RunLog::read(&log).runs.values().flatten().any(|r| r.pid == victim.pid()) {
        assert!(Instant::now() < deadline, "the first process never started a job");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.kill();
    all_succeed(&q, &ids, 60).await;

    let runs = RunLog::read(&log);
    assert!(runs.bad_lines.is_empty(), "{:?}", runs.bad_lines);
    let mut by_group: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for (seq, id) in ids.iter().enumerate() {
        let ended: Vec<&Run> = runs.of(id).iter().filter(|r| r.end_ms.is_some()).collect();
        assert_eq!(ended.len(), 1, "{id} ran to its end once: {:?}", runs.of(id));
        by_group.entry(group_of[&(seq as u64)].as_str()).or_default().extend(ended);
    }
    let cut = runs.runs.values().flatten().filter(|r| r.end_ms.is_none()).count();
    assert!(cut >= 1, "the killed process was running a job");
    for (g, group_runs) in by_group {
        let peak = peak(group_runs);
        assert!(peak <= 2, "group {g}: {peak} runs at once, over its concurrency of 2");
        assert!(peak + cut >= 2, "group {g} never ran two at once");
    }
    drop(workers);
}

/// Fairness at scale: group `big` has 100,000 pending jobs, group `small`
/// enqueues 10 after them; with 24 workers (three pools of eight), all of
/// `small`'s jobs start within the first 2 x 24 starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_does_not_hold_up_another_group() {
    let server = RedisServer::start();
    let q = RedisQueue::connect(&server.url()).await.unwrap();
    let queue = jobs_core::testing::unique_queue("fair");
    let big = |seq| jobs_core::testing::jobs::GroupedJob { key: queue.clone(), group: "big".into(), seq, sleep_ms: 0 };
    for chunk in 0..20u64 {
        let jobs = (chunk * 5_000..(chunk + 1) * 5_000).map(big);
        jobs_core::testing::jobs::GroupedJob::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue))
            .await
            .unwrap();
    }
    let small = (0..10u64).map(|n| jobs_core::testing::jobs::GroupedJob {
        key: queue.clone(),
        group: "small".into(),
        seq: 1_000_000 + n,
        sleep_ms: 0,
    });
    let late = jobs_core::testing::jobs::GroupedJob::enqueue_all_with(&q, small, JobOptions::new().queue(&queue))
        .await
        .unwrap();
    jobs_core::testing::use_suite_jobs();
    let pools: Vec<_> =
        (0..3).map(|_| jobs_core::testing::test_pool(q.clone(), &[&queue]).workers(8).start().unwrap()).collect();
    all_succeed(&q, &late, 60).await;
    for p in pools {
        p.shutdown().await.unwrap();
    }
    let starts = jobs_core::testing::probe(&queue).starts();
    let last_small = starts.iter().rposition(|s| s.seq >= 1_000_000).unwrap();
    println!("the last of small's 10 jobs was start {last_small} of {}", starts.len());
    assert!(last_small < 48, "the last of small's jobs was start {last_small} (over 2 x 24 workers)");
}

/// Fifty starts a second for its group, whatever the number of workers.
#[jobs_core::job(queue = "flowrate", group = account, rate = "50/1s")]
async fn rated_sync(account: String, seq: u64) -> Result<(), jobs_core::JobError> {
    let _ = (account, seq);
    Ok(())
}

/// `rate = "50/1s"` per group over about ten seconds, three pools of eight
/// workers: no 1 s window of the backend's start times holds more than 50
/// starts of the group, and the achieved rate over the first ten seconds
/// is at least 90 % of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_rate_holds_for_ten_seconds() {
    let server = RedisServer::start();
    let q = RedisQueue::connect(&server.url()).await.unwrap();
    let queue = jobs_core::testing::unique_queue("flowrate");
    let jobs = (0..560u64).map(|seq| RatedSync { account: "acme".into(), seq });
    let ids = RatedSync::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue)).await.unwrap();
    let pools: Vec<_> = (0..3)
        .map(|_| jobs_core::WorkerPool::builder(q.clone()).queues([queue.as_str()]).workers(8).start().unwrap())
        .collect();
    all_succeed(&q, &ids, 60).await;
    for p in pools {
        p.shutdown().await.unwrap();
    }
    let mut starts = Vec::new();
    for id in &ids {
        let info = q.job(id).await.unwrap().unwrap();
        starts.push(info.attempt_log.first().unwrap().started_at);
    }
    starts.sort();
    let second = Duration::from_secs(1);
    let most = (0..starts.len()).map(|i| starts[i..].iter().take_while(|t| **t < starts[i] + second).count()).max();
    assert_eq!(most, Some(50), "at most 50 starts in any 1 s window, and reached");
    let ten = starts.iter().take_while(|t| **t < starts[0] + 10 * second).count();
    println!("starts in the first 10 s: {ten} of the 500 the rate allows");
    assert!(ten >= 450, "achieved {ten} starts in 10 s: under 90 % of 50/s");
}
