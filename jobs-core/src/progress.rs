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
    /// Notified by `close`: wakes a timer waiting for its interval (one
    /// not waiting yet finds the state closed when it wakes).
    wake_timer: tokio::sync::Notify,
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
            wake_timer: tokio::sync::Notify::new(),
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
                _ = self.wake_timer.notified() => return,
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
        self.wake_timer.notify_waiters();
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
        self.wake_timer.notify_waiters();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use super::*;
    use crate::memory::MemoryQueue;
    use crate::queue::{forward_fns, BoxFuture, FetchRequest, NewJob, QueueInspect};
    use crate::vocab::Priority;

    const INTERVAL: Duration = Duration::from_millis(250);

    /// A `MemoryQueue` that counts the progress writes that reach the port.
    struct Counting {
        inner: MemoryQueue,
        writes: AtomicUsize,
    }

    impl JobQueue for Counting {
        forward_fns!(s => &s.inner; enqueue_many, fetch, finish, extend_leases, waiter, now, payload_format,
            schedule_store, presence);

        fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.inner.report_progress(update)
        }
    }

    /// A running job on a counting store, and its lease token.
    async fn running() -> (Arc<Counting>, JobId, u64) {
        let q = Arc::new(Counting { inner: MemoryQueue::new(), writes: AtomicUsize::new(0) });
        let job = NewJob {
            id: JobId::new("progress"),
            name: "render".into(),
            payload: b"{}".to_vec(),
            format: crate::payload::PayloadFormat::Json,
            priority: Priority::Normal,
            max_retries: None,
            timeout: None,
            run_at: None,
            unique_for: None,
            expires: None,
            enqueued_at: SystemTime::now(),
            headers: Default::default(),
            caller_id: None,
            key: None,
            group: None,
        };
        let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);
        let req = FetchRequest {
            queues: vec!["progress".into()],
            max: 1,
            lease: Duration::from_secs(60),
            default_max_retries: 3,
            max_crashes: 3,
        };
        let token = q.fetch(&req).await.unwrap().jobs.remove(0).token;
        (q, id, token)
    }

    async fn stored(q: &Counting, id: &JobId) -> Option<(f32, String)> {
        q.inner.job(id).await.unwrap().unwrap().progress.map(|p| (p.fraction, p.note))
    }

    /// Lets spawned timers run after the clock moved.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_tight_loop_writes_once_per_interval_and_its_last_value_at_close() {
        let (q, id, token) = running().await;
        let r = Reporter::new(q.clone(), id.clone(), token, INTERVAL);
        const CALLS: u32 = 20_000;
        for i in 1..=CALLS {
            if i % 1_000 == 1 && i > 1 {
                // 20 batches 50 ms apart: the last at 950 ms.
                tokio::time::advance(Duration::from_millis(50)).await;
                settle().await;
            }
            r.report(i as f32 / CALLS as f32, format!("step {i}")).await.unwrap();
        }
        let before_close = q.writes.load(Ordering::SeqCst);
        // The first at once, then one per 250 ms: at 250, 500 and 750 ms.
        assert_eq!(before_close, 4, "{before_close} writes for {CALLS} calls in 950 ms");
        r.close().await;
        assert_eq!(q.writes.load(Ordering::SeqCst), before_close + 1, "the last value is written at close");
        assert_eq!(stored(&q, &id).await, Some((1.0, format!("step {CALLS}"))));
        assert!(matches!(r.report(0.5, "late".into()).await, Err(ProgressError::Ended(_))));
        tokio::time::advance(INTERVAL * 4).await;
        settle().await;
        assert_eq!(q.writes.load(Ordering::SeqCst), before_close + 1, "nothing after close");
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_held_back_is_written_when_the_interval_passes() {
        let (q, id, token) = running().await;
        let r = Reporter::new(q.clone(), id.clone(), token, INTERVAL);
        r.report(0.1, "a".into()).await.unwrap();
        r.report(0.2, "b".into()).await.unwrap();
        r.report(0.3, "c".into()).await.unwrap();
        assert_eq!((q.writes.load(Ordering::SeqCst), stored(&q, &id).await), (1, Some((0.1, "a".into()))));
        tokio::time::advance(INTERVAL).await;
        settle().await;
        assert_eq!((q.writes.load(Ordering::SeqCst), stored(&q, &id).await), (2, Some((0.3, "c".into()))));
        r.close().await;
        assert_eq!(q.writes.load(Ordering::SeqCst), 2, "nothing held back: close writes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_lease_is_reported_and_stops_the_writes() {
        let (q, id, token) = running().await;
        let r = Reporter::new(q.clone(), id.clone(), token + 1, INTERVAL);
        assert!(matches!(r.report(0.5, "x".into()).await, Err(ProgressError::LeaseLost(_))));
        tokio::time::advance(INTERVAL).await;
        assert!(matches!(r.report(0.6, "y".into()).await, Err(ProgressError::LeaseLost(_))));
        r.close().await;
        assert_eq!(q.writes.load(Ordering::SeqCst), 1);
        assert_eq!(stored(&q, &id).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn bad_fractions_are_typed_errors_and_long_notes_are_cut() {
        let (q, id, token) = running().await;
        let r = Reporter::new(q.clone(), id.clone(), token, INTERVAL);
        for bad in [f32::NAN, -0.1, 1.1] {
            assert!(matches!(r.report(bad, String::new()).await, Err(ProgressError::InvalidFraction(_))), "{bad}");
        }
        assert_eq!(q.writes.load(Ordering::SeqCst), 0);
        r.report(1.0, "ü".repeat(300)).await.unwrap();
        let (_, note) = stored(&q, &id).await.unwrap();
        assert_eq!(note, "ü".repeat(crate::queue::MAX_PROGRESS_NOTE / 2));
    }
}
