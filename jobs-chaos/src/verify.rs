//! The verdict: every acknowledged job against what ran.
//!
//! The library's semantics these checks hold it to (`jobs-core`
//! `WorkerPoolBuilder::crash_budget`, `jobs-redis` `reclaim.lua`): a worker
//! marks an attempt started when its handler starts (the mark goes out
//! with the next acknowledgements, or first and alone for a job that
//! already lost a lease before its start). A lost lease of a started
//! attempt counts as an attempt (`lease expired`); a lost lease without
//! the mark is not an attempt but a crash, against the job's crash budget,
//! and the job runs again *with the same attempt number*; past the budget
//! it ends dead (`... out of its crash budget`). So:
//!
//! - **Lost**: acknowledged to a producer, absent from Redis. Always a
//!   failure.
//! - **Never ran**: finished (or not) without one started attempt in any run
//!   log. Allowed only for a `chaos.hang` job that ended cancelled (one
//!   cancelled right as its worker died) and for a job that ended dead by
//!   faults (below).
//! - **Wrong status**: not the end its kind must reach ([`Kind::expected`]),
//!   unless the job ended dead by faults.
//! - **Dead by faults**: dead because lost leases used up its budget, each
//!   loss explained: either out of its crash budget while at least that
//!   many faults that cost leases happened during its life, or out of
//!   retries with a lost lease as the last attempt and every lost lease of
//!   it explained by a fault.
//! - **Duplicates**: runs whose result never counted because their lease
//!   was lost: the job's record shows the attempt as `lease expired` (or
//!   out of its crash budget), or the same attempt ran again (its start
//!   mark had not reached Redis). Of `k` runs of one attempt, `k - 1` are
//!   duplicates (`k` when the record shows the attempt lost). Each must be
//!   explained by an injected fault that could have cost that lease: a
//!   kill or crash of the run's process after it started, a stop of its
//!   process while it ran (or right before it started), or a Redis fault
//!   while it ran or was being acknowledged. A poison job's own crashes are
//!   its retries, not duplicates.
//! - **Stale overwrites**: a success recorded with no run of the final
//!   attempt that had ended by then (a late ack of an older attempt won).
//! - **Runs after finish**: a run that started after its job had finished,
//!   unless its process had been stopped right before (a job it had leased
//!   before the stop, started on SIGCONT; its result is refused).

use std::collections::{BTreeMap, HashMap};

use jobs_core::{AttemptInfo, JobInfo, JobStatus};
use serde::Serialize;

use crate::jobs::Kind;
use crate::model::{ms, Acked, FaultEvent, FaultKind};
use crate::runlog::{Run, RunLogs};

/// The error text of an attempt that lost its lease after its handler
/// started (set by the backend).
const LEASE_LOST: &str = "lease expired";

/// The error text of a job that lost its lease before its handler started
/// more often than its crash budget allows (set by the backend).
const CRASH_BUDGET: &str = "out of its crash budget";

/// How long after a run ended its lease may still be lost: the ack loop
/// retries with a back-off of up to 5 s while Redis is away, and the lease
/// outlives the last heartbeat by one lease.
const ACK_SLACK_MS: u64 = 6_000;

/// How long after a run ended a fault of its own process may still have
/// kept its ack from Redis (acks go out in batches within milliseconds);
/// also how long after a stop ended its process may start a job it leased
/// before the stop.
const OWN_SLACK_MS: u64 = 1_000;

/// Whether an attempt's error says it lost its lease.
fn lease_lost(error: Option<&str>) -> bool {
    error.is_some_and(|e| e.contains(LEASE_LOST) || e.contains(CRASH_BUDGET))
}

/// What the checks found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Findings {
    /// Acknowledged but not stored.
    pub lost: u64,
    /// Not finished after the drain.
    pub unfinished: u64,
    /// Finished in another status than their kind's, not explained by faults.
    pub wrong_status: u64,
    /// Never started, not explained by faults.
    pub never_ran: u64,
    /// Runs in all (started attempts in the run logs).
    pub runs: u64,
    /// Runs whose lease was lost, so their result never counted.
    pub duplicates: u64,
    /// Duplicates per explaining fault.
    pub duplicates_by_cause: BTreeMap<String, u64>,
    /// Duplicates that no injected fault explains.
    pub unexplained_duplicates: u64,
    /// Of the runs, those followed by a run of the same attempt: the
    /// handler started but its start mark had not reached Redis when the
    /// lease was lost, so the loss was not counted as an attempt.
    pub reran_same_attempt: u64,
    /// Jobs that ended dead (where their kind must not, or without a run)
    /// because lost leases, each explained, used up their budget: per
    /// `crash_budget` (lost before their handler started, past the crash
    /// budget) and `retries_on_lost_leases` (started attempts lost).
    pub dead_by_faults: BTreeMap<String, u64>,
    /// Runs of stopped workers that returned after SIGCONT, whose late
    /// result was refused while a newer attempt won.
    pub late_results_refused: u64,
    /// Successes recorded without a run of the final attempt ended by then.
    pub stale_overwrites: u64,
    /// Runs that started after their job had finished, not explained.
    pub runs_after_finish: u64,
    /// Runs that started after their job had finished, by a process
    /// stopped right before: a job it had leased before the stop.
    pub late_starts_after_stop: u64,
    /// Attempts recorded as lost with no run (the start mark reached Redis,
    /// the worker died before the handler's first line).
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

/// What every job is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Every injected fault.
    pub(crate) faults: &'a [FaultEvent],
    /// The pools' lease (ms).
    pub(crate) lease_ms: u64,
    /// The pools' crash budget.
    pub(crate) crash_budget: u32,
}

/// Checks every acknowledged job (`infos[i]` is `acked[i]`'s record).
pub(crate) fn check(acked: &[Acked], infos: &[Option<JobInfo>], logs: &RunLogs, cx: Context<'_>) -> Findings {
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
        // A hang job cancelled while its lease was taken, before its
        // handler started, ends cancelled without a run.
        let ran = !runs.is_empty() || (a.kind == Kind::Hang && info.status == JobStatus::Cancelled);
        let unexpected = info.status.is_finished() && info.status != a.kind.expected();
        let by_faults = if unexpected || !ran { dead_by_faults(info, runs, a.ack_ms, cx) } else { None };
        if let Some(cause) = by_faults {
            *f.dead_by_faults.entry(cause.to_owned()).or_default() += 1;
        }
        if !info.status.is_finished() {
            f.unfinished += 1;
            f.problem(format!("{id} ({}) is still {} after the drain", a.kind.as_str(), info.status));
        } else if unexpected && by_faults.is_none() {
            f.wrong_status += 1;
            f.problem(format!(
                "{id} ({}) ended {} instead of {}; attempts: {}",
                a.kind.as_str(),
                info.status,
                a.kind.expected(),
                attempts_text(info)
            ));
        }
        if !ran && by_faults.is_none() {
            f.never_ran += 1;
            f.problem(format!(
                "{id} ({}) never started; status {}; attempts: {}",
                a.kind.as_str(),
                info.status,
                attempts_text(info)
            ));
        }
        check_runs(&mut f, a.kind, &id, info, runs, cx);
        for stop in cx.faults.iter().filter(|e| e.kind == FaultKind::WorkerStop) {
            f.late_results_refused += late_results(runs, stop, cx.lease_ms);
        }
    }
    f
}

/// A job's attempts for a problem's sentence: number and error, cut short.
fn attempts_text(info: &JobInfo) -> String {
    let parts: Vec<String> = info
        .attempt_log
        .iter()
        .map(|a| {
            let e = a.error.as_deref().map_or("ok".to_owned(), |e| e.chars().take(80).collect());
            format!("#{} {e}", a.attempt)
        })
        .collect();
    format!("[{}]", parts.join("; "))
}

/// Why a job ended dead by faults, if it did: out of its crash budget
/// while more lease-costing faults than the budget happened in its life,
/// or out of retries with a lost lease last and every lost lease explained.
fn dead_by_faults(info: &JobInfo, runs: &[Run], ack_ms: u64, cx: Context<'_>) -> Option<&'static str> {
    if info.status != JobStatus::Dead {
        return None;
    }
    let last = info.attempt_log.last()?;
    let error = last.error.as_deref()?;
    let end = info.finished_at.map_or(u64::MAX, ms);
    if error.contains(CRASH_BUDGET) {
        // Every fault kind costs leases, and one fault at most one lease of
        // a job: the job is leased again only once the fault that cost it
        // its lease (a worker dead or stopped, Redis away) has hit.
        let during = cx.faults.iter().filter(|e| e.end_ms + 50 >= ack_ms && e.start_ms <= end).count();
        return (during > cx.crash_budget as usize).then_some("crash_budget");
    }
    if !error.contains(LEASE_LOST) {
        return None;
    }
    let every_loss_explained = info.attempt_log.iter().filter(|a| lease_lost(a.error.as_deref())).all(|a| {
        let own: Vec<&Run> = runs.iter().filter(|r| r.attempt == a.attempt).collect();
        if own.is_empty() {
            explain_window(a, cx).is_some()
        } else {
            own.iter().any(|r| explain(r, cx).is_some())
        }
    });
    every_loss_explained.then_some("retries_on_lost_leases")
}

fn check_runs(f: &mut Findings, kind: Kind, id: &str, info: &JobInfo, runs: &[Run], cx: Context<'_>) {
    let by_attempt: HashMap<u32, &AttemptInfo> = info.attempt_log.iter().map(|a| (a.attempt, a)).collect();
    let mut groups: BTreeMap<u32, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        groups.entry(r.attempt).or_default().push(r);
    }
    // Attempts the record leaves out to bound its size (between its first
    // entry and the rest) cannot be checked.
    let omitted = |a: u32| {
        info.attempts_omitted > 0
            && info.attempt_log.first().is_some_and(|first| a > first.attempt)
            && info.attempt_log.get(1).is_some_and(|second| a < second.attempt)
    };
    for (attempt, group) in &groups {
        if omitted(*attempt) {
            continue;
        }
        let Some(entry) = by_attempt.get(attempt) else {
            f.unexplained_duplicates += group.len() as u64;
            f.problem(format!(
                "{id}: attempt {attempt} ran {} time(s) (pids {:?}) but the job has no record of it",
                group.len(),
                group.iter().map(|r| r.pid).collect::<Vec<_>>()
            ));
            continue;
        };
        if kind == Kind::Poison {
            // Its own crashes are its retries (or crashes), not duplicates.
            continue;
        }
        f.reran_same_attempt += group.len() as u64 - 1;
        let superseded = group.len() - 1 + usize::from(lease_lost(entry.error.as_deref()));
        if superseded == 0 {
            continue;
        }
        f.duplicates += superseded as u64;
        // Which runs of the group lost their lease is not recorded (one of
        // them may be the one that counted): each lost one needs a fault,
        // so there must be as many runs with a fault to explain them.
        let mut causes: Vec<&'static str> = group.iter().filter_map(|r| explain(r, cx)).collect();
        causes.truncate(superseded);
        for c in &causes {
            *f.duplicates_by_cause.entry((*c).to_owned()).or_default() += 1;
        }
        if causes.len() < superseded {
            f.unexplained_duplicates += (superseded - causes.len()) as u64;
            f.problem(format!(
                "{id}: attempt {attempt} lost its lease {superseded} time(s) with {} fault(s) to explain it; runs \
                 (pid, start..end ms): {:?}; record: {:?}",
                causes.len(),
                group.iter().map(|r| (r.pid, r.start_ms, r.end_ms)).collect::<Vec<_>>(),
                entry.error
            ));
        }
    }
    f.leases_lost_without_run +=
        info.attempt_log.iter().filter(|a| !groups.contains_key(&a.attempt) && lease_lost(a.error.as_deref())).count()
            as u64;
    if let Some(done) = info.finished_at.map(ms) {
        for r in runs.iter().filter(|r| r.start_ms > done) {
            if stopped_before(r, cx.faults) {
                f.late_starts_after_stop += 1;
                continue;
            }
            f.runs_after_finish += 1;
            f.problem(format!(
                "{id}: attempt {} (pid {}) started at {} ms, after the job finished at {done} ms",
                r.attempt, r.pid, r.start_ms
            ));
        }
    }
    if info.status == JobStatus::Succeeded {
        check_success(f, id, info, runs);
    }
}

/// A success must have been recorded after a run of the final attempt
/// ended: else an older attempt's late ack won.
fn check_success(f: &mut Findings, id: &str, info: &JobInfo, runs: &[Run]) {
    let last = info.attempt_log.last().filter(|l| l.attempt == info.attempts && l.error.is_none());
    let Some(last) = last else {
        f.stale_overwrites += 1;
        f.problem(format!("{id}: succeeded at attempt {} but its log says {}", info.attempts, attempts_text(info)));
        return;
    };
    let recorded = last.finished_at.map_or(0, ms);
    let ends: Vec<u64> = runs.iter().filter(|r| r.attempt == info.attempts).filter_map(|r| r.end_ms).collect();
    if !ends.iter().any(|&e| e <= recorded) {
        f.stale_overwrites += 1;
        f.problem(format!(
            "{id}: success of attempt {} recorded at {recorded} ms, with no run of it ended by then (ends: {ends:?})",
            info.attempts
        ));
    }
}

/// Whether the run's process was stopped right before the run started:
/// a job it had leased before the stop, started after SIGCONT.
fn stopped_before(run: &Run, faults: &[FaultEvent]) -> bool {
    faults.iter().any(|e| {
        e.kind == FaultKind::WorkerStop
            && e.pid == Some(run.pid)
            && e.start_ms <= run.start_ms
            && run.start_ms <= e.end_ms + OWN_SLACK_MS
    })
}

/// The fault that explains a run's lost lease, if any: its own process
/// stopped, killed or crashed while it ran (or within a second of its end,
/// before its ack went out; or, for a stop, right before it started), else
/// Redis away while it ran or while its ack was being retried.
fn explain(run: &Run, cx: Context<'_>) -> Option<&'static str> {
    let end = run.end_ms.unwrap_or(u64::MAX);
    let overlaps = |e: &FaultEvent, before: u64, after: u64| {
        e.end_ms + before >= run.start_ms && e.start_ms <= end.saturating_add(after)
    };
    let own = |k: FaultKind, before: u64| {
        cx.faults.iter().any(|e| e.kind == k && e.pid == Some(run.pid) && overlaps(e, before, OWN_SLACK_MS))
    };
    if own(FaultKind::WorkerStop, OWN_SLACK_MS) {
        return Some("worker_stopped");
    }
    if own(FaultKind::WorkerKill, 50) {
        return Some("worker_killed");
    }
    if own(FaultKind::WorkerCrash, 50) {
        return Some("worker_crashed_by_poison_job");
    }
    let redis = cx.faults.iter().find(|e| e.kind.is_redis() && overlaps(e, 50, ACK_SLACK_MS + cx.lease_ms));
    redis.map(|e| redis_cause(e.kind))
}

/// The fault that explains a lease lost with no run (the record's attempt
/// times, on the server's clock): any worker fault or Redis fault between
/// the lease and its reclaim.
fn explain_window(a: &AttemptInfo, cx: Context<'_>) -> Option<&'static str> {
    let from = ms(a.started_at);
    let to = a.finished_at.map_or(u64::MAX, ms);
    let e = cx.faults.iter().find(|e| e.end_ms + 50 >= from && e.start_ms <= to)?;
    Some(match e.kind {
        FaultKind::WorkerStop => "worker_stopped",
        FaultKind::WorkerKill => "worker_killed",
        FaultKind::WorkerCrash => "worker_crashed_by_poison_job",
        k => redis_cause(k),
    })
}

fn redis_cause(k: FaultKind) -> &'static str {
    match k {
        FaultKind::RedisCrash => "redis_crashed",
        FaultKind::RedisOutage => "redis_down",
        _ => "redis_frozen",
    }
}

/// Runs of the stopped process in flight at the stop that returned after
/// their lease had run out, and whose job then ran again: their late
/// result did not count (had it, the job would have finished with it), so
/// it was refused and the newer run's outcome stood.
fn late_results(runs: &[Run], stop: &FaultEvent, lease_ms: u64) -> u64 {
    let mut n = 0;
    for r in runs.iter().filter(|r| Some(r.pid) == stop.pid) {
        let in_flight = r.start_ms <= stop.start_ms && r.end_ms.is_none_or(|e| e >= stop.start_ms);
        let returned_late = r.end_ms.is_some_and(|e| e >= stop.start_ms + lease_ms);
        let ran_again = runs.iter().any(|o| o.start_ms > r.start_ms && o != r);
        if in_flight && returned_late && ran_again {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// A job's record with `log`'s attempts (attempt, error, end ms; each
    /// started 100 ms before its end).
    pub(crate) fn info(status: JobStatus, log: &[(u32, Option<&str>, u64)]) -> JobInfo {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        JobInfo {
            id: jobs_core::JobId::new("chaos"),
            name: "chaos.work".into(),
            queue: "chaos".into(),
            priority: jobs_core::Priority::Normal,
            status,
            payload: serde_json::Value::Null,
            attempts: log.last().map_or(0, |l| l.0),
            max_retries: Some(10),
            attempt_log: log
                .iter()
                .map(|&(attempt, error, end)| AttemptInfo {
                    attempt,
                    started_at: at(end.saturating_sub(100)),
                    finished_at: Some(at(end)),
                    error: error.map(str::to_owned),
                    snoozed_for: None,
                })
                .collect(),
            attempts_omitted: 0,
            enqueued_at: at(0),
            run_at: None,
            finished_at: log.last().map(|l| at(l.2)),
            result: None,
            headers: Default::default(),
            snoozes: 0,
            expires_at: None,
            progress: None,
            caller_id: None,
            key: None,
            group: None,
            handler_started: false,
        }
    }

    fn run(attempt: u32, pid: u32, start_ms: u64, end_ms: Option<u64>) -> Run {
        Run { attempt, pid, start_ms, end_ms }
    }

    fn kill(pid: u32, ms: u64) -> FaultEvent {
        FaultEvent { kind: FaultKind::WorkerKill, pid: Some(pid), start_ms: ms, end_ms: ms }
    }

    fn cx(faults: &[FaultEvent]) -> Context<'_> {
        Context { faults, lease_ms: 1500, crash_budget: 2 }
    }

    /// A handler whose start mark never reached Redis before its worker was
    /// killed: the same attempt runs again; one duplicate, explained.
    #[test]
    fn a_rerun_of_the_same_attempt_is_an_explained_duplicate() {
        let faults = [kill(10, 1_050)];
        let runs = [run(1, 10, 1_000, None), run(1, 11, 3_000, Some(3_020))];
        let mut f = Findings::default();
        check_runs(&mut f, Kind::Work, "j", &info(JobStatus::Succeeded, &[(1, None, 3_021)]), &runs, cx(&faults));
        assert_eq!((f.duplicates, f.reran_same_attempt, f.unexplained_duplicates, f.stale_overwrites), (1, 1, 0, 0));
        assert_eq!(f.duplicates_by_cause.get("worker_killed"), Some(&1));
    }

    /// The same rerun with no fault of its process: unexplained.
    #[test]
    fn a_rerun_without_a_fault_is_unexplained() {
        let runs = [run(1, 10, 1_000, Some(1_010)), run(1, 11, 3_000, Some(3_020))];
        let mut f = Findings::default();
        check_runs(&mut f, Kind::Work, "j", &info(JobStatus::Succeeded, &[(1, None, 3_021)]), &runs, cx(&[]));
        assert_eq!((f.duplicates, f.unexplained_duplicates), (1, 1));
    }

    /// A success recorded before any run of its attempt ended is stale.
    #[test]
    fn a_success_before_its_run_ended_is_stale() {
        let runs = [run(1, 10, 1_000, Some(2_000))];
        let mut f = Findings::default();
        check_runs(&mut f, Kind::Work, "j", &info(JobStatus::Succeeded, &[(1, None, 1_500)]), &runs, cx(&[]));
        assert_eq!(f.stale_overwrites, 1);
    }

    /// Dead out of its crash budget (2) without a run: explained by three
    /// faults in its life, not by two.
    #[test]
    fn a_crash_budget_death_needs_more_faults_than_the_budget() {
        let budget = "lost its lease 3 times before its handler started (...): out of its crash budget";
        let dead = info(JobStatus::Dead, &[(1, Some(budget), 5_000)]);
        let three = [kill(1, 1_000), kill(2, 2_000), kill(3, 3_000)];
        assert_eq!(dead_by_faults(&dead, &[], 0, cx(&three)), Some("crash_budget"));
        assert_eq!(dead_by_faults(&dead, &[], 0, cx(&three[..2])), None);
    }

    /// Out of retries on lost leases: explained when every loss is; a
    /// death by the handler's own errors is not a death by faults.
    #[test]
    fn retries_spent_on_lost_leases_need_a_fault_each() {
        let lost = "lease expired: the worker stopped responding";
        let dead = info(JobStatus::Dead, &[(1, Some(lost), 2_000), (2, Some(lost), 6_000)]);
        let runs = [run(1, 10, 1_000, None), run(2, 11, 4_000, None)];
        let both = [kill(10, 1_100), kill(11, 4_100)];
        assert_eq!(dead_by_faults(&dead, &runs, 0, cx(&both)), Some("retries_on_lost_leases"));
        assert_eq!(dead_by_faults(&dead, &runs, 0, cx(&both[..1])), None);
        let timed_out = info(JobStatus::Dead, &[(1, Some("job timed out"), 2_000)]);
        assert_eq!(dead_by_faults(&timed_out, &runs, 0, cx(&both)), None);
    }

    /// A stopped worker's in-flight run that returned late while the job
    /// ran again is a refused late result.
    #[test]
    fn a_late_result_of_a_stopped_worker_is_counted() {
        let stop = FaultEvent { kind: FaultKind::WorkerStop, pid: Some(10), start_ms: 1_100, end_ms: 5_600 };
        let runs = [run(1, 10, 1_000, Some(5_650)), run(1, 11, 3_000, Some(6_000))];
        assert_eq!(late_results(&runs, &stop, 1_500), 1);
        assert_eq!(late_results(&runs[..1], &stop, 1_500), 0);
    }
}
