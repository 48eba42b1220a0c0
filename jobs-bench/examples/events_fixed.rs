//! What recording and following job events costs Redis, in fixed batches:
//! N jobs enqueued B at a time, then fetched and finished B at a time by
//! one client, without events (`off`), with events recorded (`on`) and with
//! a reader following them (`followed`). Fixed batches make Redis's work
//! per job the same from run to run, unlike the end-to-end run, whose
//! batches follow the machine's load; run under callgrind
//! (`scripts/events-instructions`), the instructions Redis executes per job
//! repeat to within a few tenths of a percent.
//!
//! `cargo run --release -p jobs-bench --example events_fixed -- URL [N] [B] [ROUNDS] [MODES]`
//! (MODES: comma separated, `off,on,followed` by default). Prints Redis's
//! CPU per job for each mode and round on stderr, then one JSON line of the
//! medians on stdout.

use std::time::Duration;

use jobs_bench::job::{BenchNoop, QUEUE};
use jobs_bench::Target;
use jobs_core::backend::{Finish, Outcome};
use jobs_core::prelude::*;
use jobs_core::{EventFilter, EventStream, QueueEvents};
use jobs_redis::{RedisConfig, RedisQueue};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let url = args.get(1).cloned().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let (n, b, rounds) = (arg(2, 100_000), arg(3, 100).max(1), arg(4, 3).max(1));
    let modes: Vec<String> =
        args.get(5).map_or("off,on,followed", String::as_str).split(',').map(str::to_owned).collect();
    if let Some(bad) = modes.iter().find(|m| !["off", "on", "followed"].contains(&m.as_str())) {
        return Err(format!("unknown mode `{bad}`: off, on or followed").into());
    }
    let target = Target::connect(&url)?;
    let mut rows: Vec<(String, f64)> = Vec::new();
    for round in 0..rounds {
        for mode in &modes {
            let prefix = format!("evfixed-{}-{round}-{mode}", std::process::id());
            let us = run(&target, &prefix, mode, n, b).await;
            target.delete_prefix(&prefix).await?;
            let us = us?;
            eprintln!("round {round} {mode:>8}: {us:.2} µs of Redis CPU per job");
            rows.push((mode.clone(), us));
        }
    }
    let medians: serde_json::Map<String, serde_json::Value> = modes
        .iter()
        .map(|m| {
            let mut v: Vec<f64> = rows.iter().filter(|r| &r.0 == m).map(|r| r.1).collect();
            (m.clone(), serde_json::json!(jobs_bench::scenario::median(&mut v)))
        })
        .collect();
    println!("{}", serde_json::json!({ "jobs": n, "batch": b, "rounds": rounds, "redis_cpu_us_per_job": medians }));
    Ok(())
}

/// One run of `mode` under key prefix `prefix`: Redis's CPU microseconds
/// per job.
async fn run(target: &Target, prefix: &str, mode: &str, n: usize, b: usize) -> Result<f64, Failure> {
    let config =
        RedisConfig { prefix: prefix.to_owned(), event_history: 3 * n + 1_000, ..RedisConfig::new(target.url()) };
    let q = RedisQueue::from_config(&config).await?;
    let reader = match mode {
        "off" => None,
        "on" => {
            q.listen(QUEUE, Duration::from_secs(600)).await?;
            None
        }
        _ => {
            let mut s = EventStream::open(&q, EventFilter::queue(QUEUE)).await?;
            Some(tokio::spawn(async move {
                let mut got = 0;
                while got < 3 * n {
                    match tokio::time::timeout(Duration::from_secs(60), s.next()).await {
                        Ok(Some(Ok(_))) => got += 1,
                        _ => break,
                    }
                }
                got
            }))
        }
    };
    let before = target.cpu_seconds().await?;
    let mut left = n;
    while left > 0 {
        let size = left.min(b);
        let jobs = (0..size).map(|_| BenchNoop::now().new_job()).collect::<Result<Vec<_>, _>>()?;
        q.enqueue_many(jobs).await?;
        left -= size;
    }
    let req = jobs_bench::job::fetch_request(b);
    let mut done = 0;
    while done < n {
        let got = q.fetch(&req).await?.jobs;
        if got.is_empty() {
            return Err(format!("{done} of {n} jobs fetched, then none").into());
        }
        done += got.len();
        let acks = got
            .into_iter()
            .map(|j| Finish { id: j.id, token: j.token, outcome: Outcome::Succeeded { result: None } })
            .collect();
        q.finish(acks).await?;
    }
    if let Some(r) = reader {
        let got = r.await?;
        if got < 3 * n {
            return Err(format!("the reader received {got} of {} events", 3 * n).into());
        }
    }
    Ok((target.cpu_seconds().await? - before) * 1e6 / n as f64)
}
