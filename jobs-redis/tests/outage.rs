//! Redis going away under load and coming back: a producer enqueues and a
//! worker pool works while `redis-server` is killed (and started again on
//! the same port, AOF on) or frozen with SIGSTOP (connections open, no
//! answer: the case a bounded `command_timeout` exists for).
//!
//! Measured and checked: how long a failing call takes (never more than
//! `command_timeout` and a little), how soon producers and the pool work
//! again after Redis is back, that every acknowledged job runs and that no
//! job stays leased, for 3 s and 10 s outages.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, probe, run, unique_queue};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, QueueInspect, WorkerPool};
use jobs_redis::testing::{RedisServer, ServerOptions};
use jobs_redis::{RedisConfig, RedisQueue};

/// How the server goes away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// SIGKILL, then started again (connections refused meanwhile).
    Killed,
    /// SIGSTOP, then SIGCONT (connections hang meanwhile).
    Frozen,
}

const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Default)]
struct Producer {
    acked: Vec<JobId>,
    /// (when the call started, how long it took) of each failed call.
    errors: Vec<(Instant, Duration)>,
    /// When each successful call returned.
    oks: Vec<Instant>,
}

fn job(queue: &str, seq: u64) -> jobs_core::NewJob {
    ProbeJob { key: queue.to_owned(), seq, act: Act::SleepMs(5) }.into_new_job(JobOptions::new().queue(queue)).unwrap()
}

fn outage(how: Outage, down: Duration) {
    let mut server = RedisServer::start_with(ServerOptions { appendonly: true, ..Default::default() });
    let url = server.url();
    run(async move {
        let config = RedisConfig {
            command_timeout: COMMAND_TIMEOUT,
            connect_timeout: COMMAND_TIMEOUT,
            ..RedisConfig::new(&url)
        };
        let q = RedisQueue::from_config(&config).await.unwrap();
        let queue = unique_queue("outage");
        let pool = WorkerPool::builder(q.clone())
            .queues([queue.as_str()])
            .workers(4)
            .lease(Duration::from_secs(2))
            .start()
            .unwrap();
        let state: Arc<Mutex<Producer>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, queue, state, stop) = (q.clone(), queue.clone(), state.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match q.enqueue_many(vec![job(&queue, seq)]).await {
                        Ok(ids) => {
                            let mut s = state.lock().unwrap();
                            s.acked.extend(ids);
                            s.oks.push(Instant::now());
                        }
                        Err(e) => {
                            assert!(e.to_string().contains("Redis"), "{e}");
                            state.lock().unwrap().errors.push((started, started.elapsed()));
                        }
                    }
                    seq += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let p = probe(&queue);
        eventually("jobs flow before the outage", || async { p.start_count() >= 50 }).await;

        let went = Instant::now();
        match how {
            Outage::Killed => tokio::task::block_in_place(|| server.kill()),
            Outage::Frozen => server.signal("STOP"),
        }
        tokio::time::sleep(down).await;
        match how {
            Outage::Killed => tokio::task::block_in_place(|| server.restart()),
            Outage::Frozen => server.signal("CONT"),
        }
        let back = Instant::now();
        eventually("the producer enqueues again", || async {
            state.lock().unwrap().oks.last().is_some_and(|t| *t > back)
        })
        .await;
        eventually("the pool runs jobs again", || async { p.starts().last().is_some_and(|s| s.at > back) }).await;
        stop.store(true, Ordering::Relaxed);
        producer.await.expect("the producer never panics");

        let s = std::mem::take(&mut *state.lock().unwrap());
        let producer_back = s.oks.iter().find(|t| **t > back).unwrap().duration_since(back);
        let pool_back = p.starts().iter().find(|st| st.at > back).unwrap().at.duration_since(back);
        let during: Vec<Duration> = s.errors.iter().filter(|(t, _)| *t >= went).map(|(_, d)| *d).collect();
        let worst = during.iter().max().copied().unwrap_or_default();
        let mean = during.iter().sum::<Duration>().checked_div(during.len() as u32).unwrap_or_default();
        for id in &s.acked {
            jobs_core::testing::wait_status(&q, id, JobStatus::Succeeded).await;
        }
        eventually("no job stays leased or pending", || async {
            let c = q.stats().await.unwrap().queue(&queue);
            c.running == 0 && c.pending == 0 && c.scheduled == 0 && c.retrying == 0
        })
        .await;
        pool.shutdown().await.unwrap();
        eprintln!(
            "{how:?} for {down:?} (command_timeout {COMMAND_TIMEOUT:?}): {} enqueues acknowledged, all succeeded; \
             {} calls failed, error latency mean {mean:?}, worst {worst:?}; \
             after Redis was back: producer enqueued in {producer_back:?}, the pool started a job in {pool_back:?}",
            s.acked.len(),
            during.len(),
        );
        assert!(!during.is_empty(), "the producer noticed the outage");
        assert!(worst <= COMMAND_TIMEOUT + Duration::from_millis(500), "an error took {worst:?}");
        assert!(producer_back < Duration::from_secs(5), "producer back after {producer_back:?}");
        assert!(pool_back < Duration::from_secs(10), "pool back after {pool_back:?}");
    });
}

#[test]
fn killed_for_3s_producers_fail_fast_and_everything_resumes() {
    outage(Outage::Killed, Duration::from_secs(3));
}

#[test]
fn frozen_for_3s_calls_time_out_and_everything_resumes() {
    outage(Outage::Frozen, Duration::from_secs(3));
}

#[test]
fn killed_for_10s_producers_fail_fast_and_everything_resumes() {
    outage(Outage::Killed, Duration::from_secs(10));
}

#[test]
fn frozen_for_10s_calls_time_out_and_everything_resumes() {
    outage(Outage::Frozen, Duration::from_secs(10));
}
