//! A queue's circuit breaker in `MemoryQueue` (see `Breaker`).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::queue::{Breaker, BreakerInfo, BreakerState};
use crate::vocab::JobId;

/// The breaker's state, its failures in the current window, and how often
/// it opened.
pub(super) struct BreakerRun {
    state: BreakerState,
    failures: VecDeque<SystemTime>,
    opened: u64,
}

impl Default for BreakerRun {
    fn default() -> Self {
        BreakerRun { state: BreakerState::Closed, failures: VecDeque::new(), opened: 0 }
    }
}

impl BreakerRun {
    /// How many jobs a fetch may start at `now` (`None`: no bound from the
    /// breaker; 1: a probe), and when the breaker lets one start again when
    /// it lets none now.
    pub(super) fn room(&self, now: SystemTime) -> (Option<usize>, Option<SystemTime>) {
        match &self.state {
            BreakerState::Closed => (None, None),
            BreakerState::Open { until } | BreakerState::Probing { until, .. } if now < *until => {
                (Some(0), Some(*until))
            }
            _ => (Some(1), None),
        }
    }

    /// Job `job` was leased as the probe, its lease ending at `until`.
    pub(super) fn probe_started(&mut self, job: JobId, until: SystemTime) {
        self.state = BreakerState::Probing { job, until };
    }

    /// An attempt of `job` failed at `now`: counted, and the breaker opens
    /// past its bound or when the probe failed.
    pub(super) fn failed(&mut self, config: Option<&Breaker>, job: &JobId, now: SystemTime) {
        let Some(b) = config else { return };
        match &self.state {
            BreakerState::Probing { job: probe, .. } if probe == job => self.open(now + b.cooldown),
            BreakerState::Closed => {
                self.failures.push_back(now);
                self.trim(b.within, now);
                if self.failures.len() >= b.failures as usize {
                    self.open(now + b.cooldown);
                }
            }
            _ => {}
        }
    }

    /// `job` succeeded: the breaker closes when it was the probe; whether
    /// it did.
    pub(super) fn succeeded(&mut self, job: &JobId) -> bool {
        if matches!(&self.state, BreakerState::Probing { job: probe, .. } if probe == job) {
            self.close();
            return true;
        }
        false
    }

    /// Opens the breaker until `until`.
    pub(super) fn open(&mut self, until: SystemTime) {
        self.state = BreakerState::Open { until };
        self.failures.clear();
        self.opened += 1;
    }

    /// Closes the breaker and forgets the failures counted.
    pub(super) fn close(&mut self) {
        self.state = BreakerState::Closed;
        self.failures.clear();
    }

    fn trim(&mut self, within: Duration, now: SystemTime) {
        while self.failures.front().is_some_and(|t| *t + within <= now) {
            self.failures.pop_front();
        }
    }

    /// Whether it is open or probing.
    pub(super) fn is_open(&self) -> bool {
        self.state != BreakerState::Closed
    }

    /// Whether its probe runs (nothing else may start).
    pub(super) fn is_probing(&self) -> bool {
        matches!(self.state, BreakerState::Probing { .. })
    }

    /// Whether it is closed and counts no failure within `within` of
    /// `now`: nothing left to remember.
    pub(super) fn is_idle(&mut self, within: Option<Duration>, now: SystemTime) -> bool {
        if let Some(w) = within {
            self.trim(w, now);
        }
        self.state == BreakerState::Closed && (within.is_none() || self.failures.is_empty())
    }

    /// `job` stopped running without a verdict (handed back, snoozed,
    /// cancelled, its lease lapsed): when it was the probe, the next job
    /// is one, from `now`.
    pub(super) fn probe_ended(&mut self, job: &JobId, now: SystemTime) {
        if matches!(&self.state, BreakerState::Probing { job: probe, .. } if probe == job) {
            self.state = BreakerState::Open { until: now };
        }
    }

    /// The state as listed (`BreakerInfo::groups`).
    pub(super) fn state(&self) -> &BreakerState {
        &self.state
    }

    /// Times it opened.
    pub(super) fn opened(&self) -> u64 {
        self.opened
    }

    /// The breaker as [`QueueAdmin::breaker`](crate::QueueAdmin::breaker) shows it.
    pub(super) fn info(&self, config: Option<&Breaker>, now: SystemTime) -> BreakerInfo {
        let recent = match config {
            Some(b) => self.failures.iter().filter(|t| **t + b.within > now).count(),
            None => 0,
        };
        BreakerInfo {
            state: self.state.clone(),
            recent_failures: u32::try_from(recent).unwrap_or(u32::MAX),
            opened: self.opened,
            groups_open: 0,
            groups_opened: 0,
            groups: Vec::new(),
        }
    }
}
