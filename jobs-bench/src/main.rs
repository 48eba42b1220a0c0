//! `jobs-bench`: measures RedisQueue and MemoryQueue (see the library docs).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use jobs_bench::{Progress, Settings, Target};

/// Throughput, latency and memory of the jobs backends, next to what
/// `redis-benchmark` reaches on the same server.
#[derive(Debug, Parser)]
#[command(name = "jobs-bench", version)]
struct Args {
    /// Benchmark this Redis instead of starting a `redis-server` (the
    /// benchmark writes under `jobs-bench-*` prefixes and deletes them;
    /// `redis-benchmark` uses the key `mylist`).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Small sizes: every figure in under a minute (smoke testing).
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Workers of the pool (jobs running at once).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Jobs each pool of jobs takes ahead of its free workers, always
    /// (`WorkerPoolBuilder::prefetch`; 0 takes none; without it, the pools
    /// take them as their pace calls for them).
    #[arg(long, value_name = "N")]
    prefetch: Option<usize>,
    /// Spread every queue of the Redis runs over this many partitions, all
    /// on the one server (what partitioning costs, apart from where the
    /// partitions live; `--only partitions` measures them on a cluster).
    #[arg(long, value_name = "N")]
    partitions: Option<u16>,
    /// Jobs of the end-to-end run.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Worker processes of the `processes` run (4 by default), which
    /// share the workers among them.
    #[arg(long, value_name = "N")]
    processes: Option<usize>,
    /// Run as one worker process of the `processes` run (started by
    /// jobs-bench itself, with `--redis`, `--prefix` and `--workers`).
    #[arg(long, hide = true, requires_all = ["redis", "prefix"])]
    worker_process: bool,
    /// The key prefix a worker process serves.
    #[arg(long, hide = true)]
    prefix: Option<String>,
    /// The threads of a worker process's runtime (set by jobs-bench itself:
    /// `processes::runtime_threads`; 1 is a current-thread runtime, 0
    /// Tokio's default of one per core).
    #[arg(long, hide = true, default_value_t = 0)]
    runtime_threads: usize,
    /// Jobs timed in the latency run (at 500/s).
    #[arg(long, value_name = "N")]
    latency_jobs: Option<usize>,
    /// Rounds of the comparisons: of the events cost (each an end-to-end
    /// run without a listener, one with every event recorded for a
    /// listener elsewhere, and one with every event followed in this
    /// process; each cost reported is the median round's), and of
    /// `--peers` (each figure the median). 3 by default.
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Instead of the measurements above: jobs beside the peer libraries
    /// built in (features `peer-bullmq`, `peer-sidekiq`, `peer-apalis`, or
    /// `peers` for all), through the same scenarios on a `redis-server` of
    /// its own (the peers' keys cannot be scoped, so the server is
    /// emptied between runs; `--redis` is refused).
    #[arg(long, conflicts_with_all = ["redis", "memory_only", "only"])]
    peers: bool,
    /// With `--peers`: only these libraries (comma separated: jobs,
    /// bullmq-official, rusty-sidekiq, apalis-redis).
    #[arg(long, value_delimiter = ',', value_name = "NAMES", requires = "peers")]
    peer: Vec<String>,
    /// Only RedisQueue.
    #[arg(long, conflicts_with = "memory_only")]
    redis_only: bool,
    /// Only MemoryQueue (no Redis server needed).
    #[arg(long)]
    memory_only: bool,
    /// Skip `redis-benchmark`.
    #[arg(long)]
    no_ceiling: bool,
    /// Only these measurements (comma separated: single, inflight, many,
    /// e2e, processes, groups, groups-idle, fan-in, rate-wait, events,
    /// latency, delayed, memory; and, run only when named here, partitions:
    /// the end-to-end run on a 3-master Redis Cluster it starts itself,
    /// whatever `--redis` says, with the queue in 1 partition and then in
    /// partitions on every master, and each master's share of Redis CPU;
    /// and groups-live: the grouped run beside the jobs of the idle groups
    /// of groups-idle, without their groups).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut s = if args.quick { Settings::quick() } else { Settings::full() };
    if let Some(w) = args.workers {
        s.workers = w.max(1);
    }
    s.prefetch = args.prefetch.or(s.prefetch);
    s.partitions = args.partitions.filter(|&n| n > 1);
    jobs_bench::set_every_queue_partitions(s.partitions);
    jobs_bench::scenario::set_pool_prefetch(s.prefetch);
    if let Some(n) = args.jobs {
        s.e2e_n = n.max(1);
    }
    if let Some(n) = args.processes {
        s.processes = n.max(1);
    }
    if args.worker_process {
        // `requires_all` above makes both present.
        let (url, prefix) = (args.redis.as_deref().unwrap_or_default(), args.prefix.as_deref().unwrap_or_default());
        let rt = match args.runtime_threads {
            0 => tokio::runtime::Runtime::new(),
            1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
        }
        .context("starting the runtime")?;
        return Ok(rt.block_on(jobs_bench::processes::serve(url, prefix, s.workers))?);
    }
    if let Some(n) = args.latency_jobs {
        s.latency_n = n.max(1);
    }
    if let Some(n) = args.rounds {
        s.events_rounds = n.max(1);
    }
    s.only = args.only.clone();
    if args.no_ceiling {
        s.redis_benchmark_n = 0;
    }
    if args.peers {
        return peers(&args);
    }
    let target = if args.memory_only {
        None
    } else {
        Some(match &args.redis {
            Some(url) => Target::connect(url)?,
            None => Target::start()?,
        })
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let progress = Progress::new("jobs-bench", args.quiet);
    let report = rt.block_on(jobs_bench::run(&s, target.as_ref(), !args.redis_only, &progress))?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    Ok(())
}

/// `--peers`: the comparison with the peer libraries.
fn peers(args: &Args) -> anyhow::Result<()> {
    let rounds = args.rounds.unwrap_or(3).max(1);
    let s = if args.quick {
        jobs_bench::peers::PeerSettings::quick(rounds)
    } else {
        jobs_bench::peers::PeerSettings::full(rounds)
    };
    let built = jobs_bench::peers::built_in();
    if let Some(unknown) = args.peer.iter().find(|p| !built.contains(&p.as_str())) {
        anyhow::bail!(
            "`{unknown}` is not built in: this build measures {} (build with `--features peers` for every peer)",
            built.join(", ")
        );
    }
    let s = jobs_bench::peers::PeerSettings { only: args.peer.clone(), ..s };
    let mut machine = jobs_bench::report::Machine::now();
    let target = Target::start()?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let progress = Progress::new("jobs-bench --peers", args.quiet);
    machine.redis_version = rt.block_on(target.version()).ok();
    let figures = rt.block_on(jobs_bench::peers::run(&target, &s, &progress))?;
    machine.load_after = jobs_bench::report::load_average();
    println!("{}", jobs_bench::peers::table(&s, &figures));
    println!(
        "Load average (1, 5, 15 min) before: {:?}, after: {:?}; {} cores ({}), Redis {}.",
        machine.load_before,
        machine.load_after,
        machine.cores,
        machine.cpu,
        machine.redis_version.as_deref().unwrap_or("?")
    );
    if let Some(path) = &args.json {
        let command: Vec<String> = std::env::args().collect();
        let doc =
            serde_json::json!({ "command": command.join(" "), "machine": machine, "settings": s, "peers": figures });
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    Ok(())
}
