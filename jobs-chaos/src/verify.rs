//! The verdict: every acknowledged job against what ran.
//!
//! - **Lost**: acknowledged to a producer, absent from Redis.
//! - **Never ran**: finished (or not) without one started attempt in any run
//!   log (`chaos.hang` jobs excepted: one cancelled right as its worker died
//!   may end without running).
//! - **Wrong status**: not the end its kind must reach ([`Kind::expected`]).
//! - **Duplicates**: runs whose attempt the job's record shows as `lease
//!   expired` (its result never counted; the job ran again). Each must be
//!   explained by an injected fault that could have cost that lease: a kill
//!   or crash of the run's process after it started, a stop of its process
//!   while it ran, or a Redis fault while it ran or was being acknowledged.
//!   A poison job's own crashes are its retries, not duplicates.
//! - **Stale overwrites**: a success recorded before the run of the final
//!   attempt ended (a late ack of an older attempt won), or no finished run
//!   for the recorded success.
//! - **Runs after finish**: a run that started after its job had finished.

use std::collections::{BTreeMap, HashMap, HashSet};

use jobs_core::{JobInfo, JobStatus};
use serde::Serialize;

use crate::faults::{FaultEvent, FaultKind};
use crate::jobs::Kind;
use crate::run::Acked;
use crate::runlog::{Run, RunLogs};

/// The error text of an attempt that lost its lease (set by the backend).
const LEASE_LOST: &str = "lease expired";

/// How long after a run ended its lease may still be lost: the ack loop
/// retries with a back-off of up to 5 s while Redis is away, and the lease
/// outlives the last heartbeat by one lease.
const ACK_SLACK_MS: u64 = 6_000;

/// How long after a run ended a fault of its own process may still have
/// kept its ack from Redis (acks go out in batches within milliseconds).
const OWN_SLACK_MS: u64 = 1_000;

/// What the checks found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Findings {
    /// Acknowledged but not stored.
    pub lost: u64,
    /// Not finished after the drain.
    pub unfinished: u64,
    /// Finished in another status than their kind's.
    pub wrong_status: u64,
    /// Never started.
    pub never_ran: u64,
    /// Runs in all (started attempts in the run logs).
    pub runs: u64,
    /// Runs whose lease was lost, so the job ran again.
    pub duplicates: u64,
    /// Duplicates per explaining fault.
    pub duplicates_by_cause: BTreeMap<String, u64>,
    /// Duplicates that no injected fault explains.
    pub unexplained_duplicates: u64,
    /// Runs of stopped workers that returned after SIGCONT, whose late
    /// result was refused while a newer attempt won.
    pub late_results_refused: u64,
    /// Successes recorded before their run ended, or without a finished run.
    pub stale_overwrites: u64,
    /// Runs that started after their job had finished.
    pub runs_after_finish: u64,
    /// Attempts that lost their lease without a run (the worker died, or
    /// Redis went away, between the lease and the handler's start).
    pub leases_lost_without_run: u64,
    /// Jobs per final status.
    pub by_status: BTreeMap<String, u64>,
    /// The first problems, one sentence each.
    pub problems: Vec<String>,
}

impl Findings {
    fn problem(&mut self, s: String) {
        if self.problems.len() < 50 {
            self.problems.push(s);
        }
    }
}

/// Checks every acknowledged job (`infos[i]` is `acked[i]`'s record).
pub(crate) fn check(
    acked: &[Acked],
    infos: &[Option<JobInfo>],
    logs: &RunLogs,
    faults: &[FaultEvent],
    lease_ms: u64,
) -> Findings {
    let mut f = Findings::default();
    for (a, info) in acked.iter().zip(infos) {
        let id = a.id.to_string();
        let runs = logs.of(&id);
        f.runs += runs.len() as u64;
        let Some(info) = info else {
            f.lost += 1;
            f.problem(format!(
                "LOST: {id} ({}) was acknowledged at {} ms and is not in Redis",
                a.kind.as_str(),
                a.ack_ms
            ));
            continue;
        };
        *f.by_status.entry(info.status.as_str().to_owned()).or_default() += 1;
        if !info.status.is_finished() {
            f.unfinished += 1;
            f.problem(format!("{id} ({}) is still {} after the drain", a.kind.as_str(), info.status));
        } else if info.status != a.kind.expected() {
            f.wrong_status += 1;
            f.problem(format!(
                "{id} ({}) ended {} instead of {}; last error: {:?}",
                a.kind.as_str(),
                info.status,
                a.kind.expected(),
                info.last_error().map(|e| e.chars().take(200).collect::<String>())
            ));
        }
        if runs.is_empty() && a.kind != Kind::Hang {
            f.never_ran += 1;
            f.problem(format!("{id} ({}) never started; status {}", a.kind.as_str(), info.status));
        }
        check_runs(&mut f, a.kind, &id, info, runs, faults, lease_ms);
        for stop in faults.iter().filter(|e| e.kind == FaultKind::WorkerStop) {
            f.late_results_refused += late_results(info, runs, stop, lease_ms);
        }
    }
    f
}

fn check_runs(
    f: &mut Findings,
    kind: Kind,
    id: &str,
    info: &JobInfo,
    runs: &[Run],
    faults: &[FaultEvent],
    lease_ms: u64,
) {
    let by_attempt: HashMap<u32, &jobs_core::AttemptInfo> = info.attempt_log.iter().map(|a| (a.attempt, a)).collect();
    let mut seen = HashSet::new();
    for run in runs {
        if !seen.insert(run.attempt) {
            f.unexplained_duplicates += 1;
            f.problem(format!("{id}: attempt {} ran twice (pid {})", run.attempt, run.pid));
            continue;
        }
        let Some(entry) = by_attempt.get(&run.attempt) else {
            f.unexplained_duplicates += 1;
            f.problem(format!("{id}: attempt {} ran (pid {}) but the job has no record of it", run.attempt, run.pid));
            continue;
        };
        let lost = entry.error.as_deref().is_some_and(|e| e.contains(LEASE_LOST));
        if !lost || kind == Kind::Poison {
            continue;
        }
        f.duplicates += 1;
        match explain(run, faults, lease_ms) {
            Some(cause) => *f.duplicates_by_cause.entry(cause.to_owned()).or_default() += 1,
            None => {
                f.unexplained_duplicates += 1;
                f.problem(format!(
                    "{id}: attempt {} (pid {}, {}..{:?} ms) lost its lease with no fault to explain it",
                    run.attempt, run.pid, run.start_ms, run.end_ms
                ));
            }
        }
    }
    let ran: HashSet<u32> = runs.iter().map(|r| r.attempt).collect();
    f.leases_lost_without_run += info
        .attempt_log
        .iter()
        .filter(|a| !ran.contains(&a.attempt) && a.error.as_deref().is_some_and(|e| e.contains(LEASE_LOST)))
        .count() as u64;
    let finished_ms = info.finished_at.map(crate::report::ms);
    if let Some(done) = finished_ms {
        for r in runs.iter().filter(|r| r.start_ms > done) {
            f.runs_after_finish += 1;
            f.problem(format!(
                "{id}: attempt {} started at {} ms, after the job finished at {done} ms",
                r.attempt, r.start_ms
            ));
        }
    }
    if info.status == JobStatus::Succeeded {
        let last = info.attempt_log.last();
        let final_run = runs.iter().find(|r| r.attempt == info.attempts);
        match (last, final_run.and_then(|r| r.end_ms)) {
            (Some(last), Some(end)) if last.attempt == info.attempts && last.error.is_none() => {
                let recorded = last.finished_at.map_or(0, crate::report::ms);
                if recorded < end {
                    f.stale_overwrites += 1;
                    f.problem(format!(
                        "{id}: success of attempt {} recorded at {recorded} ms, before its run ended at {end} ms",
                        info.attempts
                    ));
                }
            }
            _ => {
                f.stale_overwrites += 1;
                f.problem(format!(
                    "{id}: succeeded at attempt {} without a finished run of that attempt (log: {:?})",
                    info.attempts,
                    info.attempt_log.iter().map(|a| (a.attempt, a.error.is_some())).collect::<Vec<_>>()
                ));
            }
        }
    }
}

/// The fault that explains a run's lost lease, if any: its own process
/// stopped, killed or crashed while it ran (or within a second of its end,
/// before its ack went out), else Redis away while it ran or while its ack
/// was being retried.
fn explain(run: &Run, faults: &[FaultEvent], lease_ms: u64) -> Option<&'static str> {
    let end = run.end_ms.unwrap_or(u64::MAX);
    let overlaps =
        |e: &FaultEvent, slack: u64| e.end_ms + 50 >= run.start_ms && e.start_ms <= end.saturating_add(slack);
    let own = |k: FaultKind| faults.iter().any(|e| e.kind == k && e.pid == Some(run.pid) && overlaps(e, OWN_SLACK_MS));
    if own(FaultKind::WorkerStop) {
        return Some("worker_stopped");
    }
    if own(FaultKind::WorkerKill) {
        return Some("worker_killed");
    }
    if own(FaultKind::WorkerCrash) {
        return Some("worker_crashed_by_poison_job");
    }
    let redis = faults.iter().find(|e| e.kind.is_redis() && overlaps(e, ACK_SLACK_MS + lease_ms));
    redis.map(|e| match e.kind {
        FaultKind::RedisCrash => "redis_crashed",
        FaultKind::RedisOutage => "redis_down",
        _ => "redis_frozen",
    })
}

/// Runs of the stopped process in flight at the stop that returned after
/// their lease had run out, whose attempt lost its lease while a later
/// attempt exists: the late result was refused and the newer attempt won.
fn late_results(info: &JobInfo, runs: &[Run], stop: &FaultEvent, lease_ms: u64) -> u64 {
    let mut n = 0;
    for r in runs.iter().filter(|r| Some(r.pid) == stop.pid) {
        let in_flight = r.start_ms <= stop.start_ms && r.end_ms.is_none_or(|e| e >= stop.start_ms);
        let returned_late = r.end_ms.is_some_and(|e| e >= stop.start_ms + lease_ms);
        let lost = info
            .attempt_log
            .iter()
            .any(|x| x.attempt == r.attempt && x.error.as_deref().is_some_and(|e| e.contains(LEASE_LOST)));
        if in_flight && returned_late && lost && info.attempts > r.attempt {
            n += 1;
        }
    }
    n
}
