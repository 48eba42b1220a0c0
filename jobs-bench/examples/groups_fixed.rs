//! What groups cost Redis, in fixed batches: a backlog of `BACKLOG` jobs,
//! then rounds of B enqueued, B fetched and B finished by one client until
//! N jobs have run, so each group's line fills and drains as in the
//! end-to-end run (job i in group `g<i mod GROUPS>`; GROUPS 0: no groups).
//! Fixed batches make Redis's work per job the same from run to run; under
//! callgrind (`scripts/groups-instructions`) the instructions Redis
//! executes per job repeat to within a few tenths of a percent.
//!
//! `cargo run --release -p jobs-bench --example groups_fixed -- URL [N] [B] [GROUPS] [BACKLOG] [STEPS] [IDLE]`
//! STEPS (`enqueue,fetch,finish` by default) leaves out the steps not
//! named, so the cost of each is the difference between two runs (every
//! job is enqueued; without `fetch` nothing is fetched or finished);
//! `start` adds each job's start mark (`Outcome::Started`, which a pool
//! sends for a job that outlasts its ack batch) before its finish.
//! IDLE (0 by default) first puts that many groups out of the turn for an
//! hour, as jobs-bench's run beside idle groups does
//! (`jobs_bench::scenario::idle_groups`). With `GROUPS_FIXED_PAUSE` set,
//! the run prints `ready` on stderr once set up and `measured` once its
//! batches are done, and each time waits for a line on stdin: a harness
//! counts the server's instructions between the two
//! (`scripts/groups-instructions` with IDLE), since the setup's own count
//! does not repeat from run to run. `GROUPS_FIXED_DONE_MAX=N` bounds the
//! queue's finished jobs kept to N (`QueueRetention::succeeded_max`), so
//! that a run past N measures a queue in its steady state, where each
//! fetch's retention sweep deletes as many finished jobs as it leases.
//! `GROUPS_FIXED_CALLER_IDS` gives each job a caller id (`JobOptions::id`).
//! Prints Redis's CPU per job on stderr and one JSON line on stdout.

use jobs_bench::job::BenchNoop;
use jobs_bench::Target;
use jobs_core::backend::{Finish, Outcome};
use jobs_core::prelude::*;
use jobs_core::{JobOptions, QueuePolicy, QueueRetention};
use jobs_redis::{RedisConfig, RedisQueue};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let url = args.get(1).cloned().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let (n, b, groups, backlog) = (arg(2, 20_000), arg(3, 100).max(1), arg(4, 10_000), arg(5, 2_000));
    let steps = args.get(6).map_or("enqueue,fetch,finish", String::as_str);
    let idle = arg(7, 0);
    let pause = std::env::var_os("GROUPS_FIXED_PAUSE").is_some();
    let (fetch, finish, start) = (steps.contains("fetch"), steps.contains("finish"), steps.contains("start"));
    let target = Target::connect(&url)?;
    let prefix = format!("grfixed-{}", std::process::id());
    // Under callgrind a call takes about fifty times as long: the fetch
    // that takes 100,000 idle groups out of the turn, minutes.
    let config = RedisConfig {
        prefix: prefix.clone(),
        command_timeout: std::time::Duration::from_secs(900),
        ..RedisConfig::new(target.url())
    };
    let q = RedisQueue::from_config(&config).await?;
    let caller_ids = std::env::var_os("GROUPS_FIXED_CALLER_IDS").is_some();
    let job = |i: usize| {
        let mut options = JobOptions::new();
        if groups > 0 {
            options = options.group(format!("g{}", i % groups));
        }
        if caller_ids {
            options = options.id(format!("c{i}"));
        }
        BenchNoop::now().into_new_job(options)
    };
    let req = jobs_bench::job::fetch_request(b);
    if let Some(max) = std::env::var("GROUPS_FIXED_DONE_MAX").ok().and_then(|v| v.parse().ok()) {
        let retention = QueueRetention { succeeded_max: Some(max), ..Default::default() };
        q.set_policy(jobs_bench::job::QUEUE, QueuePolicy { retention, ..Default::default() }).await?;
    }
    if idle > 0 {
        jobs_bench::scenario::idle_groups(&q, idle, &jobs_bench::Progress::new("idle groups", true)).await?;
    }
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
    if pause {
        wait_for_harness("ready")?;
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
    if pause {
        wait_for_harness("measured")?;
    }
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

/// Says `what` on stderr and waits for a line on stdin (see
/// `GROUPS_FIXED_PAUSE` above).
fn wait_for_harness(what: &str) -> Result<(), Failure> {
    eprintln!("{what}");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}
