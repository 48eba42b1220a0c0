//! Queues whose fetch failed, each left out of fetches for a while that
//! doubles with every failure in a row ([`FailurePauses`]), so that one
//! broken queue neither stops the others nor is hammered.

use tokio::time::Instant;

use crate::queue::{FailurePauses, QueueFailure};

/// Queues left out of fetches until a time, with their next pause.
#[derive(Debug, Default)]
pub(crate) struct FailingQueues {
    paused: FailurePauses,
}

impl FailingQueues {
    /// Records the queues a fetch could not serve, logging each once per
    /// failure.
    pub(crate) fn failed(&mut self, failures: &[QueueFailure], now: Instant) {
        for f in failures {
            let retry_in = self.paused.failed(&f.queue, now);
            tracing::warn!(queue = %f.queue, error = %f.error, ?retry_in, "fetch failed for this queue; serving the others");
        }
    }

    /// Forgets queues that a fetch served again.
    pub(crate) fn served(&mut self, queues: &[String], failures: &[QueueFailure]) {
        if self.paused.is_empty() {
            return;
        }
        for q in queues {
            if !failures.iter().any(|f| &f.queue == q) {
                self.paused.served(q);
            }
        }
    }

    /// `order` without the queues still paused at `now`.
    pub(crate) fn filter(&self, mut order: Vec<String>, now: Instant) -> Vec<String> {
        if !self.paused.is_empty() {
            order.retain(|q| !self.paused.paused(q, now));
        }
        order
    }

    /// When the first paused queue may be fetched again.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.paused.next_retry()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::FIRST_PAUSE as FIRST;

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
