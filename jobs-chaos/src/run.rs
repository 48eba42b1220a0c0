//! [`run`]: one chaos run from start to verdict.
//!
//! 1. Start `redis-server` (AOF on) and the worker processes, and wait
//!    until each has checked its clock (skewed slots: off by what they were
//!    given).
//! 2. For [`ChaosConfig::load`]: producers enqueue, one task kills workers
//!    at random, another injects the planned faults; a monitor cancels the
//!    `chaos.hang` jobs once they run.
//! 3. Drain: wait until every acknowledged job has finished.
//! 4. Stop the workers cleanly, read the run logs and every acknowledged
//!    job's record, and check them ([`crate::verify`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{CancelResult, JobId, JobInfo, QueueAdmin, QueueInspect};
use jobs_redis::RedisQueue;

use crate::config::ChaosConfig;
use crate::error::ChaosError;
use crate::faults::{fault_loop, kill_loop};
use crate::fleet::{Fleet, WorkerSpec};
use crate::jobs::{Kind, QUEUE};
use crate::model::{lock, Acked, Shared};
use crate::producer::{produce, Specials};
use crate::redis_proc::RedisProc;
use crate::report::{CrashCounts, Report};
use crate::runlog::RunLogs;
use crate::worker::connect;

/// A fresh directory for the run's files.
fn run_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    std::env::temp_dir().join(format!("jobs-chaos-{}-{nanos}", std::process::id()))
}

/// Runs the chaos suite with `cfg` and returns its report (which says
/// whether it passed). Fails only when the run itself cannot be carried out.
pub fn run(cfg: ChaosConfig) -> Result<Report, ChaosError> {
    cfg.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ChaosError::io("tokio runtime", e))?;
    let dir = run_dir();
    let result = rt.block_on(run_in(cfg.clone(), dir.clone()));
    let keep = cfg.keep_dir || result.as_ref().map_or(true, |r| !r.passed);
    if keep && dir.exists() {
        eprintln!("jobs-chaos: the run's files (redis.log, run logs, worker logs) are in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(cfg: ChaosConfig, dir: PathBuf) -> Result<Report, ChaosError> {
    let t0 = Instant::now();
    let say = |s: String| {
        if cfg.progress {
            eprintln!("jobs-chaos [{:>6.1}s] {s}", t0.elapsed().as_secs_f64());
        }
    };
    if cfg.skewed_clocks.iter().any(|s| *s != 0) {
        // Before anything starts: a missing libfaketime is a clear error.
        crate::fleet::faketime_lib(cfg.faketime_lib.as_deref())?;
    }
    let redis = tokio::task::block_in_place(|| RedisProc::start(&cfg.redis_server, &dir.join("redis"), cfg.fsync))?;
    let url = redis.url();
    say(format!("redis-server on {url}, appendonly yes, appendfsync {}", cfg.fsync.as_str()));
    let redis = Arc::new(Mutex::new(redis));
    let spec = WorkerSpec {
        exe: cfg.worker_exe.clone(),
        url: url.clone(),
        queue: QUEUE.to_owned(),
        lease: cfg.lease,
        concurrency: cfg.concurrency,
        runlog_dir: dir.join("runlogs"),
        stderr_dir: dir.join("workers"),
        skewed_clocks: cfg.skewed_clocks.clone(),
        crash_budget: cfg.crash_budget,
        faketime_lib: cfg.faketime_lib.clone(),
    };
    let fleet = tokio::task::block_in_place(|| Fleet::start(spec, cfg.worker_procs))?;
    let fleet = Arc::new(Mutex::new(fleet));
    wait_clocks(&fleet).await?;
    say(format!(
        "worker clocks checked against the server's: {}",
        (0..cfg.worker_procs)
            .map(|s| format!("w{s} {}", crate::report::skew_text(cfg.skewed_clocks.get(s).copied().unwrap_or(0))))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let queue = connect(&url).await;
    if cfg.partitions > 1 {
        let n = queue.set_partitions(QUEUE, cfg.partitions).await?;
        say(format!("queue {QUEUE} spread over {n} partitions"));
    }
    if cfg.groups > 0 {
        let mut policy = queue.policy(QUEUE).await?;
        policy.group_concurrency = Some(cfg.group_concurrency);
        policy.group_rate = cfg.group_rate;
        queue.set_policy(QUEUE, policy).await?;
        let rate = cfg.group_rate.map_or_else(String::new, |r| format!(", {r}"));
        say(format!("half the jobs in {} groups of at most {} at once{rate}", cfg.groups, cfg.group_concurrency));
    }
    let shared = Arc::new(Shared::new(cfg.progress));
    let started = Instant::now();
    let load_end = started + cfg.load;
    say(format!(
        "{} worker processes x {}, lease {:?}; load for {:?}",
        cfg.worker_procs, cfg.concurrency, cfg.lease, cfg.load
    ));

    let specials = Arc::new(Specials::new(&cfg));
    let mut producers = Vec::new();
    for i in 0..cfg.producers {
        let p = produce(cfg.clone(), queue.clone(), shared.clone(), specials.clone(), i, started);
        producers.push(tokio::spawn(p));
    }
    let killer = tokio::spawn(kill_loop(cfg.clone(), fleet.clone(), shared.clone(), load_end));
    let faults =
        tokio::spawn(fault_loop(cfg.clone(), fleet.clone(), redis.clone(), queue.clone(), shared.clone(), started));
    let monitor = tokio::spawn(hang_monitor(queue.clone(), shared.clone()));
    let progress = tokio::spawn(progress_loop(queue.clone(), shared.clone(), t0, cfg.progress));

    for p in producers {
        match p.await {
            Ok(r) => r?,
            Err(e) => shared.problem(format!("a producer task failed: {e}")),
        }
    }
    if faults.await.is_err() {
        shared.problem("the fault task failed".into());
    }
    say(format!("load over: {} jobs acknowledged; draining", lock(&shared.acked).len()));

    let drained = drain(&queue, &shared, cfg.drain_timeout).await;
    say(if drained { "drained".to_owned() } else { format!("NOT drained within {:?}", cfg.drain_timeout) });
    shared.done.store(true, Ordering::Relaxed);
    let _ = killer.await;
    let _ = monitor.await;
    progress.abort();
    let clean = tokio::task::block_in_place(|| lock(&fleet).shutdown(Duration::from_secs(10)));
    say(format!("worker processes stopped ({clean} cleanly)"));

    let logs = RunLogs::read_dir(&dir.join("runlogs"))?;
    let acked = lock(&shared.acked).clone();
    let infos = read_all(&queue, &acked).await?;
    let refused = count_in_files(&dir.join("workers"), "result refused");
    let postponed = lock(&redis).postponed_fsyncs();
    let crashes = read_crashes(&url, cfg.partitions).await.unwrap_or_else(|e| {
        shared.note(format!("cannot read the crash counts: {e}"));
        CrashCounts::default()
    });
    let groups = if cfg.groups > 0 {
        let mut found = crate::groups::check(&infos, cfg.group_concurrency, cfg.group_rate);
        match crate::groups::residue(&url, cfg.partitions).await {
            Ok(left) => found.residue = left,
            Err(e) => shared.problem(format!("cannot read the groups' counts: {e}")),
        }
        Some(found)
    } else {
        None
    };
    let procs = lock(&fleet).history().to_vec();
    say(format!("read {} run log lines and {} job records; checking", logs.lines, infos.len()));
    let report =
        Report::build(&cfg, &shared, &acked, &infos, &logs, refused, postponed, t0.elapsed(), &procs, crashes, groups);
    Ok(report)
}

/// How long a starting worker process may take to report its clock: it
/// connects and reads Redis `TIME` first.
const CLOCK_REPORT_WITHIN: Duration = Duration::from_secs(30);

/// Waits until every worker process of the fleet has recorded its clock in
/// its run log, and fails when one is not off by what it was given (or
/// exited, or stayed silent).
async fn wait_clocks(fleet: &Mutex<Fleet>) -> Result<(), ChaosError> {
    let deadline = Instant::now() + CLOCK_REPORT_WITHIN;
    let n = lock(fleet).len();
    let mut pending: Vec<usize> = (0..n).collect();
    loop {
        let mut still = Vec::new();
        for slot in pending {
            let (pid, runlog, stderr, exited, skew_s) = {
                let mut f = lock(fleet);
                let exited = f.has_exited(slot);
                (f.pid(slot), f.runlog(slot), f.stderr_file(slot), exited, f.skew_s(slot))
            };
            let (Some(pid), Some(runlog)) = (pid, runlog) else { continue };
            let clock = std::fs::read_to_string(&runlog).ok().and_then(|t| clock_line(&t));
            match clock {
                Some(measured_ms) => {
                    let expected_ms = skew_s.saturating_mul(1000);
                    if (measured_ms - expected_ms).abs() > 2_000 {
                        return Err(ChaosError::ClockSkew { slot, pid, expected_ms, measured_ms });
                    }
                }
                None if exited || Instant::now() >= deadline => {
                    let stderr = stderr.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
                    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                    let stderr = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                    return Err(ChaosError::ClockUnknown { slot, pid, waited: CLOCK_REPORT_WITHIN, stderr });
                }
                None => still.push(slot),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The measured offset of a run log's clock line (`C <pid> <given>
/// <measured> <ms>`).
fn clock_line(text: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            ["C", _, _, measured, _] => measured.parse().ok(),
            _ => None,
        }
    })
}

/// The backend's count of leases each job lost before its handler started
/// (`jobs-redis` keeps them in the queue's `crash` hash, see its
/// `scripts/common.lua`; `JobInfo` does not carry them).
async fn read_crashes(url: &str, partitions: u16) -> Result<CrashCounts, redis::RedisError> {
    let all =
        crate::worker::read_queue_hashes(url, partitions, &["crash"]).await?.into_iter().next().unwrap_or_default();
    let counts: Vec<u64> = all.values().map(|v| v.parse().unwrap_or(0)).collect();
    Ok(CrashCounts {
        leases: counts.iter().sum(),
        jobs: counts.iter().filter(|&&n| n > 0).count() as u64,
        most: counts.iter().copied().max().unwrap_or(0),
    })
}

/// Cancels each `chaos.hang` job once it runs, until every one has ended.
async fn hang_monitor(queue: RedisQueue, shared: Arc<Shared>) {
    let mut seen = 0;
    let mut waiting: Vec<JobId> = Vec::new();
    let mut asked: HashSet<JobId> = HashSet::new();
    loop {
        {
            let acked = lock(&shared.acked);
            waiting.extend(acked[seen..].iter().filter(|a| a.kind == Kind::Hang).map(|a| a.id.clone()));
            seen = acked.len();
        }
        let mut still = Vec::new();
        for id in waiting.drain(..) {
            match queue.job(&id).await {
                Ok(Some(info)) if info.status.is_finished() => {}
                Ok(Some(info)) if info.status == jobs_core::JobStatus::Running => {
                    if let Ok(CancelResult::Requested) = queue.cancel(&id).await {
                        if asked.insert(id.clone()) {
                            shared.hang_cancels.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    still.push(id);
                }
                _ => still.push(id),
            }
        }
        waiting = still;
        if shared.done.load(Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Progress on stderr every 5 s.
async fn progress_loop(queue: RedisQueue, shared: Arc<Shared>, t0: Instant, on: bool) {
    if !on {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let acked = lock(&shared.acked).len();
        let faults = lock(&shared.faults).len();
        let c = tokio::time::timeout(Duration::from_secs(2), queue.stats()).await;
        let counts = match c {
            Ok(Ok(s)) => {
                let c = s.queue(QUEUE);
                let handed = s.queues.get(QUEUE).map_or(0, |q| q.handed);
                format!(
                    "processed {} pending {} running {} dead {}, handed to idle pools {handed}",
                    c.processed, c.pending, c.running, c.dead
                )
            }
            _ => "stats unavailable (Redis down?)".to_owned(),
        };
        eprintln!(
            "jobs-chaos [{:>6.1}s] acked {acked}, {counts}, faults {faults}, failed enqueue calls {}",
            t0.elapsed().as_secs_f64(),
            shared.enqueue_errors.load(Ordering::Relaxed)
        );
    }
}

/// Waits until the chaos queue has nothing pending, scheduled, running or
/// retrying. `false` on timeout.
async fn drain(queue: &RedisQueue, shared: &Shared, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(stats) = queue.stats().await else { continue };
        let c = stats.queue(QUEUE);
        if c.pending + c.scheduled + c.running + c.retrying == 0 {
            // Twice in a row: a reclaim may move a job back between reads.
            quiet += 1;
            if quiet >= 2 {
                return true;
            }
        } else {
            quiet = 0;
        }
    }
    shared.problem(format!("jobs were still unfinished {timeout:?} after the load ended"));
    false
}

/// Every acknowledged job's record, in `acked` order (`None`: not stored).
async fn read_all(queue: &RedisQueue, acked: &[Acked]) -> Result<Vec<Option<JobInfo>>, ChaosError> {
    let mut tasks = Vec::new();
    for chunk in acked.chunks(acked.len().div_ceil(8).max(1)) {
        let ids: Vec<JobId> = chunk.iter().map(|a| a.id.clone()).collect();
        let q = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                out.push(q.job(id).await?);
            }
            Ok::<_, jobs_core::Error>(out)
        }));
    }
    let mut all = Vec::with_capacity(acked.len());
    for t in tasks {
        let part = t.await.map_err(|e| ChaosError::Config(format!("a read task failed: {e}")))??;
        all.extend(part);
    }
    Ok(all)
}

/// Lines containing `needle` in every file of `dir`.
fn count_in_files(dir: &std::path::Path, needle: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|t| t.lines().filter(|l| l.contains(needle)).count() as u64)
        .sum()
}
