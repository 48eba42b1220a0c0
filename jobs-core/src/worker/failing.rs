//! Queues whose fetch failed, each left out of fetches for a while that
//! doubles with every failure in a row, so that one broken queue neither
//! stops the others nor is hammered.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::queue::QueueFailure;

/// The first pause after a queue's fetch failed.
const FIRST: Duration = Duration::from_millis(100);
/// The longest pause.
const CAP: Duration = Duration::from_secs(5);

/// Queues left out of fetches until a time, with their next pause.
#[derive(Debug, Default)]
pub(crate) struct FailingQueues {
    paused: HashMap<String, (Instant, Duration)>,
}

impl FailingQueues {
    /// Records the queues a fetch could not serve, logging each once per
    /// failure.
    pub(crate) fn failed(&mut self, failures: &[QueueFailure], now: Instant) {
        for f in failures {
            let next = self.paused.get(&f.queue).map_or(FIRST, |(_, d)| (*d * 2).min(CAP));
            tracing::warn!(queue = %f.queue, error = %f.error, retry_in = ?next, "fetch failed for this queue; serving the others");
            self.paused.insert(f.queue.clone(), (now + next, next));
        }
    }

    /// Forgets queues that a fetch served again.
    pub(crate) fn served(&mut self, queues: &[String], failures: &[QueueFailure]) {
        if self.paused.is_empty() {
            return;
        }
        for q in queues {
            if !failures.iter().any(|f| &f.queue == q) {
                self.paused.remove(q);
            }
        }
    }

    /// `order` without the queues still paused at `now`.
    pub(crate) fn filter(&self, mut order: Vec<String>, now: Instant) -> Vec<String> {
        if !self.paused.is_empty() {
            order.retain(|q| self.paused.get(q).is_none_or(|(until, _)| *until <= now));
        }
        order
    }

    /// When the first paused queue may be fetched again.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.paused.values().map(|(until, _)| *until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(q: &str) -> QueueFailure {
        QueueFailure { queue: q.into(), error: "boom".into() }
    }

    #[test]
    fn a_failing_queue_is_left_out_then_tried_again_with_a_longer_pause() {
        let mut f = FailingQueues::default();
        let t0 = Instant::now();
        let all = vec!["a".to_owned(), "b".to_owned()];
        f.failed(&[fail("b")], t0);
        assert_eq!(f.filter(all.clone(), t0), vec!["a".to_owned()]);
        assert_eq!(f.next_retry(), Some(t0 + FIRST));
        assert_eq!(f.filter(all.clone(), t0 + FIRST), all);
        f.failed(&[fail("b")], t0 + FIRST);
        assert_eq!(f.next_retry(), Some(t0 + FIRST + FIRST * 2));
        f.served(&all, &[]);
        assert_eq!(f.next_retry(), None);
        assert_eq!(f.filter(all.clone(), t0), all);
    }
}
