//! The heartbeat that keeps the leases of a pool's running jobs, and
//! reports the pool's presence.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::shared::Core;
use crate::error::Error;
use crate::queue::LeaseState;

/// The heartbeat thread: one `extend_leases` call for all running jobs every
/// third of the lease. It runs on its own OS thread and runtime so that job
/// code which blocks the pool's runtime cannot starve it.
pub(crate) struct Heartbeat {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

pub(crate) fn spawn_heartbeat(core: Arc<Core>) -> Result<Heartbeat, Error> {
    let stop = CancellationToken::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start the heartbeat runtime: {e}")))?;
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("jobs-heartbeat".into())
        .spawn(move || rt.block_on(beat(core, s)))
        .map_err(|e| Error::InvalidArgument(format!("cannot start the heartbeat thread: {e}")))?;
    Ok(Heartbeat { stop, thread: Some(thread) })
}

/// The heartbeat thread's two loops, each on its own timer: lease
/// extensions never wait on a presence report (a slow node holding the
/// pools' index must not let every running job's lease expire).
async fn beat(core: Arc<Core>, stop: CancellationToken) {
    let presence = tokio::spawn(report_presence(core.clone(), stop.clone()));
    extend_leases(core, stop).await;
    let _ = presence.await;
}

/// Reports the pool's presence at once, then every third of the lease.
async fn report_presence(core: Arc<Core>, stop: CancellationToken) {
    let Some(store) = core.presence.clone() else { return };
    loop {
        let running = core.inflight.snapshot();
        let presence = crate::queue::PoolInfo {
            running: running.len(),
            running_jobs: running.into_iter().map(|(id, _)| id).collect(),
            ahead: core.ahead.load(std::sync::atomic::Ordering::Relaxed),
            last_seen: std::time::SystemTime::now(),
            ..core.identity.clone()
        };
        // Presence outlives two missed beats, so one slow call is not a death.
        let report = store.report_pool(presence, core.lease);
        tokio::pin!(report);
        tokio::select! {
            _ = core.killed.cancelled() => return,
            r = &mut report => if let Err(e) = r {
                tracing::warn!(error = %e, "could not report the pool's presence");
            },
            _ = stop.cancelled() => {
                // A report on its way is waited for (up to a lease) before
                // the pool removes its record: dropped, it could still reach
                // the backend after the removal (over another connection)
                // and list the stopped pool for another lease.
                tokio::select! {
                    _ = core.killed.cancelled() => {}
                    _ = tokio::time::sleep(core.lease) => {}
                    _ = &mut report => {}
                }
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = core.killed.cancelled() => return,
            _ = tokio::time::sleep(core.lease / 3) => {}
        }
    }
}

/// Extends the leases of every running job every third of the lease.
async fn extend_leases(core: Arc<Core>, stop: CancellationToken) {
    let every = core.lease / 3;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = core.killed.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let leases = core.inflight.snapshot();
        if leases.is_empty() {
            continue;
        }
        match core.queue.extend_leases(&leases, core.lease).await {
            Ok(states) => {
                for ((id, token), state) in leases.iter().zip(states) {
                    match state {
                        LeaseState::Held => {}
                        LeaseState::CancelRequested => core.inflight.cancel(id, *token),
                        LeaseState::Lost => {
                            tracing::warn!(job = %id, "lease lost: the job was taken again elsewhere; its result here will be refused");
                            core.inflight.cancel(id, *token);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, jobs = leases.len(), "could not extend leases"),
        }
    }
}
