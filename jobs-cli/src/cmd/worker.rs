//! `worker`: a pool on the configured queues until SIGINT or SIGTERM.

use super::Context;
use crate::args::WorkerArgs;
use crate::error::CliError;
use crate::io::Io;

/// Applies the configuration's queue policies, starts the pool, runs it
/// until the shutdown signal, then shuts down gracefully (running jobs get
/// the grace period, the rest are handed back). Status lines go to stderr.
pub(super) async fn run(args: &WorkerArgs, ctx: Context, io: &mut Io<'_>) -> Result<(), CliError> {
    let Context { queue, config, shutdown, data } = ctx;
    // The handlers are installed before the pool starts, so a signal that
    // arrives while it starts counts.
    let shutdown = match shutdown {
        Some(s) => s,
        None => Box::pin(jobs_core::shutdown_signal()?),
    };
    config.apply_queue_policies(&*queue).await?;
    let mut builder = config.pool_builder(queue.clone()).extensions(data);
    let workers = args.workers.unwrap_or(config.jobs.worker_pool.worker_count);
    builder = builder.workers(workers);
    if args.no_scheduler {
        builder = builder.scheduler(false);
    }
    if !args.queues.is_empty() {
        builder = builder.queues(args.queues.clone());
    }
    let pool = builder.start().map_err(|e| match e {
        jobs_core::Error::NoJobsLinked => CliError::NothingToRun,
        e => CliError::Core(e),
    })?;
    writeln!(
        io.err,
        "worker pool {} serving {} with {workers} worker{}; stop it with Ctrl-C or SIGTERM",
        pool.id(),
        pool.queues().join(", "),
        if workers == 1 { "" } else { "s" }
    )?;
    io.err.flush()?;
    let grace = humantime::format_duration(config.jobs.worker_pool.grace_period);
    let mut said = Ok(());
    pool.run_until(async {
        shutdown.await;
        said = writeln!(io.err, "stopping: waiting up to {grace} for running jobs").and_then(|()| io.err.flush());
    })
    .await?;
    said?;
    writeln!(io.err, "stopped")?;
    Ok(())
}
