//! `worker`: a pool on the configured queues until SIGINT or SIGTERM.

use super::Context;
use crate::args::WorkerArgs;
use crate::error::CliError;
use crate::io::Io;

/// Applies the configuration's queue policies, starts the pool, runs it
/// until the shutdown signal, then shuts down gracefully (running jobs get
/// the grace period, the rest are handed back). Status lines go to stderr.
pub(super) async fn run(args: &WorkerArgs, ctx: Context, io: &mut Io<'_>) -> Result<(), CliError> {
    let Context { queue, config, shutdown, data, reload, reloads } = ctx;
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
    let reloads = match (&reload, reloads) {
        (Some(_), Some(r)) => Some(r),
        (Some(_), None) => hangups(),
        (None, _) => None,
    };
    let mut said = Ok(());
    pool.run_until(async {
        {
            let reloading = reload_limits(&*queue, reload, reloads, &mut *io.err);
            tokio::select! {
                () = shutdown => {}
                () = reloading => {}
            }
        }
        said = writeln!(io.err, "stopping: waiting up to {grace} for running jobs").and_then(|()| io.err.flush());
    })
    .await?;
    said?;
    writeln!(io.err, "stopped")?;
    Ok(())
}

/// Each time `reloads` receives: the configuration read again with `load`
/// and its queue limits applied, one status line each on `err`. Never
/// ends (without a loader or signals, it only waits).
async fn reload_limits(
    queue: &dyn jobs_core::Backend,
    load: Option<super::ConfigLoader>,
    reloads: Option<tokio::sync::mpsc::Receiver<()>>,
    err: &mut (dyn std::io::Write + Send),
) {
    if let (Some(load), Some(mut reloads)) = (load, reloads) {
        while reloads.recv().await.is_some() {
            let applied = match load() {
                Ok(config) => {
                    config.apply_queue_policies(queue).await.map(|()| config.queues.len()).map_err(CliError::from)
                }
                Err(e) => Err(e),
            };
            let _ = match applied {
                Ok(n) => writeln!(
                    err,
                    "configuration reloaded: limits of {n} queue{} applied",
                    if n == 1 { "" } else { "s" }
                ),
                Err(e) => {
                    writeln!(err, "warning: configuration not reloaded, the running limits stay: {}", e.one_line())
                }
            };
            let _ = err.flush();
        }
    }
    std::future::pending::<()>().await;
}

/// SIGHUP as a channel (none where there is no SIGHUP, or when its handler
/// cannot be installed: the worker then runs without reloads).
fn hangups() -> Option<tokio::sync::mpsc::Receiver<()>> {
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                // A reload already waiting covers this one.
                let _ = tx.try_send(());
            }
        });
        Some(rx)
    }
    #[cfg(not(unix))]
    {
        None
    }
}
