//! The Redis backend on a Redis Cluster: three masters, no replicas, started
//! once for this test binary ([`shared_cluster`]).
//!
//! - the whole conformance suite of `jobs-core`, a key prefix per case;
//! - queues spread over the masters, each job found by its id alone;
//! - a waiter on one node woken by a script on another;
//! - a waiter parked on a queue of each master, handed a job by an enqueue;
//! - a queue's slot moved to another master twice (`redis-cli --cluster
//!   reshard`, then `CLUSTER SETSLOT` + `MIGRATE` by hand) while a producer
//!   enqueues and a pool works: nothing lost, nothing run twice;
//! - worker processes killed with SIGKILL under load (as in `crash.rs`),
//!   checked against their run log;
//! - a workflow over queues on the three masters, its workers SIGKILLed.
#![cfg(feature = "cluster")]
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, run, test_pool, unique_queue, wait_status};
use jobs_core::{
    Batch, FlowRun, FlowStatus, JobExt, JobId, JobOptions, JobQueue, JobStatus, MemberStatus, QueueInspect, Step,
    Workflow,
};
use jobs_redis::keys::key_slot;
use jobs_redis::testing::runlog;
use jobs_redis::testing::{
    check_kill_runs, kill_in_turn, shared_cluster, CrashJob, RedisCluster, RunLog, WorkerProcess,
};
use jobs_redis::{RedisConfig, RedisQueue};

jobs_core::conformance_suite!(|| async {
    let prefix = jobs_core::testing::unique_queue("jobs");
    let q = RedisQueue::from_config(&RedisConfig { prefix, ..RedisConfig::new(shared_cluster().url()) }).await.unwrap();
    assert!(q.is_cluster());
    q
});

mod workflows {
    use super::*;

    jobs_core::conformance_suite!(|| async {
        let prefix = jobs_core::testing::unique_queue("jobs");
        let q = RedisQueue::from_config(&RedisConfig { prefix, ..RedisConfig::new(shared_cluster().url()) }).await.unwrap();
        assert!(q.is_cluster());
        q
    }; workflows);
}

/// The suite again with every queue spread over three partitions, so that
/// one queue's jobs are on several masters (all but the `queue_wide` cases,
/// which need a queue in one slot).
mod partitioned {
    use super::*;

    async fn partitioned() -> RedisQueue {
        let prefix = jobs_core::testing::unique_queue("jobs");
        let partitions = [("*".to_owned(), 3)].into();
        let config = RedisConfig { prefix, partitions, ..RedisConfig::new(shared_cluster().url()) };
        RedisQueue::from_config(&config).await.unwrap()
    }

    jobs_core::conformance_suite!(partitioned; hot, admin, presence, history, schedules, events);
}

fn probe(queue: &str, seq: u64, act: Act) -> jobs_core::NewJob {
    ProbeJob { key: queue.to_owned(), seq, act }.into_new_job(JobOptions::new().queue(queue)).unwrap()
}

/// A queue name whose slot satisfies `pred`.
fn queue_where(tag: &str, pred: impl Fn(u16) -> bool) -> String {
    loop {
        let q = unique_queue(tag);
        if pred(key_slot(q.as_bytes())) {
            return q;
        }
    }
}

/// The masters' slot ranges, from `CLUSTER SLOTS` of the first node: (first
/// slot, last slot, port).
fn slot_ranges(c: &RedisCluster) -> Vec<(u16, u16, u16)> {
    let out = c.cli(c.ports()[0], &["CLUSTER", "SLOTS"]);
    // redis-cli prints each range as: first, last, ip, port, id (one per line).
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + 3 < lines.len() {
        if let (Ok(a), Ok(b), Ok(p)) = (lines[i].parse(), lines[i + 1].parse(), lines[i + 3].parse()) {
            if lines[i + 2] == "127.0.0.1" {
                ranges.push((a, b, p));
                i += 4;
                continue;
            }
        }
        i += 1;
    }
    ranges
}

/// The port of the master owning `slot`, from [`slot_ranges`].
fn owner_in(ranges: &[(u16, u16, u16)], slot: u16) -> u16 {
    ranges.iter().find(|r| (r.0..=r.1).contains(&slot)).map(|r| r.2).unwrap()
}

/// One queue on each master; every key of a queue is on its master (one
/// slot), and `job(&id)` finds each job from its id alone: the id carries
/// the queue, so the lookup is one command to one slot.
#[test]
fn queues_spread_over_masters_and_jobs_are_found_by_id() {
    run(async {
        let c = shared_cluster();
        let q = RedisQueue::connect(&c.url()).await.unwrap();
        let mut seen_owners = HashSet::new();
        let ranges = slot_ranges(c);
        for port in c.ports() {
            let queue = queue_where("spread", |s| owner_in(&ranges, s) == port);
            let ids = q.enqueue_many((0..5).map(|i| probe(&queue, i, Act::Succeed)).collect()).await.unwrap();
            let slot = key_slot(queue.as_bytes());
            let owner = c.owner_of(slot);
            seen_owners.insert(owner);
            let count: u64 = c.cli(owner, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).trim().parse().unwrap();
            assert!(count >= 2, "the queue's keys are on the owner: {count}");
            for other in c.ports().into_iter().filter(|&p| p != owner) {
                let n = c.cli(other, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
                assert_eq!(n.trim(), "0", "no key of `{queue}` on another master");
            }
            for id in &ids {
                assert_eq!(q.job(id).await.unwrap().unwrap().status, JobStatus::Pending);
            }
            let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
            for id in &ids {
                wait_status(&q, id, JobStatus::Succeeded).await;
            }
            pool.shutdown().await.unwrap();
        }
        assert_eq!(seen_owners.len(), 3, "one queue on each master");
        // stats() reads every queue, whatever master holds it, in one call.
        let stats = q.stats().await.unwrap();
        assert!(stats.queues.len() >= 3);
    });
}

/// A queue of three partitions whose slots are on the three masters: its
/// jobs spread evenly over them, a pool takes them from every master, each
/// runs once.
#[test]
fn a_partitioned_queue_spreads_over_the_masters() {
    run(async {
        let c = shared_cluster();
        let q = RedisQueue::connect(&c.url()).await.unwrap();
        let ranges = slot_ranges(c);
        let key = |q: &str, p: u16| jobs_redis::keys::QueueKeys::of_partition("jobs", q, p).jobs();
        let owners = |q: &str| (0..3).map(|p| owner_in(&ranges, key_slot(key(q, p).as_bytes()))).collect::<Vec<_>>();
        // Three partitions are placed a third of the slots apart: one on
        // each master, unless one lands within a few slots of a master's
        // edge (a queue of another name then).
        let queue = loop {
            let q = unique_queue("pspread");
            if owners(&q).into_iter().collect::<HashSet<_>>().len() == 3 {
                break q;
            }
        };
        q.set_partitions(&queue, 3).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..300 {
            ids.extend(q.enqueue_many(vec![probe(&queue, i, Act::Succeed)]).await.unwrap());
        }
        for (p, owner) in owners(&queue).into_iter().enumerate() {
            let key = key(&queue, p as u16);
            assert_eq!(c.cli(owner, &["HLEN", &key]).trim(), "100", "partition {p} on the master on port {owner}");
        }
        let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
        for id in &ids {
            wait_status(&q, id, JobStatus::Succeeded).await;
        }
        pool.shutdown().await.unwrap();
        let mut seqs: Vec<u64> = jobs_core::testing::probe(&queue).starts().iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..300).collect::<Vec<_>>(), "each job ran once");
    });
}

/// A script's `PUBLISH` on one master reaches a waiter subscribed on another
/// (the cluster bus forwards it).
#[test]
fn a_waiter_hears_wake_ups_from_every_master() {
    run(async {
        let c = shared_cluster();
        let q = RedisQueue::connect(&c.url()).await.unwrap();
        let first = c.ports()[0];
        let ranges = slot_ranges(c);
        // The waiter subscribes on the first node given; queues on the others.
        for port in c.ports().into_iter().filter(|&p| p != first) {
            let queue = queue_where("wake", |s| owner_in(&ranges, s) == port);
            let mut waiter = q.waiter(std::slice::from_ref(&queue)).unwrap();
            // The wake-up it gives itself once subscribed.
            waiter.arm();
            tokio::time::timeout(Duration::from_secs(5), waiter.wait(Duration::from_secs(60))).await.unwrap().unwrap();
            waiter.arm();
            let started = Instant::now();
            q.enqueue_many(vec![probe(&queue, 0, Act::Succeed)]).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), waiter.wait(Duration::from_secs(60)))
                .await
                .expect("the wake-up crosses the cluster bus")
                .unwrap();
            eprintln!("wake-up from the master on port {port} to a subscriber on {first}: {:?}", started.elapsed());
        }
    });
}

/// A waiter of a queue on each master parks there (its `BLPOP` goes to the
/// queue's master through the Cluster connection), and an enqueue leases
/// its job to it in the enqueue's own script.
#[test]
fn a_parked_waiter_is_handed_jobs_on_every_master() {
    run(async {
        let c = shared_cluster();
        let prefix = unique_queue("hop");
        let q = RedisQueue::from_config(&RedisConfig { prefix: prefix.clone(), ..RedisConfig::new(c.url()) })
            .await
            .unwrap();
        let ranges = slot_ranges(c);
        for port in c.ports() {
            let queue = queue_where("hop", |s| owner_in(&ranges, s) == port);
            let mut w = q.waiter(std::slice::from_ref(&queue)).unwrap();
            // The first wait returns once subscribed.
            w.wait(Duration::from_secs(10)).await.unwrap();
            let req = jobs_core::testing::cases::fetch_of(&queue, 4);
            let task = tokio::spawn(async move { w.wait_fetch(&req, Duration::from_secs(20)).await.unwrap() });
            let node = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let conn = node.get_multiplexed_async_connection().await.unwrap();
            let parked = format!("{prefix}:{{{queue}}}:parked");
            eventually("the waiter parks on the queue's master", || {
                let (mut conn, parked) = (conn.clone(), parked.clone());
                async move { redis::cmd("ZCARD").arg(&parked).query_async::<u64>(&mut conn).await.unwrap() == 1 }
            })
            .await;
            let id = q.enqueue_many(vec![probe(&queue, 0, Act::Succeed)]).await.unwrap().remove(0);
            assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Running, "master on {port}");
            let got = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
            assert_eq!(got.jobs.into_iter().map(|j| j.id).collect::<Vec<_>>(), vec![id], "master on {port}");
        }
    });
}

/// Moves `slot` from its owner to the master on `to` by hand, `batch` keys
/// per `MIGRATE`, `pause` between batches (as `redis-cli --cluster
/// reshard` does, slower). Returns how many keys moved.
fn migrate_by_hand(c: &RedisCluster, slot: u16, to: u16, batch: usize, pause: Duration) -> usize {
    let from = c.owner_of(slot);
    assert_ne!(from, to);
    let (from_id, to_id) = (c.node_id(from), c.node_id(to));
    let s = slot.to_string();
    let ok = |out: String| assert!(out.trim() == "OK", "{out}");
    ok(c.cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]));
    ok(c.cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]));
    let mut moved = 0;
    loop {
        let keys = c.cli(from, &["CLUSTER", "GETKEYSINSLOT", &s, &batch.to_string()]);
        let keys: Vec<&str> = keys.lines().map(str::trim).filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            break;
        }
        let port = to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        ok(c.cli(from, &args));
        moved += keys.len();
        std::thread::sleep(pause);
    }
    for port in [to, from].into_iter().chain(c.ports().into_iter().filter(|&p| p != to && p != from)) {
        ok(c.cli(port, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]));
    }
    moved
}

/// While a producer enqueues and a pool works on one queue, its slot moves
/// to another master (`redis-cli --cluster reshard`), and back by hand with
/// small batches and pauses: every acknowledged job runs exactly once, none
/// is lost or left leased, and no key of the queue stays behind.
#[test]
fn moving_a_queue_slot_while_jobs_flow_loses_nothing() {
    run(async {
        let c = shared_cluster();
        let ranges = slot_ranges(c);
        // The queue's slot is the first of its master's range, so `reshard
        // --cluster-slots 1` from that master moves exactly this slot.
        let firsts: HashSet<u16> = ranges.iter().map(|r| r.0).collect();
        let queue = queue_where("reshard", |s| firsts.contains(&s));
        let slot = key_slot(queue.as_bytes());
        let home = c.owner_of(slot);
        let away = c.ports().into_iter().find(|&p| p != home).unwrap();
        let q = RedisQueue::connect(&c.url()).await.unwrap();
        let acked: Arc<Mutex<Vec<JobId>>> = Arc::default();
        let errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, queue, acked, errors, stop) =
                (q.clone(), queue.clone(), acked.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<_> = (0..3).map(|i| probe(&queue, seq + i, Act::SleepMs(2))).collect();
                    match q.enqueue_many(batch).await {
                        Ok(ids) => {
                            seq += 3;
                            acked.lock().unwrap().extend(ids);
                        }
                        Err(e) => {
                            eprintln!("enqueue failed during the migration: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        // Operators' reads (pipelines, single commands) keep working too.
        let reader = {
            let (q, queue, acked, stop) = (q.clone(), queue.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    q.stats().await.expect("stats() during a migration");
                    let last = acked.lock().unwrap().last().cloned();
                    if let Some(id) = last {
                        q.job(&id).await.expect("job() during a migration").expect("an acknowledged job exists");
                    }
                    q.list_jobs(&queue, JobStatus::Succeeded, 0, 20).await.expect("list_jobs() during a migration");
                    reads += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                reads
            })
        };
        let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
        let count = || acked.lock().unwrap().len();
        eventually("jobs flow before the move", || async { count() >= 150 }).await;

        let started = Instant::now();
        let out = tokio::task::block_in_place(|| {
            c.cli(
                home,
                &[
                    "--cluster",
                    "reshard",
                    &format!("127.0.0.1:{home}"),
                    "--cluster-from",
                    &c.node_id(home),
                    "--cluster-to",
                    &c.node_id(away),
                    "--cluster-slots",
                    "1",
                    "--cluster-yes",
                ],
            )
        });
        assert_eq!(c.owner_of(slot), away, "reshard moved the slot:\n{out}");
        tokio::task::block_in_place(|| c.wait_until_ok());
        eprintln!("reshard moved slot {slot} from :{home} to :{away} in {:?}", started.elapsed());

        let before = count();
        eventually("jobs flow on the new master", || async { count() >= before + 150 }).await;
        let started = Instant::now();
        // One key per MIGRATE, 50 ms apart: the slot stays half moved for a
        // while, and scripts on it must wait rather than see half a queue.
        let moved = tokio::task::block_in_place(|| migrate_by_hand(c, slot, home, 1, Duration::from_millis(50)));
        tokio::task::block_in_place(|| c.wait_until_ok());
        eprintln!("by hand: {moved} keys moved back to :{home} in {:?}", started.elapsed());
        assert!(moved >= 3, "the queue's keys moved: {moved}");
        let before = count();
        eventually("jobs flow after moving back", || async { count() >= before + 150 }).await;

        stop.store(true, Ordering::Relaxed);
        producer.await.unwrap();
        let reads = reader.await.unwrap();
        let acked = acked.lock().unwrap().clone();
        for id in &acked {
            wait_status(&q, id, JobStatus::Succeeded).await;
        }
        pool.shutdown().await.unwrap();
        let p = jobs_core::testing::probe(&queue);
        let runs: Vec<u64> = p.starts().iter().map(|s| s.seq).collect();
        let distinct: BTreeSet<u64> = runs.iter().copied().collect();
        let stats = q.stats().await.unwrap().queue(&queue);
        eprintln!(
            "slot moved twice while {} jobs flowed and {reads} rounds of reads ran: {} enqueue calls failed, {} runs, {} distinct, stats {stats:?}",
            acked.len(),
            errors.load(Ordering::Relaxed),
            runs.len(),
            distinct.len()
        );
        assert_eq!(distinct.len(), acked.len(), "every acknowledged job ran");
        assert_eq!(runs.len(), acked.len(), "none ran twice");
        assert_eq!((stats.pending, stats.running, stats.scheduled), (0, 0, 0));
        assert_eq!(stats.processed, acked.len() as u64);
        let left = c.cli(away, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
        assert_eq!(left.trim(), "0", "no key left behind on the old owner");
    });
}

/// A worker process on the cluster (lease 1 s) writing to the run log
/// `log`, SIGKILLed when dropped.
fn worker(url: &str, queue: &str, log: &std::path::Path) -> WorkerProcess {
    let exe = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
    WorkerProcess::spawn_with_run_log(exe, url, queue, Duration::from_secs(1), log)
}

/// Worker processes on the cluster are SIGKILLed in turn while busy; a last
/// one finishes, on a queue held by the second master. From the run log:
/// every job ran to completion, with the result of its last run; a job ran
/// again only after a run in a killed process; no run was left unfinished
/// by a live process. From Redis: only jobs leased at the kills were
/// attempted again, each after its lease expired. Before each kill a long
/// job is seen running in the worker, so each kill cuts a handler short.
#[test]
fn killed_workers_lose_no_job_on_a_cluster() {
    run(async {
        const N: u64 = 150;
        let c = shared_cluster();
        let url = c.url();
        let q = RedisQueue::connect(&url).await.unwrap();
        let ranges = slot_ranges(c);
        let queue = queue_where("kill9", |s| owner_in(&ranges, s) == c.ports()[1]);
        let log = runlog::temp_path("cluster-kill9");
        let crash_job = |i| CrashJob { seq: i, sleep_ms: 20 }.into_new_job(JobOptions::new().queue(&queue)).unwrap();
        let mut ids = q.enqueue_many((0..N).map(crash_job).collect()).await.unwrap();
        let mut in_flight = BTreeSet::new();
        let note = async |ids: &[JobId]| {
            for id in ids {
                if q.job(id).await.unwrap().unwrap().status == JobStatus::Running {
                    in_flight.insert(id.clone());
                }
            }
        };
        let killed = kill_in_turn(&q, &queue, &log, (2, 40, N), &mut ids, || worker(&url, &queue, &log), note).await;
        let last = worker(&url, &queue, &log);
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
            "cluster kill -9 x2: {N} jobs, {} leased at the kills, {} attempted again, {runs:?}",
            in_flight.len(),
            again.len()
        );
        drop(last);
        assert!(runs.interrupted > 0, "a kill cut a running handler short");
        // A job leased at a kill has another attempt only when its start had
        // been recorded (a lease lost before that is a crash, not an
        // attempt): so the attempted again are among the leased.
        assert!(again.is_subset(&in_flight), "only jobs leased at the kills were attempted again");
        assert!(ran_again.is_subset(&in_flight), "a job that ran again was leased at a kill");
        let _ = std::fs::remove_file(&log);
    });
}

/// A size from the environment (`scripts/workflow-chaos` sets the large
/// ones), else `default`.
fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A worker process on `queues` (comma-separated) with a 1 s lease and a
/// fixed 50 ms retry delay, writing to the run log `log`.
fn flow_worker(url: &str, queues: &str, log: &std::path::Path) -> WorkerProcess {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jobs-redis-test-worker"));
    cmd.args([url, queues, "1000", "50"]).env("JOBS_REDIS_TEST_RUN_LOG", log);
    WorkerProcess::spawn_command(cmd)
}

/// A handle on the shared cluster, its URL, and a fresh queue named after
/// `tag` on each of its three masters.
async fn a_queue_per_master(tag: &str) -> (RedisQueue, String, Vec<String>) {
    let c = shared_cluster();
    let url = c.url();
    let q = RedisQueue::connect(&url).await.unwrap();
    let ranges = slot_ranges(c);
    let queues = c.ports().iter().map(|&p| queue_where(tag, |s| owner_in(&ranges, s) == p)).collect();
    (q, url, queues)
}

/// A workflow over three queues, one on each master, run by worker
/// processes SIGKILLed while they work: from the steps' own run log, every
/// run of a step started after an ended run of each step it depends on;
/// each step's job was enqueued once; the workflow ends succeeded. Sizes:
/// `JOBS_FLOW_CHAIN` (20), `JOBS_FLOW_WIDE` (60), `JOBS_FLOW_DIAMONDS`
/// (20), `JOBS_FLOW_WORKERS` (2) and `JOBS_FLOW_KILLS` (3).
#[test]
fn workflow_steps_hold_under_kill9_on_a_cluster() {
    run(async {
        let (q, url, queues) = a_queue_per_master("wfk").await;
        let log = runlog::temp_path("cluster-workflow");
        let mut seq = 0u64;
        let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut flow = Workflow::new(unique_queue("kill9"));
        let mut add = |flow: Workflow, name: String, after: Vec<String>| {
            seq += 1;
            let queue = &queues[seq as usize % queues.len()];
            let job = CrashJob { seq, sleep_ms: 10 + seq % 30 };
            deps.insert(name.clone(), after.clone());
            flow.add_step(Step::with_options(name, job, JobOptions::new().queue(queue)).after(after))
        };
        let (chain, wide, diamonds) =
            (size("JOBS_FLOW_CHAIN", 20), size("JOBS_FLOW_WIDE", 60), size("JOBS_FLOW_DIAMONDS", 20));
        // A chain.
        for i in 0..chain {
            let after = if i == 0 { vec![] } else { vec![format!("chain{}", i - 1)] };
            flow = add(flow, format!("chain{i}"), after);
        }
        // A fan-out and its fan-in.
        flow = add(flow, "fan".into(), vec![]);
        for i in 0..wide {
            flow = add(flow, format!("wide{i}"), vec!["fan".into()]);
        }
        flow = add(flow, "join".into(), (0..wide).map(|i| format!("wide{i}")).collect());
        // Diamonds, each after the one before.
        for d in 0..diamonds {
            let after = if d == 0 { vec![] } else { vec![format!("d{}end", d - 1)] };
            flow = add(flow, format!("d{d}top"), after);
            flow = add(flow, format!("d{d}left"), vec![format!("d{d}top")]);
            flow = add(flow, format!("d{d}right"), vec![format!("d{d}top")]);
            flow = add(flow, format!("d{d}end"), vec![format!("d{d}left"), format!("d{d}right")]);
        }
        let steps = deps.len() as u64;
        let run = flow.enqueue(&q).await.unwrap();

        let all = queues.join(",");
        let spawn = || flow_worker(&url, &all, &log);
        let mut workers: Vec<WorkerProcess> = (0..size("JOBS_FLOW_WORKERS", 2)).map(|_| spawn()).collect();
        let kills = size("JOBS_FLOW_KILLS", 3) as u64;
        let mut killed = 0;
        for round in 1..=kills {
            eventually("the workflow made progress", || async {
                run.status().await.unwrap().ended >= round * steps / (kills + 2)
            })
            .await;
            // SIGKILL (on drop) one worker while it runs steps; start another.
            workers.remove(0);
            killed += 1;
            workers.push(spawn());
        }
        let done = run.wait(Duration::from_secs(600)).await.unwrap();
        drop(workers);
        let info = run.info().await.unwrap();
        assert_eq!(done.status, FlowStatus::Succeeded, "{info:#?}");
        assert_eq!((done.total, done.succeeded), (steps, steps));

        // From the run log: every start of a step came after an ended run
        // of each step it depends on.
        let read = RunLog::read(&log);
        assert!(read.bad_lines.is_empty(), "{:?}", read.bad_lines);
        let job_of: BTreeMap<&str, &JobId> = info.members.iter().map(|m| (m.name.as_str(), &m.job)).collect();
        let mut reruns = 0;
        for (name, after) in &deps {
            let runs = read.of(job_of[name.as_str()]);
            assert!(!runs.is_empty(), "step {name} ran");
            reruns += runs.len() - 1;
            for r in runs {
                for d in after {
                    let first_end = read.of(job_of[d.as_str()]).iter().filter_map(|x| x.end_ms).min();
                    let end = first_end.unwrap_or_else(|| panic!("{d} has an ended run before {name} started"));
                    assert!(end <= r.start_ms, "{name} started at {} before {d} ended at {end}", r.start_ms);
                }
            }
        }
        // Each step's job enqueued once: one succeeded job per step, each
        // the step's own.
        let mut stored = BTreeSet::new();
        for queue in &queues {
            for j in q.list_jobs(queue, JobStatus::Succeeded, 0, 10_000).await.unwrap() {
                assert!(stored.insert(j.id.clone()), "listed once");
            }
        }
        let expected: BTreeSet<_> = info.members.iter().map(|m| m.job.clone()).collect();
        assert_eq!(stored, expected, "one job per step");
        eprintln!("cluster workflow kill -9 x{killed}: {steps} steps on 3 masters, {reruns} runs again");
        let _ = std::fs::remove_file(&log);
        // The queues ended empty.
        for queue in &queues {
            assert!(q.list_jobs(queue, JobStatus::Pending, 0, 10).await.unwrap().is_empty());
        }
        let _ = q.now().await.unwrap();
    });
}

/// Batches over three queues on three masters, some with a job that dies,
/// run by worker processes SIGKILLed while they work: each batch ends, as
/// succeeded exactly when every job of it succeeded; its `on_complete` job
/// is enqueued once, and its `on_success` job once when it succeeded and
/// never otherwise (one stored job each: their caller ids), and each ran.
/// Sizes: `JOBS_FLOW_BATCHES` (40) batches of `JOBS_FLOW_BATCH_SIZE` (20),
/// `JOBS_FLOW_WORKERS` (2), `JOBS_FLOW_KILLS` (3).
#[test]
fn batch_callbacks_fire_once_under_kill9_on_a_cluster() {
    use jobs_redis::testing::deadlog::FailingJob;
    run(async {
        let (q, url, queues) = a_queue_per_master("bk9").await;
        let log = runlog::temp_path("cluster-batches");
        let (n, m) = (size("JOBS_FLOW_BATCHES", 40), size("JOBS_FLOW_BATCH_SIZE", 20));
        let mut seq = 1_000_000u64;
        let mut batches = Vec::new();
        for b in 0..n {
            let queue = &queues[b % queues.len()];
            let on = || JobOptions::new().queue(queue);
            seq += 2;
            let batch = Batch::with_id(unique_queue("b"))
                .on_success_with(CrashJob { seq, sleep_ms: 5 }, on())
                .on_complete_with(CrashJob { seq: seq + 1, sleep_ms: 5 }, on());
            // One batch in four has a job that dies (after its one retry).
            let fails = b % 4 == 3;
            let jobs: Vec<CrashJob> =
                (0..m as u64).map(|i| CrashJob { seq: (b as u64) * 10_000 + i, sleep_ms: 5 + i % 20 }).collect();
            batch.add_with(&q, jobs, on(), false).await.unwrap();
            if fails {
                batch.add_with(&q, [FailingJob { seq: b as u64, sleep_ms: 5 }], on(), false).await.unwrap();
            }
            batch.close(&q).await.unwrap();
            batches.push((batch, fails));
        }
        let all = queues.join(",");
        let spawn = || flow_worker(&url, &all, &log);
        let mut workers: Vec<WorkerProcess> = (0..size("JOBS_FLOW_WORKERS", 2)).map(|_| spawn()).collect();
        let kills = size("JOBS_FLOW_KILLS", 3) as u64;
        let total = (n * m) as u64;
        for round in 1..=kills {
            eventually("the batches made progress", || async {
                let mut ended = 0;
                for (b, _) in &batches {
                    ended += FlowRun::open(&q, b.id()).await.unwrap().status().await.unwrap().ended;
                }
                ended >= round * total / (kills + 2)
            })
            .await;
            workers.remove(0);
            workers.push(spawn());
        }
        let mut callbacks = Vec::new();
        for (b, fails) in &batches {
            let run = FlowRun::open(&q, b.id()).await.unwrap();
            let done = run.wait(Duration::from_secs(600)).await.unwrap();
            let expected = if *fails { FlowStatus::Failed } else { FlowStatus::Succeeded };
            assert_eq!(done.status, expected, "batch {}", b.id());
            let info = run.info().await.unwrap();
            for cb in &info.callbacks {
                // A fired callback is handed out when the batch ends, and
                // reported once its job is enqueued.
                let fires = cb.name == "@on_complete" || !fails;
                let handed_out = matches!(cb.status, MemberStatus::Releasing | MemberStatus::Released);
                assert_eq!(handed_out, fires, "{} of batch {}: {:?}", cb.name, b.id(), cb.status);
                if !fires {
                    assert_eq!(cb.status, MemberStatus::Cancelled, "{} of batch {}", cb.name, b.id());
                }
                if fires {
                    callbacks.push(cb.job.clone());
                }
            }
        }
        // Every callback job ran; each was stored once (its caller id): the
        // queues hold exactly the batches' jobs that succeeded and the
        // callbacks.
        eventually("every callback job succeeded", || async {
            for id in &callbacks {
                if q.job(id).await.unwrap().map(|j| j.status) != Some(JobStatus::Succeeded) {
                    return false;
                }
            }
            true
        })
        .await;
        drop(workers);
        let mut succeeded = 0;
        for queue in &queues {
            succeeded += q.list_jobs(queue, JobStatus::Succeeded, 0, 1_000_000).await.unwrap().len();
        }
        assert_eq!(succeeded, n * m + callbacks.len(), "each job and callback stored once");
        let read = RunLog::read(&log);
        for id in &callbacks {
            assert!(!read.of(id).is_empty(), "callback {id} ran");
        }
        eprintln!(
            "cluster batches kill -9 x{kills}: {n} batches of {m} ({} with a dead job), {} callbacks",
            batches.iter().filter(|b| b.1).count(),
            callbacks.len()
        );
        let _ = std::fs::remove_file(&log);
    });
}
