//! The benchmark's job: a no-op with a 50-byte payload, and the sink where
//! its runs are counted and timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs_core::prelude::*;
use jobs_core::NewJob;

/// The queue every scenario uses (each under a key prefix or store of its
/// own).
pub const QUEUE: &str = "bench";

/// The serialized payload's size in bytes: `{"t":<19 digits>,"p":"<18>"}`.
pub const PAYLOAD_BYTES: usize = 50;

const PAD: &str = "xxxxxxxxxxxxxxxxxx";

/// A job that does nothing but note when it started. `t` is a time in
/// nanoseconds since the Unix epoch: when it was enqueued (latency runs) or
/// when it was due (delayed runs).
#[job(name = "bench.noop", queue = "bench", retries = 0)]
pub async fn bench_noop(t: u64, p: String) -> Result<(), JobError> {
    let _ = p;
    SINK.ran(t);
    Ok(())
}

impl BenchNoop {
    /// A job stamped with `t` (nanoseconds since the epoch; 19 digits for
    /// any time between 2001 and 2286, so the payload is always 50 bytes).
    pub fn at(t: u64) -> Self {
        BenchNoop { t, p: PAD.to_owned() }
    }

    /// A job stamped now.
    pub fn now() -> Self {
        Self::at(now_ns())
    }

    /// Validated and serialized, ready for `enqueue_many`.
    pub fn new_job(self) -> Result<NewJob, jobs_core::Error> {
        self.into_new_job(JobOptions::new())
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    ns_of(SystemTime::now())
}

/// A time as nanoseconds since the Unix epoch.
pub fn ns_of(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()).unwrap_or(u64::MAX)
}

/// Where runs of [`BenchNoop`] are counted, and timed while recording.
pub struct Sink {
    done: AtomicU64,
    recording: AtomicBool,
    samples: Mutex<Vec<i64>>,
}

/// The one sink: scenarios run one at a time.
pub static SINK: Sink =
    Sink { done: AtomicU64::new(0), recording: AtomicBool::new(false), samples: Mutex::new(Vec::new()) };

impl Sink {
    pub(crate) fn ran(&self, t: u64) {
        if self.recording.load(Ordering::Relaxed) {
            // Signed: a delayed job that starts early shows as negative.
            let delta = i64::try_from(now_ns()).unwrap_or(i64::MAX) - i64::try_from(t).unwrap_or(i64::MAX);
            self.lock().push(delta);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        // A push never panics half way: the vector is valid in any state.
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Zeroes the count and the samples; `record` turns timing on or off.
    pub fn reset(&self, record: bool) {
        self.lock().clear();
        self.done.store(0, Ordering::SeqCst);
        self.recording.store(record, Ordering::SeqCst);
    }

    /// Runs since the last reset.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The samples recorded since the last reset (nanoseconds), and stops
    /// recording.
    pub fn take(&self) -> Vec<i64> {
        self.recording.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.lock())
    }

    /// Waits until `n` runs were counted, or `limit` passed; reports
    /// progress through `tick` about twice a second.
    pub async fn wait_for(&self, n: u64, limit: Duration, mut tick: impl FnMut(u64)) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = tokio::time::Instant::now();
        loop {
            let d = self.done();
            if d >= n {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now > deadline {
                return false;
            }
            if now.duration_since(last) > Duration::from_millis(500) {
                tick(d);
                last = now;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A fetch of up to `max` jobs of [`QUEUE`] under a 60 s lease, as the
/// fixed-batch examples make it.
pub fn fetch_request(max: usize) -> jobs_core::backend::FetchRequest {
    jobs_core::backend::FetchRequest {
        queues: vec![QUEUE.into()],
        max,
        lease: Duration::from_secs(60),
        default_max_retries: 0,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_fifty_bytes() {
        let j = BenchNoop::now().new_job().unwrap();
        assert_eq!(j.payload.len(), PAYLOAD_BYTES, "{}", String::from_utf8_lossy(&j.payload));
    }
}
