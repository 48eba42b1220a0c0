//! A circuit breaker across real processes: three worker processes call a
//! loopback service that goes down; the breaker keeps the calls made while
//! it is down bounded (one probe per cool-down, not every worker's retries),
//! also when a process holding a probe is killed, and every job succeeds
//! once the service is back.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use jobs_core::{BreakerState, JobExt, JobId, JobOptions, JobStatus, QueueAdmin, QueueInspect, QueuePolicy};
use jobs_redis::testing::service::{CallJob, Service};
use jobs_redis::testing::{RedisServer, WorkerProcess};
use jobs_redis::RedisQueue;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_jobs-redis-test-worker");
const PROCESSES: usize = 3;
const WORKERS: usize = 4;
const JOBS: usize = 30;

fn worker(url: &str, queue: &str) -> WorkerProcess {
    let mut cmd = Command::new(WORKER_EXE);
    // A lease of 1 s (a killed probe is replaced that fast), retries 20 ms
    // apart: without a breaker every worker would call about 50 times a
    // second.
    cmd.args([url, queue, "1000", "20"]).env("JOBS_REDIS_TEST_WORKERS", WORKERS.to_string());
    WorkerProcess::spawn_command(cmd)
}

/// Waits until every job of `ids` succeeded, a minute at most (`when` says
/// what the failure message reports).
async fn all_succeed(q: &RedisQueue, ids: &[JobId], when: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        loop {
            let status = q.job(id).await.unwrap().map(|j| j.status);
            if status == Some(JobStatus::Succeeded) {
                break;
            }
            assert!(Instant::now() < deadline, "job {id} is {status:?} {when}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_bounds_the_calls_to_a_service_that_is_down() {
    let server = RedisServer::start();
    let url = server.url();
    let queue = jobs_core::testing::unique_queue("breaker");
    let q = RedisQueue::connect(&url).await.unwrap();
    let cooldown = Duration::from_millis(250);
    let breaker = format!("3/10s:{}ms", cooldown.as_millis()).parse().unwrap();
    q.set_policy(&queue, QueuePolicy { breaker: Some(breaker), ..Default::default() }).await.unwrap();
    let service = Service::start().unwrap();
    service.set_down(true);
    let jobs = (0..JOBS as u64).map(|seq| CallJob { port: service.port(), seq });
    let ids = CallJob::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue)).await.unwrap();

    let mut workers: Vec<WorkerProcess> = (0..PROCESSES).map(|_| worker(&url, &queue)).collect();
    // The service stays down for three seconds; a second in, a process is
    // killed (it may hold the probe).
    let down = Duration::from_secs(3);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    workers.remove(0).kill();
    tokio::time::sleep(down.saturating_sub(started.elapsed())).await;
    let calls_while_down = service.calls();
    let info = q.breaker(&queue).await.unwrap();
    service.set_down(false);

    all_succeed(&q, &ids, "a minute after the service came back").await;
    // Before the breaker opens, the pending jobs may each be called once
    // (a worker whose call failed takes the next job while its failure is
    // on its way to Redis, finishes being batched), and a worker's retry
    // once more; then one probe per cool-down, and one more for the probe
    // the kill lost. Without the breaker: about 50 calls per worker and
    // second, 1,800 here.
    let bound = (JOBS + PROCESSES * WORKERS) as u64 + (down.as_millis() / cooldown.as_millis()) as u64 + 2;
    assert!(calls_while_down >= 3, "the breaker needs its failures first: {calls_while_down} calls");
    assert!(calls_while_down <= bound, "{calls_while_down} calls while the service was down, over the bound {bound}");
    assert!(info.opened >= 2, "failed probes opened it again: {info:?}");
    assert!(!matches!(info.state, BreakerState::Closed), "open while the service was down: {info:?}");
    let after = q.breaker(&queue).await.unwrap();
    assert_eq!(after.state, BreakerState::Closed, "a successful probe closed it");
    println!(
        "{calls_while_down} calls in {down:?} down (bound {bound}); opened {} times; {} calls in all",
        after.opened,
        service.calls()
    );
}

/// Group breakers across real processes: two groups call two services, one
/// of which goes down. Its group's breaker bounds the calls to it while
/// the other group's jobs all run and succeed meanwhile; once the service
/// is back, its group's jobs succeed too and its breaker closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_breaker_stops_only_its_group() {
    let server = RedisServer::start();
    let url = server.url();
    let queue = jobs_core::testing::unique_queue("gbreaker");
    let q = RedisQueue::connect(&url).await.unwrap();
    let cooldown = Duration::from_millis(250);
    let breaker = format!("3/10s:{}ms", cooldown.as_millis()).parse().unwrap();
    q.set_policy(&queue, QueuePolicy { group_breaker: Some(breaker), ..Default::default() }).await.unwrap();
    let (down_service, up_service) = (Service::start().unwrap(), Service::start().unwrap());
    down_service.set_down(true);
    let enqueue = |group: &'static str, port: u16| {
        let jobs = (0..JOBS as u64).map(move |seq| CallJob { port, seq });
        CallJob::enqueue_all_with(&q, jobs, JobOptions::new().queue(&queue).group(group))
    };
    let failing = enqueue("failing", down_service.port()).await.unwrap();
    let healthy = enqueue("healthy", up_service.port()).await.unwrap();

    let _workers: Vec<WorkerProcess> = (0..PROCESSES).map(|_| worker(&url, &queue)).collect();
    // While the one service is down, every job of the other group succeeds.
    all_succeed(&q, &healthy, "of the healthy group after a minute").await;
    // Held down three seconds in all, counted from the last healthy job.
    let down = Duration::from_secs(3);
    let counted_from = Instant::now();
    let calls_before = down_service.calls();
    tokio::time::sleep(down).await;
    let calls_while_down = down_service.calls() - calls_before;
    let info = q.breaker(&queue).await.unwrap();
    down_service.set_down(false);
    assert_eq!(info.state, BreakerState::Closed, "the queue's own breaker is not touched: {info:?}");
    let listed = info.groups.iter().find(|g| g.group == "failing");
    assert!(listed.is_some_and(|g| g.state != BreakerState::Closed), "the failing group's breaker is open: {info:?}");
    assert!(info.groups.iter().all(|g| g.group == "failing"), "only the failing group's: {info:?}");
    assert_eq!(up_service.calls(), JOBS as u64, "each healthy job called its service once");

    all_succeed(&q, &failing, "a minute after the service came back").await;
    // Once open (before the window counted here), one probe per cool-down,
    // and one more when the window starts in the middle of a probe.
    let bound = (down.as_millis() / cooldown.as_millis()) as u64 + 2;
    assert!(calls_while_down <= bound, "{calls_while_down} calls in {down:?} while open, over the bound {bound}");
    let after = q.breaker(&queue).await.unwrap();
    assert_eq!((after.groups_open, after.groups.len()), (0, 0), "a successful probe closed it: {after:?}");
    println!(
        "{calls_while_down} calls to the failing group's service in {:?} (bound {bound}); its breaker opened {} times",
        counted_from.elapsed(),
        after.groups_opened
    );
}
