//! What the run's tasks share and the verdict reads: the jobs Redis
//! acknowledged, the faults injected, the state the tasks share while a run
//! lasts, and the few helpers every part uses with them.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use jobs_core::JobId;
use serde::Serialize;

use crate::jobs::Kind;

/// A job whose enqueue Redis acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Acked {
    pub(crate) id: JobId,
    pub(crate) kind: Kind,
    pub(crate) ack_ms: u64,
}

/// What the run's tasks share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) acked: Mutex<Vec<Acked>>,
    pub(crate) faults: Mutex<Vec<FaultEvent>>,
    pub(crate) enqueue_errors: AtomicU64,
    pub(crate) finished_checked: AtomicU64,
    pub(crate) resurrected: AtomicU64,
    pub(crate) hang_cancels: AtomicU64,
    pub(crate) done: AtomicBool,
    pub(crate) notes: Mutex<Vec<String>>,
    pub(crate) problems: Mutex<Vec<String>>,
    progress: bool,
}

impl Shared {
    /// Nothing recorded yet; `progress` prints faults and notes as they
    /// come.
    pub(crate) fn new(progress: bool) -> Self {
        Shared { progress, ..Shared::default() }
    }

    /// An injected fault.
    pub(crate) fn record(&self, f: FaultEvent) {
        if self.progress {
            eprintln!("jobs-chaos: fault {:?} pid {:?}", f.kind, f.pid);
        }
        lock(&self.faults).push(f);
    }

    /// Something worth knowing that is not a failure.
    pub(crate) fn note(&self, s: String) {
        if self.progress {
            eprintln!("jobs-chaos: {s}");
        }
        lock(&self.notes).push(s);
    }

    /// A failed check.
    pub(crate) fn problem(&self, s: String) {
        eprintln!("jobs-chaos: PROBLEM: {s}");
        lock(&self.problems).push(s);
    }
}

/// What was done to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A worker process SIGKILLed (then restarted).
    WorkerKill,
    /// A worker process ended by a poison job (then restarted).
    WorkerCrash,
    /// A worker process stopped (SIGSTOP) for longer than its lease, then
    /// continued (SIGCONT).
    WorkerStop,
    /// `redis-server` SIGKILLed and restarted at once from its AOF.
    RedisCrash,
    /// `redis-server` SIGKILLed and left down (connections refused), then
    /// restarted from its AOF.
    RedisOutage,
    /// `redis-server` frozen (SIGSTOP: connections hang), then continued.
    RedisFreeze,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::WorkerKill,
        FaultKind::WorkerCrash,
        FaultKind::WorkerStop,
        FaultKind::RedisCrash,
        FaultKind::RedisOutage,
        FaultKind::RedisFreeze,
    ];

    /// A short description for the table.
    pub const fn label(self) -> &'static str {
        match self {
            FaultKind::WorkerKill => "worker process SIGKILLed, restarted",
            FaultKind::WorkerCrash => "worker process ended by a poison job",
            FaultKind::WorkerStop => "worker process SIGSTOPped 3 leases, SIGCONT",
            FaultKind::RedisCrash => "redis-server SIGKILLed, restarted (AOF)",
            FaultKind::RedisOutage => "redis-server down (refusing), restarted",
            FaultKind::RedisFreeze => "redis-server frozen (SIGSTOP), SIGCONT",
        }
    }

    /// Whether it hits Redis (every worker's leases), not one process.
    pub const fn is_redis(self) -> bool {
        matches!(self, FaultKind::RedisCrash | FaultKind::RedisOutage | FaultKind::RedisFreeze)
    }
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultEvent {
    /// What.
    pub kind: FaultKind,
    /// The worker process hit, for worker faults.
    pub pid: Option<u32>,
    /// When it began (Unix ms).
    pub start_ms: u64,
    /// When it was over: the process continued, Redis answered again (Unix
    /// ms; equal to `start_ms` for a kill).
    pub end_ms: u64,
}

/// Locks `m`, also when a panic elsewhere poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the value whole; a panic elsewhere does
    // not make it unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix milliseconds of a time.
pub(crate) fn ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}
