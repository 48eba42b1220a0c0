//! Recurring jobs on Redis: three schedulers, each on its own connection,
//! over more than 20 ticks of a one-second schedule. Every tick is enqueued
//! exactly once and none is missed; the lateness of each tick (enqueue time
//! minus the tick's time) is measured and printed.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::{CatchUp, CronSchedule, JobQueue, JobStatus, ScheduleOptions, Scheduler};
use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

const TICKS: u64 = 22;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_enqueue_each_tick_once() {
    let prefix = jobs_core::testing::unique_queue("sched");
    let config = RedisConfig { prefix, ..RedisConfig::new(shared_server_url()) };
    let queues = [
        RedisQueue::from_config(&config).await.unwrap(),
        RedisQueue::from_config(&config).await.unwrap(),
        RedisQueue::from_config(&config).await.unwrap(),
    ];
    let queue = "ticks";
    let payload = ProbeJob { key: "ticks".into(), seq: 0, act: Act::Succeed };
    let options = ScheduleOptions { catch_up: CatchUp::One, queue: Some(queue.into()), priority: None };
    Scheduler::new(queues[0].clone()).add_with("every-second", "* * * * * *", "UTC", payload, options).await.unwrap();
    let runners: Vec<_> = queues.iter().map(|q| Scheduler::new(q.clone()).start()).collect();
    let deadline = Instant::now() + Duration::from_secs(TICKS + 30);
    while queues[0].stats().await.unwrap().queue(queue).pending < TICKS {
        assert!(Instant::now() < deadline, "{TICKS} ticks were not enqueued in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in runners {
        r.stop().await;
    }

    let state = queues[0].schedules().await.unwrap().into_iter().find(|s| s.def.name == "every-second").unwrap();
    let cron = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let ticks = cron.ticks_between(state.def.created_at, state.last_tick.unwrap(), 10_000);
    let jobs = queues[0].list_jobs(queue, JobStatus::Pending, 0, 10_000).await.unwrap();
    assert_eq!(jobs.len(), ticks.len(), "one job per tick, none missed, none twice");
    assert!(jobs.len() as u64 >= TICKS);

    // Each job was enqueued for the last tick at or before it.
    let mut lateness: Vec<Duration> = jobs
        .iter()
        .map(|j| {
            let tick = ticks.iter().rev().find(|t| **t <= j.enqueued_at).copied().unwrap_or(SystemTime::UNIX_EPOCH);
            j.enqueued_at.duration_since(tick).unwrap()
        })
        .collect();
    lateness.sort();
    let pct = |p: f64| lateness[((lateness.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "tick lateness over {} ticks: p50 {:?}, p99 {:?}, max {:?}",
        lateness.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    assert!(pct(1.0) < Duration::from_secs(1), "a tick was handled after the next one was due");
}
