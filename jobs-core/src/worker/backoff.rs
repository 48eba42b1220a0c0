//! Retry delays: exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// How long to wait before a retry: `base * factor^(attempt-1)`, capped,
/// with "equal jitter" (a random point in the upper half of the delay) so
/// that jobs failing together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use jobs_core::Backoff;
/// let b = Backoff::default(); // 5 s, x2, at most 1 h
/// let d = b.delay(3);          // about 20 s
/// assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// The largest delay.
    pub cap: Duration,
    /// Whether to spread delays randomly (on by default).
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(5), factor: 2.0, cap: Duration::from_secs(3600), jitter: true }
    }
}

impl Backoff {
    /// A backoff with this base, factor 2 and a 1 h cap.
    pub fn with_base(base: Duration) -> Self {
        Backoff { base, ..Self::default() }
    }

    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        let full = Duration::from_secs_f64(secs.max(0.0));
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        half + Duration::from_secs_f64(rand::rng().random_range(0.0..=half.as_secs_f64()))
    }
}
