//! Jobs taken ahead of free workers (`WorkerPoolBuilder::prefetch`): they
//! wait here, in the order fetched, and start as workers free up.
//!
//! The fetch loop sizes its fetches by the pool's room (its workers plus
//! the places ahead), each job holding a place of that room until it ends;
//! a job waits here for a worker. One that finds none within half the
//! lease is handed back (not an attempt) for another pool, so that no job
//! is held past its lease by a pool that cannot start it (its lease is
//! extended only once it runs); those still waiting when the pool stops
//! are handed back at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::exec::{execute, hand_back, SHUT_DOWN};
use super::shared::Core;
use crate::queue::LeasedJob;

/// A fetched job waiting for a worker: its place in the pool's room and
/// when it was fetched.
pub(crate) struct Waiting {
    pub(crate) job: LeasedJob,
    pub(crate) place: OwnedSemaphorePermit,
    pub(crate) fetched: Instant,
}

/// How long a job taken ahead may wait for a worker: half the lease, so
/// that one started at the last moment still has its lease extended by
/// the next heartbeat (every third of the lease) before it expires.
pub(crate) fn longest_wait(lease: Duration) -> Duration {
    lease / 2
}

/// Starts the jobs of `rx` in order, each once a worker slot of `workers`
/// is free, until the fetch loop drops its sender; hands back those that
/// wait too long or find the pool stopping.
pub(crate) async fn dispatch(
    core: Arc<Core>,
    workers: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
    mut rx: mpsc::UnboundedReceiver<Waiting>,
) {
    let most = longest_wait(core.lease);
    while let Some(w) = rx.recv().await {
        let slot = tokio::select! {
            biased;
            _ = core.killed.cancelled() => return,
            _ = stop.cancelled() => None,
            slot = workers.clone().acquire_owned() => slot.ok(),
            _ = tokio::time::sleep_until(w.fetched + most) => {
                hand_back(&core, &w.job, "no worker of the pool was free in time");
                continue;
            }
        };
        match slot {
            Some(slot) => {
                tracker.spawn(execute(core.clone(), w.job, (slot, Some(w.place))));
            }
            None => hand_back(&core, &w.job, SHUT_DOWN),
        }
    }
}
