//! [`Report`]: what a run injected, what it enqueued and what it found, as
//! a table for people and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jobs_core::JobInfo;
use serde::Serialize;

use crate::config::{ChaosConfig, Fsync};
use crate::fleet::ProcInfo;
use crate::groups::GroupFindings;
use crate::jobs::Kind;
use crate::model::{lock, Acked, FaultEvent, FaultKind, Shared};
use crate::runlog::RunLogs;
use crate::verify::{check, Context, Findings};

/// How far a worker's measured clock offset may be from the one it was
/// given (the worker itself refuses to run past 2 s).
const SKEW_TOLERANCE_MS: i64 = 2_000;

/// One worker slot over the run.
#[derive(Debug, Clone, Serialize)]
pub struct SlotSummary {
    /// The slot.
    pub slot: usize,
    /// How many seconds ahead its processes' clocks were set (0: the
    /// host's clock).
    pub skew_s: i64,
    /// Processes started in it (1 + restarts).
    pub processes: u64,
    /// Of those, how many reported their clock (the others were killed
    /// before they reached Redis).
    pub clocks_reported: u64,
    /// The smallest and largest clock offset its processes measured
    /// against Redis `TIME` (ms).
    pub measured_ms: Option<(i64, i64)>,
    /// Attempts its processes started.
    pub runs: u64,
}

/// Leases lost before the handler started (not attempts: crashes, counted
/// against each job's crash budget), as the backend counted them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CrashCounts {
    /// Such losses in all.
    pub leases: u64,
    /// Jobs with at least one.
    pub jobs: u64,
    /// The most of one job.
    pub most: u64,
}

/// The outcome of a chaos run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every check passed (see [`Report::failures`]).
    pub passed: bool,
    /// Why it did not pass, one sentence each.
    pub failures: Vec<String>,
    /// The settings of the run.
    pub settings: ChaosConfig,
    /// Wall time of the whole run, drain and checks included.
    pub elapsed_s: f64,
    /// Faults injected, per kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// `enqueue_many` calls that failed (while Redis was away) and were
    /// retried with the same jobs.
    pub enqueue_calls_failed: u64,
    /// Jobs acknowledged to producers, in all.
    pub acknowledged: u64,
    /// Jobs acknowledged, per kind.
    pub by_kind: BTreeMap<Kind, u64>,
    /// What the checks of every acknowledged job found.
    pub findings: Findings,
    /// Finished jobs read before a Redis crash or outage and again after it.
    pub finished_checked_across_restarts: u64,
    /// Of those, jobs whose status changed: a finished job came back.
    pub finished_that_came_back: u64,
    /// `chaos.hang` jobs the run cancelled while they ran.
    pub hang_cancels: u64,
    /// "result refused" warnings in the worker processes' logs (late acks
    /// of stopped or stalled workers, refused by their lease token).
    pub refused_results_logged: u64,
    /// Times Redis postponed an AOF write behind a slow `fsync`
    /// (`everysec` only; zero with `always`).
    pub postponed_fsyncs: usize,
    /// Unreadable run log lines (none expected: one `write(2)` per line).
    pub run_log_bad_lines: Vec<String>,
    /// The worker slots: clock skew, processes, runs.
    pub workers: Vec<SlotSummary>,
    /// Leases lost before the handler started, per the backend.
    pub crashes: CrashCounts,
    /// What the group checks found (a run with groups only).
    pub groups: Option<GroupFindings>,
    /// Things worth knowing that are not failures.
    pub notes: Vec<String>,
    /// Every fault with its time.
    pub fault_log: Vec<FaultEvent>,
}

impl Report {
    #[allow(clippy::too_many_arguments)] // The parts of one run, gathered once.
    pub(crate) fn build(
        cfg: &ChaosConfig,
        shared: &Shared,
        acked: &[Acked],
        infos: &[Option<JobInfo>],
        logs: &RunLogs,
        refused: u64,
        postponed: usize,
        elapsed: Duration,
        procs: &[ProcInfo],
        crashes: CrashCounts,
        groups: Option<GroupFindings>,
    ) -> Report {
        let fault_log = lock(&shared.faults).clone();
        let lease_ms = u64::try_from(cfg.lease.as_millis()).unwrap_or(u64::MAX);
        let cx = Context { faults: &fault_log, lease_ms, crash_budget: cfg.crash_budget };
        let findings = check(acked, infos, logs, cx);
        let mut faults: BTreeMap<FaultKind, u64> = FaultKind::ALL.iter().map(|k| (*k, 0)).collect();
        for f in &fault_log {
            *faults.entry(f.kind).or_default() += 1;
        }
        let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
        for a in acked {
            *by_kind.entry(a.kind).or_default() += 1;
        }
        let mut r = Report {
            passed: false,
            failures: Vec::new(),
            settings: cfg.clone(),
            elapsed_s: elapsed.as_secs_f64(),
            faults,
            enqueue_calls_failed: shared.enqueue_errors.load(Ordering::Relaxed),
            acknowledged: acked.len() as u64,
            by_kind,
            findings,
            finished_checked_across_restarts: shared.finished_checked.load(Ordering::Relaxed),
            finished_that_came_back: shared.resurrected.load(Ordering::Relaxed),
            hang_cancels: shared.hang_cancels.load(Ordering::Relaxed),
            refused_results_logged: refused,
            postponed_fsyncs: postponed,
            run_log_bad_lines: logs.bad_lines.iter().take(20).cloned().collect(),
            workers: slots(cfg, procs, logs),
            crashes,
            groups,
            notes: lock(&shared.notes).clone(),
            fault_log,
        };
        r.failures = r.judge(cfg, &lock(&shared.problems));
        r.passed = r.failures.is_empty();
        r
    }

    fn judge(&self, cfg: &ChaosConfig, problems: &[String]) -> Vec<String> {
        let f = &self.findings;
        let mut out = Vec::new();
        let mut zero = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        if cfg.fsync == Fsync::Everysec && self.postponed_fsyncs > 0 && f.lost > 0 {
            // Redis replied before writing the AOF (a slow fsync): a crash
            // of the process may lose those writes under `everysec`.
        } else {
            zero(f.lost, "acknowledged jobs lost");
        }
        zero(f.unfinished, "jobs unfinished after the drain");
        zero(f.wrong_status, "jobs finished in the wrong status");
        zero(f.never_ran, "jobs never ran");
        zero(f.unexplained_duplicates, "duplicate runs no injected fault explains");
        zero(f.stale_overwrites, "successes recorded by a stale attempt");
        zero(f.runs_after_finish, "runs after the job had finished");
        zero(self.finished_that_came_back, "finished jobs came back after a Redis restart");
        zero(self.run_log_bad_lines.len() as u64, "unreadable run log lines");
        if let Some(g) = &self.groups {
            zero(g.over_bound.len() as u64, "groups held more leases at once than their bound");
            zero(g.over_rate.len() as u64, "groups started more jobs in a window than their rate");
            zero(g.residue.len() as u64, "group counts left after the drain");
            if g.attempts_checked == 0 {
                out.push("no attempt of a grouped job was recorded".to_owned());
            }
            // Which groups and when, the first few.
            out.extend(g.over_bound.iter().chain(&g.over_rate).chain(&g.residue).take(10).cloned());
        }
        let injected = |k: FaultKind| self.faults.get(&k).copied().unwrap_or(0);
        let wanted = [
            (FaultKind::WorkerKill, u64::from(cfg.load > cfg.kill_every * 2)),
            (FaultKind::WorkerCrash, u64::from(cfg.special.poison > 0)),
            (FaultKind::WorkerStop, u64::from(cfg.stops)),
            (FaultKind::RedisCrash, u64::from(cfg.redis_crashes)),
            (FaultKind::RedisOutage, u64::from(cfg.redis_outages)),
            (FaultKind::RedisFreeze, u64::from(cfg.redis_freezes)),
        ];
        for (k, n) in wanted {
            if injected(k) < n.min(1) {
                out.push(format!("no {k:?} fault was injected"));
            }
        }
        if injected(FaultKind::WorkerStop) > 0 && f.late_results_refused == 0 {
            out.push("no late result of a stopped worker was seen refused".to_owned());
        }
        for w in self.workers.iter().filter(|w| w.skew_s != 0) {
            if w.runs == 0 {
                out.push(format!("worker slot {} (clock {}) ran no job", w.slot, skew_text(w.skew_s)));
            }
            let given = w.skew_s.saturating_mul(1000);
            if let Some((lo, hi)) =
                w.measured_ms.filter(|(lo, hi)| (lo - given).abs().max((hi - given).abs()) > SKEW_TOLERANCE_MS)
            {
                out.push(format!(
                    "worker slot {} should run {given} ms off the server's clock and measured {lo}..{hi} ms",
                    w.slot
                ));
            }
            if w.clocks_reported == 0 {
                out.push(format!("no process of worker slot {} reported its clock", w.slot));
            }
        }
        out.extend(problems.iter().take(20).cloned());
        // The first of the checks' own sentences, so that a failure says
        // which jobs and why.
        if !out.is_empty() {
            out.extend(f.problems.iter().take(10).cloned());
        }
        out
    }

    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let f = &self.findings;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "jobs-chaos: {:.0} s of load, {:.0} s in all; appendfsync {}; {} worker processes x {}, lease {} ms",
            s.load.as_secs_f64(),
            self.elapsed_s,
            s.fsync.as_str(),
            s.worker_procs,
            s.concurrency,
            s.lease.as_millis()
        );
        let mut row = |label: &str, value: String| {
            let _ = writeln!(t, "  {label:<58} {value:>10}");
        };
        row("WORKER SLOTS (clock, processes started; runs)", String::new());
        for w in &self.workers {
            let measured = match w.measured_ms.map(|(lo, hi)| (secs(lo), secs(hi))) {
                Some((lo, hi)) if lo == hi => format!(" (measured {lo} s)"),
                Some((lo, hi)) => format!(" (measured {lo}..{hi} s)"),
                None => String::new(),
            };
            row(
                &format!("  w{} clock {}{measured}, {} processes", w.slot, skew_text(w.skew_s), w.processes),
                w.runs.to_string(),
            );
        }
        row("FAULTS INJECTED", String::new());
        for (k, n) in &self.faults {
            row(&format!("  {}", k.label()), n.to_string());
        }
        row("  enqueue calls failed (retried, same ids)", self.enqueue_calls_failed.to_string());
        row("JOBS", String::new());
        row("  acknowledged to producers", self.acknowledged.to_string());
        for (k, n) in &self.by_kind {
            row(&format!("    {} (must end {})", k.as_str(), k.expected()), n.to_string());
        }
        for (st, n) in &f.by_status {
            row(&format!("  ended {st}"), n.to_string());
        }
        row("  runs (attempts started)", f.runs.to_string());
        row("CHECKS", String::new());
        row("  lost (must be 0)", f.lost.to_string());
        row("  never ran (must be 0)", f.never_ran.to_string());
        row("  wrong final status (must be 0)", f.wrong_status.to_string());
        row("  unfinished after the drain (must be 0)", f.unfinished.to_string());
        row("  duplicates (ran again after a lost lease)", f.duplicates.to_string());
        for (cause, n) in &f.duplicates_by_cause {
            row(&format!("    explained: {cause}"), n.to_string());
        }
        row("    unexplained (must be 0)", f.unexplained_duplicates.to_string());
        row("    of them the same attempt run again (start unmarked)", f.reran_same_attempt.to_string());
        row("  leases lost before the handler started (crashes)", self.crashes.leases.to_string());
        row(
            "    jobs with a crash / most crashes of one job",
            format!("{} / {}", self.crashes.jobs, self.crashes.most),
        );
        let by = |k: &str| f.dead_by_faults.get(k).copied().unwrap_or(0);
        row(
            "  dead by explained faults (crash budget / lost leases)",
            format!("{} / {}", by("crash_budget"), by("retries_on_lost_leases")),
        );
        row("  late results of stopped workers refused", f.late_results_refused.to_string());
        row("  'result refused' in worker logs", self.refused_results_logged.to_string());
        row("  successes by a stale attempt (must be 0)", f.stale_overwrites.to_string());
        row("  runs after the job finished (must be 0)", f.runs_after_finish.to_string());
        row("    started on SIGCONT by a stopped worker (refused)", f.late_starts_after_stop.to_string());
        row("  finished jobs checked across Redis restarts", self.finished_checked_across_restarts.to_string());
        row("    came back (must be 0)", self.finished_that_came_back.to_string());
        row("  attempts lost with no run (marked, died before it)", f.leases_lost_without_run.to_string());
        row("  AOF writes postponed by a slow fsync", self.postponed_fsyncs.to_string());
        if let Some(g) = &self.groups {
            row(
                &format!("  GROUPS: {} seen, attempts of grouped jobs checked", g.groups_seen),
                g.attempts_checked.to_string(),
            );
            row(
                &format!("    most leases of one group at once (bound {})", s.group_concurrency),
                g.most_at_once.to_string(),
            );
            row("    groups over their bound (must be 0)", g.over_bound.len().to_string());
            if let Some(rate) = s.group_rate {
                row(&format!("    most starts of one group in one window (rate {rate})"), g.most_in_window.to_string());
                row("    groups over their rate (must be 0)", g.over_rate.len().to_string());
            }
            row("    group counts left after the drain (must be 0)", g.residue.len().to_string());
        }
        let _ = writeln!(t, "RESULT: {}", if self.passed { "PASS" } else { "FAIL" });
        for fail in &self.failures {
            let _ = writeln!(t, "  - {fail}");
        }
        t
    }
}

/// Milliseconds as signed seconds with one decimal (`+420.0`, `0.0`).
fn secs(ms: i64) -> String {
    let tenths = (ms as f64 / 100.0).round() as i64;
    match tenths {
        0 => "0.0".to_owned(),
        t => format!("{}{}.{}", if t < 0 { '-' } else { '+' }, t.abs() / 10, t.abs() % 10),
    }
}

/// A clock offset for people: `+7m`, `-30s`, `true` (none).
pub(crate) fn skew_text(skew_s: i64) -> String {
    match skew_s {
        0 => "true".to_owned(),
        s if s % 60 == 0 => format!("{:+}m", s / 60),
        s => format!("{s:+}s"),
    }
}

/// Per slot: its clock, its processes, what they measured and ran.
fn slots(cfg: &ChaosConfig, procs: &[ProcInfo], logs: &RunLogs) -> Vec<SlotSummary> {
    let mut runs_by_pid: BTreeMap<u32, u64> = BTreeMap::new();
    for r in logs.runs.values().flatten() {
        *runs_by_pid.entry(r.pid).or_default() += 1;
    }
    (0..cfg.worker_procs)
        .map(|slot| {
            let mine: Vec<&ProcInfo> = procs.iter().filter(|p| p.slot == slot).collect();
            let measured: Vec<i64> =
                mine.iter().filter_map(|p| logs.clocks.get(&p.pid)).map(|c| c.measured_ms).collect();
            SlotSummary {
                slot,
                skew_s: cfg.skewed_clocks.get(slot).copied().unwrap_or(0),
                processes: mine.len() as u64,
                clocks_reported: measured.len() as u64,
                measured_ms: measured.iter().min().copied().zip(measured.iter().max().copied()),
                runs: mine.iter().map(|p| runs_by_pid.get(&p.pid).copied().unwrap_or(0)).sum(),
            }
        })
        .collect()
}
