//! The faults a run injects, and the two tasks that inject them: one kills
//! worker processes at random every few seconds (and restarts whatever
//! died, a poison job's victims included), the other works through a
//! planned list of longer faults (worker stops, Redis crashes, outages and
//! freezes), one at a time.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, NewJob, Priority, QueueInspect};
use jobs_redis::RedisQueue;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use crate::model::{FaultEvent, FaultKind};

use crate::config::ChaosConfig;
use crate::fleet::Fleet;
use crate::jobs::{ChaosWork, Kind, QUEUE};
use crate::model::{lock, Acked, Shared};
use crate::redis_proc::RedisProc;
use crate::runlog::now_ms;
use crate::worker::CLOCK_EXIT;

/// Kills a random live worker every `kill_every` (jittered) while `load`
/// lasts, and restarts every process that died, until `shared.done`.
pub(crate) async fn kill_loop(cfg: ChaosConfig, fleet: Arc<Mutex<Fleet>>, shared: Arc<Shared>, load_end: Instant) {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut next_kill = Instant::now() + cfg.kill_every;
    let mut restarts: Vec<(Instant, usize)> = Vec::new();
    while !shared.done.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = Instant::now();
        tokio::task::block_in_place(|| {
            let mut f = lock(&fleet);
            for (slot, pid, status) in f.reap_exited() {
                if status.code() == Some(CLOCK_EXIT) {
                    shared.problem(format!(
                        "worker {pid} (slot {slot}) exited: its clock is not off by the {} s it was given \
                         (libfaketime not in effect?)",
                        f.skew_s(slot)
                    ));
                }
                shared.record(FaultEvent {
                    kind: FaultKind::WorkerCrash,
                    pid: Some(pid),
                    start_ms: now_ms(),
                    end_ms: now_ms(),
                });
                shared.note(format!("worker {pid} (slot {slot}) exited by itself: {status}"));
                restarts.push((now + cfg.restart_after, slot));
            }
            if now >= next_kill && now < load_end {
                let live = f.live();
                if let Some(&slot) = live.get(rng.random_range(0..live.len().max(1))) {
                    if let Some(pid) = f.kill(slot) {
                        let t = now_ms();
                        shared.record(FaultEvent {
                            kind: FaultKind::WorkerKill,
                            pid: Some(pid),
                            start_ms: t,
                            end_ms: t,
                        });
                        restarts.push((now + cfg.restart_after, slot));
                    }
                }
                next_kill = now + cfg.kill_every.mul_f64(rng.random_range(0.5..1.5));
            }
            let (due, later): (Vec<_>, Vec<_>) = restarts.drain(..).partition(|(at, _)| *at <= now || now >= load_end);
            restarts = later;
            for (_, slot) in due {
                if f.pid(slot).is_none() {
                    if let Err(e) = f.restart(slot) {
                        shared.note(format!("cannot restart worker slot {slot}: {e}"));
                    }
                }
            }
        });
    }
}

/// One planned fault of the fault loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Stop,
    Crash,
    Outage,
    Freeze,
}

/// Works through the planned faults, spread over the load, one at a time.
pub(crate) async fn fault_loop(
    cfg: ChaosConfig,
    fleet: Arc<Mutex<Fleet>>,
    redis: Arc<Mutex<RedisProc>>,
    queue: RedisQueue,
    shared: Arc<Shared>,
    started: Instant,
) {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut plan: Vec<Planned> = Vec::new();
    plan.extend((0..cfg.stops).map(|_| Planned::Stop));
    plan.extend((0..cfg.redis_crashes).map(|_| Planned::Crash));
    plan.extend((0..cfg.redis_outages).map(|_| Planned::Outage));
    plan.extend((0..cfg.redis_freezes).map(|_| Planned::Freeze));
    plan.shuffle(&mut rng);
    let n = plan.len().max(1) as f64;
    for (i, fault) in plan.into_iter().enumerate() {
        // From 10 % to 80 % of the load, evenly.
        let at = started + cfg.load.mul_f64(0.1 + 0.7 * i as f64 / n);
        tokio::time::sleep_until(at.into()).await;
        match fault {
            Planned::Stop => stop_worker(&cfg, &fleet, &queue, &shared, &mut rng).await,
            Planned::Crash => redis_down(&redis, &queue, &shared, FaultKind::RedisCrash, Duration::ZERO).await,
            Planned::Outage => redis_down(&redis, &queue, &shared, FaultKind::RedisOutage, cfg.redis_down_for).await,
            Planned::Freeze => redis_freeze(&cfg, &redis, &shared).await,
        }
    }
}

/// Stops a worker process for three leases while it runs a job that
/// others then take over: right before the stop, one long `chaos.work` job
/// per worker process is enqueued (high priority, two leases long), and the
/// first process whose run log shows one of them started and not ended is
/// stopped at once (under the fleet's lock: it cannot be killed in
/// between). So every stop catches a run in flight, whose late result the
/// checks then look for.
async fn stop_worker(
    cfg: &ChaosConfig,
    fleet: &Arc<Mutex<Fleet>>,
    queue: &RedisQueue,
    shared: &Shared,
    rng: &mut StdRng,
) {
    let probes: HashSet<String> = probe_jobs(cfg, queue, shared).await.iter().map(ToString::to_string).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stopped = loop {
        let last_try = Instant::now() >= deadline;
        let picked = tokio::task::block_in_place(|| {
            let mut f = lock(fleet);
            let live = f.live();
            // Keep at least one other worker running, to take its jobs over.
            if live.len() < 2 {
                return None;
            }
            let running_probe =
                live.iter().copied().find(|&s| f.runlog(s).is_some_and(|p| probe_in_flight(&p, &probes)));
            let slot = match (running_probe, last_try) {
                (Some(s), _) => s,
                (None, true) => live[rng.random_range(0..live.len())],
                (None, false) => return None,
            };
            f.set_stopped(slot, true).ok().map(|pid| (slot, pid, running_probe.is_some()))
        });
        if picked.is_some() || last_try {
            break picked;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Some((_, pid, false)) = stopped {
        shared.note(format!("stopping worker {pid}, not seen running a probe job"));
    }
    let stopped = stopped.map(|(slot, pid, _)| (slot, pid));
    let Some((slot, pid)) = stopped else {
        shared.note("no worker to stop: skipped one stop".into());
        return;
    };
    let start_ms = now_ms();
    tokio::time::sleep(cfg.lease * 3).await;
    // Taken before SIGCONT: the process may run (and log) at once.
    let end_ms = now_ms();
    let r = tokio::task::block_in_place(|| lock(fleet).set_stopped(slot, false));
    if let Err(e) = r {
        shared.note(format!("cannot continue worker {pid}: {e}"));
    }
    shared.record(FaultEvent { kind: FaultKind::WorkerStop, pid: Some(pid), start_ms, end_ms });
}

/// Whether the run log at `path` shows a run of one of `probes` started and
/// not ended.
fn probe_in_flight(path: &std::path::Path, probes: &HashSet<String>) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let mut open: HashSet<&str> = HashSet::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let (Some(kind), Some(id)) = (it.next(), it.next()) else { continue };
        if !probes.contains(id) {
            continue;
        }
        match kind {
            "S" => {
                open.insert(id);
            }
            "E" => {
                open.remove(id);
            }
            _ => {}
        }
    }
    !open.is_empty()
}

/// Enqueues the long jobs a stop catches in flight (acknowledged jobs like
/// any other: they are checked at the end).
async fn probe_jobs(cfg: &ChaosConfig, queue: &RedisQueue, shared: &Shared) -> Vec<JobId> {
    let sleep_ms = u64::try_from((cfg.lease * 2).as_millis()).unwrap_or(u64::MAX);
    let opts = JobOptions::new().priority(Priority::High);
    let jobs: Vec<NewJob> = (0..cfg.worker_procs as u64)
        .filter_map(|i| ChaosWork { seq: u64::MAX - i, sleep_ms }.into_new_job(opts.clone()).ok())
        .collect();
    for _ in 0..25 {
        if let Ok(ids) = queue.enqueue_many(jobs.clone()).await {
            let at = now_ms();
            lock(&shared.acked).extend(ids.iter().map(|id| Acked { id: id.clone(), kind: Kind::Work, ack_ms: at }));
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Vec::new()
}

/// Kills Redis, keeps it down for `down`, restarts it; around it, checks
/// that jobs finished before the crash are still finished after it.
async fn redis_down(
    redis: &Arc<Mutex<RedisProc>>,
    queue: &RedisQueue,
    shared: &Shared,
    kind: FaultKind,
    down: Duration,
) {
    let finished = finished_sample(queue).await;
    let start_ms = now_ms();
    tokio::task::block_in_place(|| lock(redis).kill());
    if !down.is_zero() {
        tokio::time::sleep(down).await;
    }
    let restarted = tokio::task::block_in_place(|| lock(redis).start_again());
    if let Err(e) = restarted {
        shared.note(format!("redis-server did not come back: {e}"));
    }
    shared.record(FaultEvent { kind, pid: None, start_ms, end_ms: now_ms() });
    check_still_finished(queue, shared, finished).await;
}

async fn redis_freeze(cfg: &ChaosConfig, redis: &Arc<Mutex<RedisProc>>, shared: &Shared) {
    let start_ms = now_ms();
    if let Err(e) = tokio::task::block_in_place(|| lock(redis).signal("STOP")) {
        shared.note(format!("cannot freeze redis-server: {e}"));
        return;
    }
    tokio::time::sleep(cfg.redis_down_for).await;
    let end_ms = now_ms();
    if let Err(e) = tokio::task::block_in_place(|| lock(redis).signal("CONT")) {
        shared.note(format!("cannot continue redis-server: {e}"));
    }
    shared.record(FaultEvent { kind: FaultKind::RedisFreeze, pid: None, start_ms, end_ms });
}

/// Up to 1,000 succeeded and 200 dead jobs of the chaos queue, newest first.
async fn finished_sample(queue: &RedisQueue) -> Vec<(JobId, JobStatus)> {
    let mut out = Vec::new();
    for (status, n) in [(JobStatus::Succeeded, 1000), (JobStatus::Dead, 200)] {
        let read = tokio::time::timeout(Duration::from_secs(3), queue.list_jobs(QUEUE, status, 0, n)).await;
        if let Ok(Ok(jobs)) = read {
            out.extend(jobs.into_iter().map(|j| (j.id, j.status)));
        }
    }
    out
}

/// No finished job comes back: each job of the sample still has its status.
async fn check_still_finished(queue: &RedisQueue, shared: &Shared, sample: Vec<(JobId, JobStatus)>) {
    for (id, before) in sample {
        let mut tries = 0;
        let now = loop {
            match queue.job(&id).await {
                Ok(info) => break info.map(|i| i.status),
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    shared.note(format!("cannot read {id} after the restart: {e}"));
                    return;
                }
            }
        };
        shared.finished_checked.fetch_add(1, Ordering::Relaxed);
        if now != Some(before) {
            shared.resurrected.fetch_add(1, Ordering::Relaxed);
            shared.problem(format!("{id} was {before} before Redis went down and is {now:?} after"));
        }
    }
}
