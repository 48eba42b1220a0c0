//! `jobs-chaos`: the chaos run (`jobs-chaos run`, see `scripts/chaos`) and
//! its worker processes (`jobs-chaos worker`, started by the run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jobs_chaos::{ChaosConfig, Fsync, WorkerArgs};

/// Faults under load against a real redis-server and real worker
/// processes; checks that nothing acknowledged is lost.
#[derive(Debug, Parser)]
#[command(name = "jobs-chaos", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// A chaos run: prints progress on stderr, the table on stdout; exits 1
    /// when a check failed.
    Run {
        /// Minutes of load (faults injected throughout), then the drain.
        #[arg(long, default_value_t = 10)]
        minutes: u32,
        /// The short CI run instead (30 s of load; `--minutes` ignored).
        #[arg(long)]
        ci: bool,
        /// Redis `appendfsync`: `always` (the strict check) or `everysec`.
        #[arg(long, default_value = "always")]
        fsync: String,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Jobs enqueued per second.
        #[arg(long)]
        rate: Option<u32>,
        /// Jobs per `enqueue_many` call (1: each job enqueued alone, which
        /// an idle pool is handed in the enqueue's own step).
        #[arg(long)]
        batch: Option<usize>,
        /// Worker processes.
        #[arg(long)]
        workers: Option<usize>,
        /// Seconds Redis stays down or frozen in an outage or freeze.
        #[arg(long)]
        redis_down_secs: Option<u64>,
        /// Keep the run's directory (Redis files, run logs, worker logs).
        #[arg(long)]
        keep: bool,
        /// Clock offsets of the first worker slots, comma-separated seconds
        /// (`+420,-420`; empty: every worker on the host's clock). Default:
        /// `+420` for the CI run, `+420,-420` for the long run.
        #[arg(long, value_name = "SECONDS,..", allow_hyphen_values = true)]
        skews: Option<String>,
        /// Spread the chaos queue over this many hash slots (partitions).
        #[arg(long, default_value_t = 1)]
        partitions: u16,
        /// Groups half the jobs are spread over (0: no groups). Default: 20
        /// for the CI run, 50 for the long run.
        #[arg(long)]
        groups: Option<u32>,
        /// How many jobs of one group may run at once (the queue's
        /// `group_concurrency`).
        #[arg(long)]
        group_concurrency: Option<u32>,
        /// How many jobs of one group may start per window (the queue's
        /// `group_rate`, as `4/1s`; `none` for no rate).
        #[arg(long, value_name = "N/PERIOD")]
        group_rate: Option<String>,
    },
    /// One worker process of a run (started by `run`).
    Worker {
        /// Redis URL.
        #[arg(long)]
        redis: String,
        /// Queue to serve.
        #[arg(long, default_value = jobs_chaos::jobs::QUEUE)]
        queue: String,
        /// Lease in milliseconds.
        #[arg(long)]
        lease_ms: u64,
        /// Jobs at once.
        #[arg(long)]
        concurrency: usize,
        /// This process's run log.
        #[arg(long)]
        runlog: PathBuf,
        /// How far ahead this process's clock was set, in ms (negative:
        /// behind); checked against Redis `TIME` at the start.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        clock_skew_ms: i64,
        /// The pool's crash budget.
        #[arg(long, default_value_t = jobs_core::backend::DEFAULT_MAX_CRASHES)]
        crash_budget: u32,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match Cli::parse().command {
        Cmd::Worker { runlog, clock_skew_ms, .. } if jobs_core::sandbox::is_child() => {
            // Started again by a worker's pool to run its sandboxed jobs,
            // which record their runs in the worker's run log.
            jobs_chaos::serve_sandbox_child(&runlog, clock_skew_ms).context("sandbox child")?;
            Ok(())
        }
        Cmd::Worker { redis, queue, lease_ms, concurrency, runlog, clock_skew_ms, crash_budget } => {
            let lease = Duration::from_millis(lease_ms);
            let args = WorkerArgs { redis, queue, lease, concurrency, runlog, clock_skew_ms, crash_budget };
            jobs_chaos::run_worker(args).context("worker process")?;
            Ok(())
        }
        Cmd::Run {
            minutes,
            ci,
            fsync,
            json,
            rate,
            batch,
            workers,
            redis_down_secs,
            keep,
            skews,
            partitions,
            groups,
            group_concurrency,
            group_rate,
        } => {
            let exe = std::env::current_exe().context("the path of this program, to start worker processes")?;
            let mut cfg = if ci { ChaosConfig::ci(exe) } else { ChaosConfig::long(exe, minutes) };
            cfg.fsync = fsync.parse::<Fsync>()?;
            if let Some(r) = rate {
                cfg.rate = r;
            }
            if let Some(b) = batch {
                cfg.batch = b;
            }
            if let Some(w) = workers {
                cfg.worker_procs = w;
            }
            if let Some(s) = redis_down_secs {
                cfg.redis_down_for = Duration::from_secs(s);
            }
            if let Some(list) = skews {
                cfg.skewed_clocks = parse_skews(&list)?;
            }
            cfg.keep_dir = keep;
            cfg.partitions = partitions;
            if let Some(g) = groups {
                cfg.groups = g;
            }
            if let Some(c) = group_concurrency {
                cfg.group_concurrency = c;
            }
            match group_rate.as_deref() {
                None => {}
                Some("none") => cfg.group_rate = None,
                Some(r) => cfg.group_rate = Some(r.parse().map_err(|e| anyhow::anyhow!("--group-rate `{r}`: {e}"))?),
            }
            let report = jobs_chaos::run(cfg)?;
            print!("{}", report.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            }
            if !report.passed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// `+420,-420` as seconds; an empty list is no skew.
fn parse_skews(list: &str) -> anyhow::Result<Vec<i64>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().with_context(|| format!("--skews: `{s}` is not a number of seconds")))
        .collect()
}
