//! [`Archiver`]: moves each served queue's archive backlog to a sink.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::sink::{ArchiveError, ArchivePosition, ArchiveSink};
use crate::queue::ArchiveBacklog;

/// How an [`Archiver`] works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// How often it looks at the backlogs when nothing wakes it (default
    /// 10 s). A pool's own fetches wake it when their retention archived
    /// something; this interval finds what other pools' fetches and dead
    /// jobs trimmed at their end added, and renews its leases. Archiving
    /// is not urgent: a backlog holds entries safely until then.
    pub interval: Duration,
    /// Entries taken, written and removed per step (default 500).
    pub batch: usize,
    /// How long a queue stays its archiver's after each step (default
    /// 30 s): another pool's archiver takes a queue over only once this
    /// passed without a step, so it must be well above a batch's write time.
    pub lease: Duration,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings { interval: Duration::from_secs(10), batch: 500, lease: Duration::from_secs(30) }
    }
}

/// Writes queues' archive backlogs to a sink, each entry once and in order
/// (see the [module docs](super)). A worker pool given a sink runs one over
/// its queues; it can also be run by hand ([`Archiver::drain`]).
pub struct Archiver {
    backlog: Arc<dyn ArchiveBacklog>,
    sink: Arc<dyn ArchiveSink>,
    holder: String,
    queues: Vec<String>,
    settings: ArchiveSettings,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::JobMetrics>,
    /// Per queue whose lease it holds: the last entry the sink holds.
    held: HashMap<String, Option<ArchivePosition>>,
    /// Wakes `run` before its interval is over.
    wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").field("holder", &self.holder).field("queues", &self.queues).finish_non_exhaustive()
    }
}

impl Archiver {
    /// An archiver named `holder` (unique among the processes archiving
    /// from this backend, e.g. the pool's id) over `queues`.
    pub fn new(
        backlog: Arc<dyn ArchiveBacklog>,
        sink: Arc<dyn ArchiveSink>,
        holder: impl Into<String>,
        queues: Vec<String>,
    ) -> Self {
        Archiver {
            backlog,
            sink,
            holder: holder.into(),
            queues,
            settings: ArchiveSettings::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            held: HashMap::new(),
            wake: None,
        }
    }

    /// Makes [`Archiver::run`] drain at once whenever `wake` is notified
    /// (a pool notifies it after a fetch that archived something), besides
    /// every interval.
    pub fn wake_on(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Its settings.
    pub fn settings(mut self, settings: ArchiveSettings) -> Self {
        self.settings = ArchiveSettings { batch: settings.batch.max(1), ..settings };
        self
    }

    /// Reports each queue's backlog and archived count in these metrics.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: &crate::metrics::JobMetrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// Writes every served queue's backlog to the sink until it is empty
    /// (queues another archiver holds are left to it); returns how many
    /// entries were written.
    pub async fn drain(&mut self) -> Result<u64, ArchiveError> {
        let mut written = 0;
        let mut first_error = None;
        for q in self.queues.clone() {
            // One queue's failing sink must not hold the others back.
            match self.drain_queue(&q).await {
                Ok(n) => written += n,
                Err(e) => {
                    self.held.remove(&q);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    async fn drain_queue(&mut self, queue: &str) -> Result<u64, ArchiveError> {
        let max = self.settings.batch;
        let mut written = 0;
        loop {
            let Some(batch) = self.backlog.take_archive(queue, &self.holder, self.settings.lease, max).await? else {
                self.held.remove(queue);
                return Ok(written);
            };
            if batch.taken || !self.held.contains_key(queue) {
                let last = self.sink.last(queue).await?;
                self.held.insert(queue.to_owned(), last);
            }
            let Some(through) = batch.jobs.last().map(|j| j.seq) else {
                self.record(queue, batch.backlog, 0);
                return Ok(written);
            };
            let full = batch.jobs.len() >= max;
            let held = self.held.get(queue).cloned().flatten();
            let fresh: Vec<_> = batch.jobs.into_iter().filter(|j| held.as_ref().is_none_or(|p| !p.holds(j))).collect();
            if let Some(newest) = fresh.last() {
                self.sink.write(queue, &fresh).await?;
                let at = ArchivePosition { backlog: newest.backlog.clone(), seq: newest.seq };
                self.held.insert(queue.to_owned(), Some(at));
            }
            let left = self.backlog.ack_archive(queue, through).await?;
            let n = fresh.len() as u64;
            written += n;
            self.record(queue, left, n);
            if !full || left == 0 {
                return Ok(written);
            }
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn record(&self, queue: &str, backlog: u64, written: u64) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.record_archive(queue, backlog, written);
        }
    }

    /// Drains every [`ArchiveSettings::interval`], and whenever woken (see
    /// [`Archiver::wake_on`]), until `stop`; then drains once more and
    /// gives its leases up. Errors are logged and retried at the next
    /// interval (the entries stay in the backlog).
    pub async fn run(mut self, stop: CancellationToken) {
        let wake = self.wake.clone();
        let woken = || async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "archiving failed; the entries stay in the backlog and are tried again");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.settings.interval) => {}
                () = woken() => {}
            }
        }
        if let Err(e) = self.drain().await {
            tracing::warn!(error = %e, "archiving at shutdown failed; the entries stay in the backlog");
        }
        for q in &self.queues {
            if let Err(e) = self.backlog.release_archive(q, &self.holder).await {
                tracing::debug!(queue = %q, error = %e, "could not give the archive lease up; it expires by itself");
            }
        }
    }
}
