//! [`shutdown_signal`]: what a worker process waits for before it shuts
//! its pool down.

use std::future::Future;

use crate::error::Error;

/// A future that resolves on the first SIGINT (Ctrl-C) or SIGTERM (on
/// Windows: Ctrl-C), for [`WorkerHandle::run_until`](crate::WorkerHandle::run_until).
/// (Feature `signal`.)
///
/// On unix the handlers are installed by this call, not when the future is
/// first polled: a signal that arrives while the pool starts counts. From
/// then on these signals no longer end the process by themselves; the
/// program decides what they do. After the first, a second SIGINT or
/// SIGTERM ends the process at once (exit code 130 or 143), without waiting
/// for the grace period: the jobs still running are not lost, they run
/// again once their leases expire.
///
/// Fails outside a tokio runtime, and when the handlers cannot be
/// installed. Panics in a runtime built without IO (`#[tokio::main]` has
/// it; a `Builder` needs `enable_io` or `enable_all`), as tokio's signal
/// handling does.
///
/// ```no_run
/// # use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)] async fn noop() -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main] async fn main() -> Result<(), jobs_core::Error> {
/// let signal = jobs_core::shutdown_signal()?;
/// let workers = WorkerPool::builder(MemoryQueue::new()).start()?;
/// workers.run_until(signal).await?;
/// # Ok(()) }
/// ```
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, Error> {
    tokio::runtime::Handle::try_current()
        .map_err(|_| Error::InvalidArgument("shutdown_signal must be called inside a tokio runtime".into()))?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
        let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            // From now on the pool shuts down gracefully; a second signal
            // means "now", as an operator pressing Ctrl-C again expects.
            tokio::spawn(async move {
                let code = tokio::select! {
                    _ = int.recv() => 128 + 2,
                    _ = term.recv() => 128 + 15,
                };
                tracing::warn!(
                    "second shutdown signal: exiting now; the jobs still running run again elsewhere once their \
                     leases expire"
                );
                std::process::exit(code);
            });
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            // Without a handler Ctrl-C ends the process anyway: an error
            // here (none is known on Windows) leaves that as it is.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
