//! Progress of a running attempt: [`ProgressError`], and the per-attempt
//! [`Reporter`] behind [`JobContext::progress`](crate::JobContext::progress)
//! that writes to the backend at most once per interval.
//!
//! A job may report in a tight loop; the backend sees the first value at
//! once, then at most one write per interval, always of the latest value.
//! A value held back is written when the interval has passed (by a timer,
//! whether or not the job reports again) and, at the latest, before the
//! attempt's end is reported: [`Reporter::close`] writes it and turns every
//! later write away, so none lands after the end.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::queue::{bounded_note, valid_fraction, JobQueue, ProgressUpdate, ProgressWrite};
use crate::vocab::JobId;

/// How often, at most, one job's progress is written by default
/// ([`WorkerPoolBuilder::progress_interval`](crate::WorkerPoolBuilder::progress_interval)).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Why [`JobContext::progress`](crate::JobContext::progress) refused or
/// could not store a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProgressError {
    /// The fraction is not a number from 0.0 to 1.0 (NaN, negative, above
    /// one): nothing was stored.
    #[error("progress must be a fraction from 0.0 to 1.0, not {0}: pass done / total")]
    InvalidFraction(f32),
    /// This worker's lease on the job was lost (it stalled past its lease and
    /// another worker took the job): its progress is no longer stored, and
    /// its result will be refused too. Stop the work.
    #[error("job `{0}` lost its lease to another attempt: its progress is no longer stored")]
    LeaseLost(JobId),
    /// The attempt has ended (a task the job spawned reports after the job
    /// returned): nothing is stored after an attempt's end.
    #[error("the attempt of job `{0}` has ended: progress is not stored after it")]
    Ended(JobId),
    /// The backend could not be reached. The value is kept and written at
    /// the next interval (or at the attempt's end).
    #[error("could not store the progress of job `{id}`: {source}")]
    Backend {
        /// The job.
        id: JobId,
        /// The backend's error.
        #[source]
        source: Error,
    },
}

/// One attempt's progress writer, shared by every clone of its context.
pub(crate) struct Reporter {
    queue: Arc<dyn JobQueue>,
    id: JobId,
    token: u64,
    interval: Duration,
    state: Mutex<State>,
    /// Held while a write is under way, and by `close` while it writes the
    /// last value: no write starts once the attempt is closed.
    writing: tokio::sync::Mutex<()>,
    /// Cancelled by `close`: wakes a timer waiting for its interval.
    closed: CancellationToken,
}

#[derive(Default)]
struct State {
    /// The latest value not written yet.
    pending: Option<(f32, String)>,
    /// When the last write was started.
    last_write: Option<Instant>,
    /// A timer task will write `pending` when the interval has passed.
    timer: bool,
    closed: bool,
    lost: bool,
}

impl Reporter {
    /// The writer of the attempt of `id` under lease `token`.
    pub(crate) fn new(queue: Arc<dyn JobQueue>, id: JobId, token: u64, interval: Duration) -> Arc<Self> {
        Arc::new(Reporter {
            queue,
            id,
            token,
            interval,
            state: Mutex::default(),
            writing: tokio::sync::Mutex::new(()),
            closed: CancellationToken::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change of the state completes before anything that could
        // panic, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `fraction` and `note` as the latest value: written now when
    /// the interval since the last write has passed, else by a timer when it
    /// has (or by [`close`](Self::close)).
    pub(crate) async fn report(self: &Arc<Self>, fraction: f32, note: String) -> Result<(), ProgressError> {
        if !valid_fraction(fraction) {
            return Err(ProgressError::InvalidFraction(fraction));
        }
        let note = bounded_note(note);
        {
            let mut st = self.lock();
            if st.lost {
                return Err(ProgressError::LeaseLost(self.id.clone()));
            }
            if st.closed {
                return Err(ProgressError::Ended(self.id.clone()));
            }
            st.pending = Some((fraction, note));
            let now = Instant::now();
            if let Some(due) = st.last_write.map(|t| t + self.interval).filter(|due| *due > now) {
                self.arm(&mut st, due);
                return Ok(());
            }
            st.last_write = Some(now);
        }
        self.write_pending().await
    }

    /// Starts the timer that writes the pending value at `due`, unless one
    /// runs already.
    fn arm(self: &Arc<Self>, st: &mut State, due: Instant) {
        if st.timer {
            return;
        }
        st.timer = true;
        let this = Arc::clone(self);
        tokio::spawn(async move { this.timer(due).await });
    }

    async fn timer(self: Arc<Self>, mut due: Instant) {
        loop {
            tokio::select! {
                _ = self.closed.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {}
            }
            let mut st = self.lock();
            if st.closed || st.pending.is_none() {
                st.timer = false;
                return;
            }
            // A call that found the interval over wrote meanwhile: wait for
            // the interval after that write.
            let now = Instant::now();
            if let Some(next) = st.last_write.map(|t| t + self.interval).filter(|next| *next > now) {
                due = next;
                continue;
            }
            st.timer = false;
            st.last_write = Some(now);
            break;
        }
        if let Err(e) = self.write_pending().await {
            tracing::warn!(job = %self.id, error = %e, "could not store the job's progress");
        }
    }

    /// Writes the pending value, if any, unless the attempt was closed.
    async fn write_pending(self: &Arc<Self>) -> Result<(), ProgressError> {
        let _writing = self.writing.lock().await;
        let Some(value) = ({
            let mut st = self.lock();
            if st.closed {
                None
            } else {
                st.pending.take()
            }
        }) else {
            return Ok(());
        };
        self.write(value).await
    }

    /// One write to the backend (under `writing`). A failed write keeps its
    /// value for the next interval unless a newer one came meanwhile.
    async fn write(self: &Arc<Self>, (fraction, note): (f32, String)) -> Result<(), ProgressError> {
        let update = ProgressUpdate { id: self.id.clone(), token: self.token, fraction, note };
        match self.queue.report_progress(&update).await {
            Ok(ProgressWrite::Stored) => Ok(()),
            Ok(ProgressWrite::Stale) => {
                self.lock().lost = true;
                Err(ProgressError::LeaseLost(self.id.clone()))
            }
            Err(source) => {
                let mut st = self.lock();
                if !st.closed {
                    let due = Instant::now() + self.interval;
                    st.pending.get_or_insert((update.fraction, update.note));
                    self.arm(&mut st, due);
                }
                Err(ProgressError::Backend { id: self.id.clone(), source })
            }
        }
    }

    /// Ends the attempt's reporting: the value held back, if any, is written
    /// now (after a write under way), and nothing is written from then on.
    /// Called before the attempt's end is reported.
    pub(crate) async fn close(self: &Arc<Self>) {
        let _writing = self.writing.lock().await;
        let value = {
            let mut st = self.lock();
            st.closed = true;
            st.pending.take().filter(|_| !st.lost)
        };
        self.closed.cancel();
        if let Some(value) = value {
            if let Err(e) = self.write(value).await {
                tracing::warn!(job = %self.id, error = %e, "could not store the job's last progress");
            }
        }
    }

    /// Turns every later write away without writing what is held back (the
    /// pool was killed: nothing more is reported).
    pub(crate) fn abandon(&self) {
        self.lock().closed = true;
        self.closed.cancel();
    }
}
