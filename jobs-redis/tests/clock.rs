//! Worker processes whose clocks are ten minutes off, next to one whose
//! clock is right, on one Redis: leases, delays, retries and cron ticks are
//! all on the server's clock, so none of them is stolen, early or late.
//!
//! The workers are the `jobs-redis-test-worker` binary run with libfaketime
//! preloaded (`FAKETIME=+10m` / `-10m`) for their wall clock only
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`: tokio's timers stay true). Runs are
//! counted from the workers' own run log (`testing::clock::ClockJob`),
//! refused results from their stderr. A missing libfaketime is a failure
//! that says what to install, never a skipped test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use jobs_core::testing::{eventually, run, unique_queue, DEADLINE};
use jobs_core::{
    CatchUp, JobExt, JobOptions, JobQueue, JobStatus, NewJob, PoolInfo, PoolPresence, QueueInspect, ScheduleOptions,
    ScheduleStore, Scheduler,
};
use jobs_redis::testing::clock::{read_run_log, ClockAct, ClockJob, RunLine};
use jobs_redis::testing::{shared_server_url, RedisServer, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
/// How far off the skewed workers' clocks are.
const SKEW: Duration = Duration::from_secs(600);

/// libfaketime's multi-threaded build (the worker runs a tokio runtime).
fn faketime_lib() -> PathBuf {
    if let Ok(p) = std::env::var("JOBS_FAKETIME_LIB") {
        return PathBuf::from(p);
    }
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates.iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!(
            "libfaketimeMT.so.1 not found: the clock tests need libfaketime \
             (`apt-get install faketime`), or JOBS_FAKETIME_LIB set to its path"
        )
    })
}

/// A fresh directory for one test's run log and worker stderr files.
fn test_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "jobs-redis-clock-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A worker process, its clock `offset` off (`"+10m"`, `"-10m"`; `None`: the
/// true clock).
struct Worker {
    proc: WorkerProcess,
    name: &'static str,
    skew: i64,
}

impl Worker {
    fn spawn(
        name: &'static str,
        offset: Option<&str>,
        url: &str,
        queues: &[&str],
        lease: Duration,
        backoff: Option<Duration>,
    ) -> Worker {
        let mut cmd = Command::new(WORKER_EXE);
        cmd.arg(url).arg(queues.join(",")).arg(lease.as_millis().to_string());
        if let Some(b) = backoff {
            cmd.arg(b.as_millis().to_string());
        }
        let mut skew = 0;
        if let Some(off) = offset {
            cmd.env("LD_PRELOAD", faketime_lib())
                .env("FAKETIME", off)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                // Read the offset at every call, not a cached one.
                .env("FAKETIME_NO_CACHE", "1");
            skew = if off.starts_with('-') { -1 } else { 1 };
        }
        Worker { proc: WorkerProcess::spawn_command(cmd), name, skew }
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Its warnings so far.
    fn warnings(&self) -> String {
        self.proc.stderr()
    }
}

/// Waits until every worker's pool reported itself, and checks that each
/// runs on the clock it was given: its pool's `started_at` is its own
/// clock's reading.
async fn wait_ready(q: &RedisQueue, workers: &[&Worker]) {
    let pools: Vec<PoolInfo> = jobs_core::testing::eventually_some("every worker's pool reported itself", || async {
        let pools = q.pools().await.unwrap();
        workers.iter().all(|w| pools.iter().any(|p| p.pid == w.pid())).then_some(pools)
    })
    .await;
    let now = SystemTime::now();
    for w in workers {
        let p = pools.iter().find(|p| p.pid == w.pid()).unwrap();
        let ahead = match p.started_at.duration_since(now) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let expected = w.skew as f64 * SKEW.as_secs_f64();
        assert!(
            (ahead - expected).abs() < 60.0,
            "worker {} should run {expected} s off, its pool started {ahead} s off: is libfaketime in effect?",
            w.name
        );
        assert!(
            p.last_seen <= SystemTime::now() + Duration::from_secs(1),
            "presence is stamped with the server's clock"
        );
    }
}

fn clock_job(log: &Path, tag: &str, act: ClockAct, queue: &str) -> NewJob {
    ClockJob { log: log.display().to_string(), tag: tag.to_owned(), act }
        .into_new_job(JobOptions::new().queue(queue))
        .unwrap()
}

/// Polls the run log until a line matching each key was seen; returns when
/// each was first seen (this process's monotonic clock, the same as the
/// server's here). Panics at the deadline with what is missing.
async fn first_seen(log: &Path, keys: &[(&str, &str, u32)]) -> HashMap<(String, String, u32), Instant> {
    let start = Instant::now();
    let mut seen: HashMap<(String, String, u32), Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        for l in read_run_log(log) {
            let k = (l.event.clone(), l.tag.clone(), l.attempt);
            if keys.iter().any(|(e, t, a)| *e == k.0 && *t == k.1 && *a == k.2) {
                seen.entry(k).or_insert(now);
            }
        }
        if seen.len() == keys.len() {
            return seen;
        }
        let missing: Vec<_> =
            keys.iter().filter(|(e, t, a)| !seen.contains_key(&((*e).to_owned(), (*t).to_owned(), *a))).collect();
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for run log lines {missing:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Workers 10 minutes ahead, 10 minutes behind and on time share a queue
/// with leases shorter than the jobs (kept by heartbeats): every job runs
/// exactly once, no lease is taken from a live worker and no result is
/// refused.
#[test]
fn skewed_workers_neither_steal_nor_lose_leases() {
    run(async {
        const N: usize = 24;
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let queue = unique_queue("clock.lease");
        let dir = test_dir("lease");
        let log = dir.join("runs.log");
        let lease = Duration::from_millis(600);
        let spawn = |name, offset| Worker::spawn(name, offset, &url, &[&queue], lease, None);
        let (ahead, behind, true_clock) =
            (spawn("ahead", Some("+10m")), spawn("behind", Some("-10m")), spawn("true", None));
        wait_ready(&q, &[&ahead, &behind, &true_clock]).await;
        let jobs = (0..N).map(|i| clock_job(&log, &format!("j{i}"), ClockAct::SleepMs(1500), &queue)).collect();
        let ids = q.enqueue_many(jobs).await.unwrap();
        eventually("every job finished", || async {
            let c = q.stats().await.unwrap().queue(&queue);
            c.processed + c.dead == N as u64
        })
        .await;
        let runs = read_run_log(&log);
        let mut starts: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for l in runs.iter().filter(|l| l.event == "start") {
            starts.entry(l.tag.clone()).or_default().push(l.pid);
        }
        let twice: Vec<_> = starts.iter().filter(|(_, pids)| pids.len() > 1).collect();
        assert!(twice.is_empty(), "jobs that ran more than once (tag: worker pids): {twice:?}");
        assert_eq!(starts.len(), N, "every job ran");
        for id in &ids {
            let info = q.job(id).await.unwrap().unwrap();
            assert_eq!((info.status, info.attempts), (JobStatus::Succeeded, 1), "{info:?}");
            assert!(info.last_error().is_none(), "no lease was lost: {info:?}");
        }
        let ran_by = |w: &Worker| starts.values().filter(|pids| pids[0] == w.pid()).count();
        for w in [&ahead, &behind, &true_clock] {
            assert!(
                !w.warnings().contains("result refused"),
                "worker {} had results refused:\n{}",
                w.name,
                w.warnings()
            );
        }
        assert!(ran_by(&ahead) > 0 && ran_by(&behind) > 0, "both skewed workers ran jobs");
        eprintln!(
            "skewed clocks: {N} jobs, each run once: {} by the worker 10 min ahead, {} by the one 10 min behind, {} on time",
            ran_by(&ahead),
            ran_by(&behind),
            ran_by(&true_clock)
        );
        drop((ahead, behind, true_clock));
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A retry (a 2 s backoff) decided by a worker 10 minutes ahead and one
/// 10 minutes behind, and a job delayed by 2 s by a job's code on each of
/// them: each runs 2 s later by the server's clock, neither at once nor 10
/// minutes late, taken by a worker on the true clock (the skewed workers
/// are killed once the retries are recorded, and never serve the delayed
/// jobs' queue).
#[test]
fn retries_and_delays_are_due_on_the_server_clock() {
    run(async {
        let url = shared_server_url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let dir = test_dir("due");
        let log = dir.join("runs.log");
        let delay = Duration::from_secs(2);
        let (qa, qb, qd) = (unique_queue("clock.ahead"), unique_queue("clock.behind"), unique_queue("clock.delayed"));
        let lease = Duration::from_secs(5);
        let mut ahead = Worker::spawn("ahead", Some("+10m"), &url, &[&qa], lease, Some(delay));
        let mut behind = Worker::spawn("behind", Some("-10m"), &url, &[&qb], lease, Some(delay));
        let delayed = Worker::spawn("true", None, &url, &[&qd], lease, None);
        wait_ready(&q, &[&ahead, &behind, &delayed]).await;
        let keys = [
            ("fail", "a.retry", 1),
            ("start", "a.retry", 2),
            ("spawned", "a.spawn", 1),
            ("start", "a.delayed", 1),
            ("fail", "b.retry", 1),
            ("start", "b.retry", 2),
            ("spawned", "b.spawn", 1),
            ("start", "b.delayed", 1),
        ];
        // Watched from before the first job, while the workers change.
        let watch = tokio::spawn({
            let log = log.clone();
            async move { first_seen(&log, &keys).await }
        });
        let mut jobs = Vec::new();
        for (side, queue) in [("a", &qa), ("b", &qb)] {
            jobs.push(clock_job(&log, &format!("{side}.retry"), ClockAct::FailFirst, queue));
            let spawn = ClockAct::Spawn {
                tag: format!("{side}.delayed"),
                queue: qd.clone(),
                delay_ms: delay.as_millis() as u64,
            };
            jobs.push(clock_job(&log, &format!("{side}.spawn"), spawn, queue));
        }
        let ids = q.enqueue_many(jobs).await.unwrap();
        eventually("the retries are recorded and the delayed jobs enqueued", || async {
            let mut done = true;
            for (i, id) in ids.iter().enumerate() {
                let status = q.job(id).await.unwrap().unwrap().status;
                done &= if i % 2 == 0 { status == JobStatus::Retrying } else { status == JobStatus::Succeeded };
            }
            done
        })
        .await;
        // From here the true clock alone promotes the retries.
        ahead.proc.kill();
        behind.proc.kill();
        let retries = Worker::spawn("true", None, &url, &[&qa, &qb], lease, None);
        let seen = watch.await.unwrap();
        let at = |k: (&str, &str, u32)| seen[&(k.0.to_owned(), k.1.to_owned(), k.2)];
        for (worker, side) in [("10 min ahead", "a"), ("10 min behind", "b")] {
            let retry = &format!("{side}.retry");
            let gap = at(("start", retry, 2)) - at(("fail", retry, 1));
            let (spawn, delayed) = (&format!("{side}.spawn"), &format!("{side}.delayed"));
            let waited = at(("start", delayed, 1)) - at(("spawned", spawn, 1));
            eprintln!("worker {worker}: retry after {gap:?}, delayed job after {waited:?} (both due in {delay:?})");
            // The observed first line may lag its write by a poll (5 ms).
            let early = delay - Duration::from_millis(100);
            let late = delay + Duration::from_secs(2);
            assert!(gap >= early && gap <= late, "worker {worker}: the retry ran {gap:?} after the failure");
            assert!(
                waited >= early && waited <= late,
                "worker {worker}: the delayed job ran {waited:?} after its enqueue"
            );
        }
        drop((ahead, behind, delayed, retries));
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A cron schedule ticking every second, run first by the scheduler of a
/// worker 10 minutes behind (its ticks must not be 10 minutes late), then
/// also by one 10 minutes ahead (its ticks must not be early): every tick
/// recorded is past by the server's clock, and each tick's job runs once.
#[test]
fn cron_ticks_fire_on_the_server_clock() {
    // Schedules are store-wide: a server of its own.
    let server = RedisServer::start();
    let url = server.url();
    run(async move {
        let q = RedisQueue::connect(&url).await.unwrap();
        let dir = test_dir("cron");
        let log = dir.join("runs.log");
        let queue = unique_queue("clock.cron");
        let name = format!("{queue}.every-second");
        let job = ClockJob { log: log.display().to_string(), tag: "tick".into(), act: ClockAct::SleepMs(0) };
        let options = ScheduleOptions::new().catch_up(CatchUp::One).queue(&queue);
        Scheduler::new(q.clone()).add_with(&name, "* * * * * *", "UTC", job, options).await.unwrap();
        let lease = Duration::from_secs(5);
        let behind = Worker::spawn("behind", Some("-10m"), &url, &[&queue], lease, None);
        wait_ready(&q, &[&behind]).await;
        first_seen(&log, &[("start", "tick", 1)]).await;
        let ahead = Worker::spawn("ahead", Some("+10m"), &url, &[&queue], lease, None);
        wait_ready(&q, &[&behind, &ahead]).await;
        let ticks = std::sync::Mutex::new(BTreeSet::new());
        eventually("three more ticks, none early", || async {
            let state = q.schedules().await.unwrap().into_iter().find(|s| s.def.name == name).unwrap();
            let server_now = q.now().await.unwrap();
            let tick = state.last_tick.unwrap();
            assert!(
                tick <= server_now,
                "tick {:?} recorded {:?} before it was due by the server's clock",
                tick,
                tick.duration_since(server_now).unwrap_or_default()
            );
            let mut ticks = ticks.lock().unwrap();
            ticks.insert(tick);
            ticks.len() > 3
        })
        .await;
        let runs: Vec<RunLine> = read_run_log(&log).into_iter().filter(|l| l.event == "start").collect();
        let jobs: BTreeSet<&str> = runs.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(jobs.len(), runs.len(), "each tick's job ran once: {runs:?}");
        drop((ahead, behind));
        let _ = std::fs::remove_dir_all(&dir);
    });
    drop(server);
}
