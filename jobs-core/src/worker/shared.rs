//! What the pool's tasks share: [`Core`], built when the pool starts and
//! read by the fetch loop, each job's task and the heartbeat; and the
//! [`UnknownJobs`] policy it carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::inflight::InFlight;
use crate::queue::{FetchRequest, Finish, JobQueue, PoolPresence};
use crate::registry::JobDescriptor;

/// What a pool does with a job whose name no linked handler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownJobs {
    /// Dead-letter it at once with a clear error (the default).
    #[default]
    DeadLetter,
    /// Hand it back after `delay` without counting an attempt, so a pool of
    /// a newer deploy can take it; dead once it is older than `limit`.
    Requeue {
        /// Wait before it is offered again.
        delay: Duration,
        /// Give up after this age (1 h is a good default).
        limit: Duration,
    },
}

/// An ended attempt (or a start mark) on its way to the ack loop, with the
/// report its `on_dead` handlers get once the backend confirms the death.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) finish: Finish,
    pub(crate) dead: Option<crate::queue::DeadJob>,
    /// The job is a member of a workflow or batch: its end wakes the relay.
    pub(crate) flow: bool,
    /// Told once the backend has recorded it (dropped untold when the pool
    /// is killed first): the dispatcher hands jobs taken ahead back one by
    /// one, each once the one before is back.
    pub(crate) landed: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The sandbox children a sandboxed attempt runs in.
#[cfg(all(unix, feature = "sandbox"))]
pub(crate) type Sandboxed = Arc<crate::sandbox::Children>;
/// Without the sandbox there are no children: no attempt is sandboxed.
#[cfg(not(all(unix, feature = "sandbox")))]
pub(crate) type Sandboxed = std::convert::Infallible;

/// Everything the pool's tasks share.
pub(crate) struct Core {
    pub(crate) queue: Arc<dyn JobQueue>,
    /// Wakes the pool's archiver, when it runs one, after a fetch that
    /// added to an archive backlog.
    pub(crate) archive_wake: Option<Arc<tokio::sync::Notify>>,
    /// Wakes the pool's flow relay, when the backend stores flows, after an
    /// acknowledgement ended a workflow step or batch job.
    pub(crate) flow_wake: Option<Arc<tokio::sync::Notify>>,
    /// Where the pool reports its presence, when the backend keeps it.
    pub(crate) presence: Option<Arc<dyn PoolPresence>>,
    pub(crate) registry: HashMap<&'static str, &'static JobDescriptor>,
    pub(crate) queues: Vec<String>,
    pub(crate) weights: Option<Vec<u32>>,
    pub(crate) lease: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) max_retries: u32,
    pub(crate) unknown: UnknownJobs,
    pub(crate) fetch_batch: usize,
    /// Jobs taken ahead of free workers, at most (`WorkerPoolBuilder::prefetch`).
    pub(crate) prefetch: usize,
    /// Whether the places ahead follow the pool's pace (the default:
    /// `ahead::Allowance`) rather than all being used.
    pub(crate) adaptive: bool,
    /// Attempts ended so far (their pace sizes an adaptive prefetch).
    pub(crate) ends: std::sync::atomic::AtomicU64,
    /// Jobs taken ahead and waiting for a worker now (shown in the pool's
    /// presence).
    pub(crate) ahead: std::sync::atomic::AtomicUsize,
    /// The largest result stored, in bytes.
    pub(crate) max_result: usize,
    /// The crash budget ([`FetchRequest::max_crashes`](crate::queue::FetchRequest::max_crashes)).
    pub(crate) max_crashes: u32,
    /// The most snoozes a job may take ([`Outcome::Snooze`](crate::queue::Outcome::Snooze)).
    pub(crate) max_snoozes: u32,
    /// The shortest time between two progress writes of one job.
    pub(crate) progress_interval: Duration,
    /// Held by a job that lost its lease before its start was recorded
    /// while it runs: such jobs run one at a time, so that one that kills
    /// its process is not confused with the ones it would take along.
    pub(crate) quarantine: tokio::sync::Mutex<()>,
    pub(crate) job_backoff: HashMap<String, Backoff>,
    /// Values shared with every job ([`JobContext::data`](crate::JobContext::data)).
    pub(crate) data: Arc<crate::context::Extensions>,
    /// Layers around every attempt, and the failure and dead handlers.
    pub(crate) hooks: crate::hooks::pool::PoolHooks,
    /// The children of sandboxed jobs, when a job of the pool is sandboxed
    /// and the sandbox is enabled.
    #[cfg(all(unix, feature = "sandbox"))]
    pub(crate) sandbox: Option<Sandboxed>,
    /// Whether every job runs in the sandbox ([`crate::sandbox::Sandbox::every_job`]).
    #[cfg(all(unix, feature = "sandbox"))]
    pub(crate) sandbox_every_job: bool,
    /// Metrics hooks, when the pool was built with `.metrics(..)`.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<crate::metrics::PoolMetrics>,
    /// This pool's presence record (id, host, pid, queues, start).
    pub(crate) identity: crate::queue::PoolInfo,
    pub(crate) inflight: InFlight,
    pub(crate) acks: mpsc::UnboundedSender<Ack>,
    /// Read-held while jobs taken ahead are on their way back to their
    /// queues; every fetch takes it for writing first, so that no fetch of
    /// this pool overtakes a job it handed back: jobs of one priority still
    /// start in the order they were enqueued.
    pub(crate) returning: Arc<tokio::sync::RwLock<()>>,
    /// Cancelled when the grace period is over: signals running jobs, and
    /// every job that ends from then on is handed back.
    pub(crate) hard: CancellationToken,
    /// Cancelled when signalled jobs had their time to return: drops them.
    pub(crate) abort: CancellationToken,
    /// Cancelled by `kill`: everything stops without reporting.
    pub(crate) killed: CancellationToken,
}

impl Core {
    /// The queue order of one fetch: as listed, or a weighted random order.
    pub(crate) fn order(&self) -> Vec<String> {
        let Some(weights) = &self.weights else { return self.queues.clone() };
        let mut left: Vec<(usize, u32)> = weights.iter().copied().enumerate().filter(|(_, w)| *w > 0).collect();
        let mut out = Vec::with_capacity(self.queues.len());
        let mut rng = rand::rng();
        while !left.is_empty() {
            let total: u64 = left.iter().map(|(_, w)| u64::from(*w)).sum();
            let mut pick = rng.random_range(0..total);
            let mut chosen = 0;
            for (i, (_, w)) in left.iter().enumerate() {
                if pick < u64::from(*w) {
                    chosen = i;
                    break;
                }
                pick -= u64::from(*w);
            }
            out.push(self.queues[left.remove(chosen).0].clone());
        }
        out
    }

    /// The children `desc`'s attempts run in, when it is sandboxed.
    pub(crate) fn sandbox_for(&self, desc: &JobDescriptor) -> Option<Sandboxed> {
        #[cfg(all(unix, feature = "sandbox"))]
        return self.sandbox.as_ref().filter(|_| desc.sandbox || self.sandbox_every_job).cloned();
        #[cfg(not(all(unix, feature = "sandbox")))]
        {
            let _ = desc;
            None
        }
    }

    /// The backoff of one job name.
    pub(crate) fn backoff_for(&self, name: &str) -> &Backoff {
        self.job_backoff.get(name).unwrap_or(&self.backoff)
    }

    /// A fetch of `queues` for as many jobs as `slots` has places.
    pub(crate) fn request(&self, queues: Vec<String>, slots: &tokio::sync::OwnedSemaphorePermit) -> FetchRequest {
        FetchRequest {
            queues,
            max: slots.num_permits(),
            lease: self.lease,
            default_max_retries: self.max_retries,
            max_crashes: self.max_crashes,
        }
    }

    /// The longest an idle fetcher waits without a wake-up: a safety net for
    /// leases taken (and then abandoned) after its last fetch.
    pub(crate) fn idle_cap(&self) -> Duration {
        (self.lease / 2).min(Duration::from_secs(15))
    }
}
