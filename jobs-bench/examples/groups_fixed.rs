//! What groups cost Redis, in fixed batches: a backlog of `BACKLOG` jobs,
//! then rounds of B enqueued, B fetched and B finished by one client until
//! N jobs have run, so each group's line fills and drains as in the
//! end-to-end run (job i in group `g<i mod GROUPS>`; GROUPS 0: no groups).
//! Fixed batches make Redis's work per job the same from run to run; under
//! callgrind (`scripts/groups-instructions`) the instructions Redis
//! executes per job repeat to within a few tenths of a percent.
//!
//! `cargo run --release -p jobs-bench --example groups_fixed -- URL [N] [B] [GROUPS] [BACKLOG] [STEPS]`
//! STEPS (`enqueue,fetch,finish` by default) leaves out the steps not
//! named, so the cost of each is the difference between two runs (every
//! job is enqueued; without `fetch` nothing is fetched or finished);
//! `start` adds each job's start mark (`Outcome::Started`, which a pool
//! sends for a job that outlasts its ack batch) before its finish.
//! Prints Redis's CPU per job on stderr and one JSON line on stdout.

use jobs_bench::job::BenchNoop;
use jobs_bench::Target;
use jobs_core::backend::{Finish, Outcome};
use jobs_core::prelude::*;
use jobs_core::JobOptions;
use jobs_redis::{RedisConfig, RedisQueue};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let url = args.get(1).cloned().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let (n, b, groups, backlog) = (arg(2, 20_000), arg(3, 100).max(1), arg(4, 10_000), arg(5, 2_000));
    let steps = args.get(6).map_or("enqueue,fetch,finish", String::as_str);
    let (fetch, finish, start) = (steps.contains("fetch"), steps.contains("finish"), steps.contains("start"));
    let target = Target::connect(&url)?;
    let prefix = format!("grfixed-{}", std::process::id());
    let config = RedisConfig { prefix: prefix.clone(), ..RedisConfig::new(target.url()) };
    let q = RedisQueue::from_config(&config).await?;
    let job = |i: usize| match groups {
        0 => BenchNoop::now().new_job(),
        g => BenchNoop::now().into_new_job(JobOptions::new().group(format!("g{}", i % g))),
    };
    let req = jobs_bench::job::fetch_request(b);
    let mut next = 0;
    let mut enqueue = |size: usize| {
        let jobs = (next..next + size).map(job).collect::<Result<Vec<_>, _>>();
        next += size;
        jobs
    };
    let mut left = backlog;
    while left > 0 {
        let size = left.min(b);
        q.enqueue_many(enqueue(size)?).await?;
        left -= size;
    }
    let before = target.cpu_seconds().await?;
    let mut done = 0;
    while done < n {
        q.enqueue_many(enqueue(b)?).await?;
        if !fetch {
            done += b;
            continue;
        }
        let got = q.fetch(&req).await?.jobs;
        if got.is_empty() {
            return Err(format!("{done} of {n} jobs fetched, then none").into());
        }
        done += got.len();
        if !finish {
            continue;
        }
        if start {
            let marks =
                got.iter().map(|j| Finish { id: j.id.clone(), token: j.token, outcome: Outcome::Started }).collect();
            q.finish(marks).await?;
        }
        let acks = got
            .into_iter()
            .map(|j| Finish { id: j.id, token: j.token, outcome: Outcome::Succeeded { result: None } })
            .collect();
        q.finish(acks).await?;
    }
    let us = (target.cpu_seconds().await? - before) * 1e6 / done as f64;
    eprintln!("{us:.2} µs of Redis CPU per job ({done} jobs, batch {b}, groups {groups}, backlog {backlog})");
    println!(
        "{}",
        serde_json::json!({ "jobs": done, "batch": b, "groups": groups, "backlog": backlog, "redis_cpu_us_per_job": us })
    );
    // Under callgrind the deletion can outlast the client's timeout; the
    // figure is printed by then, and the harness's server is thrown away.
    if let Err(e) = target.delete_prefix(&prefix).await {
        eprintln!("the run's keys were not deleted: {e}");
    }
    Ok(())
}
