//! `worker`: a pool on the configured queues until SIGINT or SIGTERM.

use jobs_core::backend::BoxFuture;

use super::Context;
use crate::args::WorkerArgs;
use crate::error::CliError;
use crate::io::Io;

/// Applies the configuration's queue policies, starts the pool, waits for
/// the shutdown signal, then shuts down gracefully (running jobs get the
/// grace period, the rest are handed back). Status lines go to stderr.
pub(super) async fn run(args: &WorkerArgs, ctx: Context, io: &mut Io<'_>) -> Result<(), CliError> {
    let Context { queue, config, shutdown, data } = ctx;
    let shutdown = match shutdown {
        Some(s) => s,
        None => signals()?,
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
    shutdown.await;
    writeln!(
        io.err,
        "stopping: waiting up to {} for {} running job{}",
        humantime::format_duration(config.jobs.worker_pool.grace_period),
        pool.running(),
        if pool.running() == 1 { "" } else { "s" }
    )?;
    io.err.flush()?;
    pool.shutdown().await?;
    writeln!(io.err, "stopped")?;
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// installed now, so a signal that arrives while the pool starts counts.
fn signals() -> Result<BoxFuture<'static, ()>, CliError> {
    let cannot = |e: std::io::Error| CliError::Failed(format!("cannot handle signals: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).map_err(cannot)?;
        let mut term = signal(SignalKind::terminate()).map_err(cannot)?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = cannot;
        Ok(Box::pin(async move {
            let _ = tokio::signal::ctrl_c().await;
        }))
    }
}
