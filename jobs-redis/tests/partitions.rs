//! Partitioned queues, against a `redis-server` this test binary starts
//! itself and shares between the cases (the conformance suite runs on
//! partitioned queues too: `conformance.rs`, `cluster.rs`):
//!
//! - a queue's jobs spread evenly over its partitions, each id names its
//!   partition, a pool runs each job once;
//! - a group's jobs keep to one partition, jobs checked against the stored
//!   ones (caller ids, `unique_for`) to partition 0;
//! - counts only grow and reach every handle; bad counts are refused;
//! - queue-wide bounds are refused on a partitioned queue;
//! - a pool started before its queue grew is woken by the new partitions,
//!   and a reader of its events follows them into the new partitions;
//! - worker processes killed with SIGKILL lose no job of a partitioned queue.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jobs_core::testing::jobs::{Act, GroupedJob, ProbeJob};
use jobs_core::testing::{eventually, probe, run, test_pool, unique_queue};
use jobs_core::{
    Error, EventFilter, EventKind, EventStream, JobExt, JobId, JobOptions, JobQueue, QueueAdmin, QueueInspect,
    QueuePolicy,
};
use jobs_redis::keys::QueueKeys;
use jobs_redis::testing::runlog;
use jobs_redis::testing::{check_kill_runs, kill_in_turn, shared_server_url, CrashJob, WorkerProcess};
use jobs_redis::{RedisConfig, RedisQueue};

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");

async fn connect() -> RedisQueue {
    RedisQueue::connect(&shared_server_url()).await.unwrap()
}

/// How many job records partition `p` of `queue` stores (default prefix).
async fn stored(queue: &str, p: u16) -> u64 {
    let mut conn = redis::Client::open(shared_server_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HLEN").arg(QueueKeys::of_partition("jobs", queue, p).jobs()).query_async(&mut conn).await.unwrap()
}

async fn put(q: &RedisQueue, queue: &str, seq: u64, opts: JobOptions) -> JobId {
    ProbeJob { key: queue.to_owned(), seq, act: Act::Succeed }.enqueue_with(q, opts.queue(queue)).await.unwrap()
}

#[test]
fn jobs_spread_over_every_partition_and_each_runs_once() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("spread");
        assert_eq!(q.set_partitions(&queue, 3).await.unwrap(), 3);
        let mut ids = Vec::new();
        for seq in 0..300 {
            ids.push(put(&q, &queue, seq, JobOptions::new()).await);
        }
        let mut per: BTreeMap<u16, u64> = BTreeMap::new();
        for id in &ids {
            *per.entry(id.partition()).or_default() += 1;
        }
        assert_eq!(per, [(0, 100), (1, 100), (2, 100)].into(), "one enqueue to each partition in turn");
        for p in 0..3 {
            assert_eq!(stored(&queue, p).await, 100, "partition {p} stores the jobs its ids name");
        }
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.queues[&queue].partitions, 3);
        assert_eq!(stats.queue(&queue).pending, 300, "the counts of every partition");

        let far = ids.iter().find(|id| id.partition() == 2).unwrap();
        let text = far.to_string();
        assert!(text.starts_with(&format!("{queue}~2:")), "{text}");
        let info = q.job(&text.parse().unwrap()).await.unwrap().expect("found by its id's text alone");
        assert_eq!(info.queue, queue, "a job's queue is the queue, not the partition");

        let pool = test_pool(connect().await, &[&queue]).start().unwrap();
        eventually("every job ran", || async { q.stats().await.unwrap().queue(&queue).processed == 300 }).await;
        pool.shutdown().await.unwrap();
        let mut seqs: Vec<u64> = probe(&queue).starts().iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..300).collect::<Vec<_>>(), "each job ran once");
    });
}

/// Reads that span the partitions merge them in the order of one queue:
/// the dead jobs newest first, the pending ones in enqueue order (ids one
/// process made sort in the order it made them).
#[test]
fn reads_over_the_partitions_keep_the_queues_order() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("merged");
        q.set_partitions(&queue, 3).await.unwrap();
        let mut pending = Vec::new();
        for seq in 0..9 {
            pending.push(put(&q, &queue, seq, JobOptions::new()).await);
        }
        let listed: Vec<JobId> =
            q.list_jobs(&queue, jobs_core::JobStatus::Pending, 2, 5).await.unwrap().into_iter().map(|j| j.id).collect();
        assert_eq!(listed, pending[2..7], "a page of the queue, in enqueue order, across the partitions");

        // One job at a time, each dead before the next is enqueued: they die
        // in order, in partitions 0, 1, 2, 0, ...
        let dead = unique_queue("merged-dead");
        q.set_partitions(&dead, 3).await.unwrap();
        let pool = test_pool(connect().await, &[&dead]).start().unwrap();
        for seq in 0..9 {
            let job = ProbeJob { key: dead.clone(), seq, act: Act::Permanent };
            job.enqueue_with(&q, JobOptions::new().queue(&dead)).await.unwrap();
            eventually("the job died", || async { q.stats().await.unwrap().queue(&dead).dead == seq + 1 }).await;
        }
        pool.shutdown().await.unwrap();
        let died = q.dead_jobs(&dead, 10).await.unwrap();
        let listed: Vec<u64> = died.iter().map(|j| j.payload["seq"].as_u64().unwrap()).collect();
        assert_eq!(listed, (0..9).rev().collect::<Vec<_>>(), "the last to die first, across the partitions");
        let page: Vec<u64> =
            q.dead_jobs(&dead, 4).await.unwrap().iter().map(|j| j.payload["seq"].as_u64().unwrap()).collect();
        assert_eq!(page, [8, 7, 6, 5], "the newest of all partitions");
    });
}

/// A handle that enqueues and fetches in turn still places its batches in
/// every partition in turn.
#[test]
fn a_handle_that_also_fetches_spreads_its_batches() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("turns");
        q.set_partitions(&queue, 2).await.unwrap();
        let mut placed = Vec::new();
        for seq in 0..6 {
            placed.push(put(&q, &queue, seq, JobOptions::new()).await.partition());
            q.fetch(&jobs_core::testing::cases::fetch_of(&queue, 1)).await.unwrap();
        }
        assert_eq!(placed, [0, 1, 0, 1, 0, 1]);
    });
}

#[test]
fn a_group_keeps_to_one_partition_and_checked_jobs_to_the_first() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("placed");
        q.set_partitions(&queue, 4).await.unwrap();
        let mut groups: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for seq in 0..80u64 {
            let group = format!("acct-{}", seq % 8);
            let id = GroupedJob { key: queue.clone(), group: group.clone(), seq, sleep_ms: 0 }
                .enqueue_with(&q, JobOptions::new().queue(&queue))
                .await
                .unwrap();
            groups.entry(group).or_default().insert(id.partition());
        }
        assert!(groups.values().all(|parts| parts.len() == 1), "a group in one partition: {groups:?}");
        let used: BTreeSet<u16> = groups.values().flatten().copied().collect();
        assert!(used.len() > 1, "8 groups over 4 partitions use several: {used:?}");

        let first = put(&q, &queue, 100, JobOptions::new().id("order-7")).await;
        let again = put(&q, &queue, 101, JobOptions::new().id("order-7")).await;
        assert_eq!((first.partition(), &again), (0, &first), "a caller id is checked in partition 0");
        let unique = || JobOptions::new().unique_for(Duration::from_secs(60));
        let one = put(&q, &queue, 102, unique()).await;
        let two = put(&q, &queue, 102, unique()).await;
        assert_eq!((one.partition(), &two), (0, &one), "unique_for is checked in partition 0");
    });
}

#[test]
fn counts_only_grow_and_reach_every_handle() {
    run(async {
        let (a, b) = (connect().await, connect().await);
        let queue = unique_queue("grow");
        assert_eq!(b.partitions(&queue).await.unwrap(), 1, "not partitioned until set");
        // `b` read the counts before the raise: it keeps placing jobs in
        // partition 0 until it reads them again.
        put(&b, &queue, 0, JobOptions::new()).await;
        assert_eq!(a.set_partitions(&queue, 3).await.unwrap(), 3);
        assert_eq!(a.set_partitions(&queue, 2).await.unwrap(), 3, "never lowered");
        let mut seq = 1;
        eventually("the other handle places jobs in the new partitions", || {
            seq += 1;
            let (b, queue) = (&b, &queue);
            async move { put(b, queue, seq, JobOptions::new()).await.partition() > 0 }
        })
        .await;
        assert_eq!(b.partitions(&queue).await.unwrap(), 3);

        for bad in [0, jobs_redis::MAX_PARTITIONS + 1] {
            assert!(matches!(a.set_partitions(&queue, bad).await, Err(Error::InvalidArgument(_))), "{bad} refused");
        }
        assert!(matches!(a.set_partitions("no spaces", 2).await, Err(Error::InvalidQueueName(_))));
        let bad = RedisConfig {
            partitions: [(queue.clone(), 0)].into(),
            prefix: unique_queue("p"),
            ..RedisConfig::new(shared_server_url())
        };
        assert!(matches!(RedisQueue::from_config(&bad).await, Err(Error::InvalidArgument(_))), "0 partitions");

        // "*": every queue of a prefix, at least; a queue's own higher count stays.
        let prefix = unique_queue("every");
        let config = RedisConfig {
            partitions: [("*".to_owned(), 2), ("wide".to_owned(), 5)].into(),
            prefix,
            ..RedisConfig::new(shared_server_url())
        };
        let c = RedisQueue::from_config(&config).await.unwrap();
        assert_eq!((c.partitions("any").await.unwrap(), c.partitions("wide").await.unwrap()), (2, 5));
    });
}

#[test]
fn queue_wide_bounds_are_refused_on_a_partitioned_queue() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("bounds");
        q.set_partitions(&queue, 2).await.unwrap();
        let refused = q.set_policy(&queue, QueuePolicy { max_running: Some(5), ..Default::default() }).await;
        match refused {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("max_running"), "{why}"),
            other => panic!("a queue-wide bound on two partitions: {other:?}"),
        }
        let groups = QueuePolicy { group_concurrency: Some(2), ..Default::default() };
        q.set_policy(&queue, groups.clone()).await.unwrap();
        assert_eq!(q.policy(&queue).await.unwrap(), groups, "a group bound holds in each group's partition");

        let bounded = unique_queue("bounded");
        q.set_policy(&bounded, QueuePolicy { rate: Some("10/1s".parse().unwrap()), ..Default::default() })
            .await
            .unwrap();
        assert!(matches!(q.set_partitions(&bounded, 2).await, Err(Error::InvalidArgument(_))));
        assert_eq!(q.partitions(&bounded).await.unwrap(), 1, "nothing changed");
    });
}

/// A pool waiting on a queue that is not partitioned yet takes the jobs of
/// partitions added later at once: every partition wakes the queue's one
/// channel, and a partition the pool does not know makes it read the counts
/// again. Unwoken, it would look again only when its parked wait ends (5 s,
/// the command timeout's half) or at its idle cap (15 s with this lease),
/// past this test's deadline of 3 s. `also`: another queue the pool serves
/// (a pool of several queues listens rather than parks).
async fn grown_while_waiting(also: Option<&str>) {
    let queue = unique_queue("woken");
    let queues: Vec<&str> = [queue.as_str()].into_iter().chain(also).collect();
    let pool = test_pool(connect().await, &queues).lease(Duration::from_secs(120)).start().unwrap();
    let q = connect().await;
    let first = put(&q, &queue, 0, JobOptions::new()).await;
    eventually("the pool runs a job", || async { probe(&queue).start_count() == 1 }).await;
    assert_eq!(first.partition(), 0);
    q.set_partitions(&queue, 3).await.unwrap();
    // One job at a time, each in the next partition: each is announced by
    // its own wake-up alone.
    let producer = connect().await;
    for seq in 1..=3 {
        let id = put(&producer, &queue, seq, JobOptions::new()).await;
        assert_eq!(id.partition(), (seq - 1) as u16, "a new handle places in turn from partition 0");
        let deadline = Instant::now() + Duration::from_secs(3);
        while probe(&queue).start_count() < seq as usize + 1 {
            assert!(Instant::now() < deadline, "the job of partition {} waited", id.partition());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    pool.shutdown().await.unwrap();
}

#[test]
fn a_parked_pool_is_woken_by_its_queues_new_partitions() {
    run(grown_while_waiting(None));
}

#[test]
fn a_listening_pool_is_woken_by_its_queues_new_partitions() {
    run(async { grown_while_waiting(Some(&unique_queue("other"))).await });
}

/// A reader following a queue's events from before it grew gets the events
/// of the new partitions' jobs at once: they were recorded (the raise
/// turned recording on there first), and every partition wakes the queue's
/// one events channel. Unwoken, the reader would look again only when it
/// renews its listening (15 s), past this test's deadline of 3 s.
#[test]
fn events_are_followed_into_new_partitions() {
    run(async {
        let q = connect().await;
        let queue = unique_queue("evgrow");
        let mut stream = EventStream::open(&q, EventFilter::queue(&queue)).await.unwrap();
        connect().await.set_partitions(&queue, 3).await.unwrap();
        let producer = connect().await;
        for seq in 0..3u16 {
            let id = put(&producer, &queue, u64::from(seq), JobOptions::new()).await;
            assert_eq!(id.partition(), seq);
            let e = tokio::time::timeout(Duration::from_secs(3), stream.next())
                .await
                .unwrap_or_else(|_| panic!("no event of partition {seq} within 3 s"))
                .unwrap()
                .unwrap();
            assert_eq!((e.kind, &e.job), (EventKind::Enqueued, &id));
        }
    });
}

/// Worker processes SIGKILLed in turn while busy on a queue of three
/// partitions: from the run log and Redis, as `crash.rs` checks an
/// unpartitioned queue, every job ran to completion and ran again only after
/// a kill.
#[test]
fn killed_workers_lose_no_job_of_a_partitioned_queue() {
    run(async {
        const N: u64 = 300;
        const KILLS: u64 = 2;
        let url = shared_server_url();
        let q = connect().await;
        let queue = unique_queue("pkill9");
        q.set_partitions(&queue, 3).await.unwrap();
        let log = runlog::temp_path("pkill9");
        let lease = Duration::from_millis(1000);
        let crash_job = |seq| CrashJob { seq, sleep_ms: 20 }.into_new_job(JobOptions::new().queue(&queue)).unwrap();
        let mut ids = Vec::new();
        // One batch per partition (a batch goes to one partition).
        for part in 0..3 {
            ids.extend(q.enqueue_many((part * N / 3..(part + 1) * N / 3).map(crash_job).collect()).await.unwrap());
        }
        let spread: BTreeSet<u16> = ids.iter().map(JobId::partition).collect();
        assert_eq!(spread.len(), 3, "the jobs are in every partition");
        let start = || WorkerProcess::spawn_with_run_log(WORKER_EXE, &url, &queue, lease, &log);
        let killed = kill_in_turn(&q, &queue, &log, (KILLS, 50, N), &mut ids, start, async |_: &[JobId]| {}).await;
        let last = WorkerProcess::spawn_with_run_log(WORKER_EXE, &url, &queue, lease, &log);
        let total = ids.len() as u64;
        eventually("every job succeeded", || async { q.stats().await.unwrap().queue(&queue).processed == total }).await;
        let runs = check_kill_runs(&q, &log, &ids, &killed).await;
        drop(last);
        assert!(runs.interrupted > 0, "a kill cut a running handler short: {runs:?}");
        let _ = std::fs::remove_file(&log);
    });
}
