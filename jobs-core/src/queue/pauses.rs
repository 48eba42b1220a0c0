//! Names (queues, a queue's partitions) left out of fetches for a while
//! after their fetch failed: a pause that doubles with every failure in a
//! row, so that one broken part neither stops the others nor is hammered.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The first pause after a failure.
pub const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Names left out until a time, each with its current pause: the pool's
/// failing queues, a backend's failing partitions.
///
/// ```
/// use jobs_core::backend::FailurePauses;
/// use tokio::time::Instant;
///
/// let mut p = FailurePauses::default();
/// let now = Instant::now();
/// p.failed("email", now);
/// assert!(p.paused("email", now));
/// p.served("email");
/// assert!(!p.paused("email", now));
/// ```
#[derive(Debug, Default, Clone)]
pub struct FailurePauses {
    paused: HashMap<String, (Instant, Duration)>,
}

impl FailurePauses {
    /// Records that `name` failed at `now`: it is left out for
    /// [`FIRST_PAUSE`], or twice its last pause when it failed before (at
    /// most [`LONGEST_PAUSE`]). Returns the pause.
    pub fn failed(&mut self, name: &str, now: Instant) -> Duration {
        let next = self.paused.get(name).map_or(FIRST_PAUSE, |(_, d)| (*d * 2).min(LONGEST_PAUSE));
        self.paused.insert(name.to_owned(), (now + next, next));
        next
    }

    /// Forgets `name`'s failures: it was served.
    pub fn served(&mut self, name: &str) {
        if !self.paused.is_empty() {
            self.paused.remove(name);
        }
    }

    /// Whether `name` is left out at `now`.
    pub fn paused(&self, name: &str, now: Instant) -> bool {
        self.left(name, now).is_some()
    }

    /// How long `name` is still left out from `now` (`None`: it is not).
    pub fn left(&self, name: &str, now: Instant) -> Option<Duration> {
        self.paused.get(name).filter(|(until, _)| *until > now).map(|(until, _)| *until - now)
    }

    /// When the first name left out may be tried again.
    pub fn next_retry(&self) -> Option<Instant> {
        self.paused.values().map(|(until, _)| *until).min()
    }

    /// Whether no name has failed.
    pub fn is_empty(&self) -> bool {
        self.paused.is_empty()
    }
}
