//! The short chaos run CI does (about 35 s): worker processes SIGKILLed,
//! stopped past their lease and ended by a poison job, one of them with its
//! clock 7 minutes ahead (libfaketime; a missing libfaketime fails the
//! test), `redis-server` SIGKILLed and restarted from its AOF
//! (`appendfsync always`), down and frozen for 3 s, all under load; every
//! acknowledged job checked.
//!
//! Every assertion holds on every run under the library's semantics: the
//! cases they allow (a lost lease's job run again, with the same attempt
//! number when its start mark had not reached Redis; a job dead once lost
//! leases spent its budget) are classified and each must be explained by
//! an injected fault (see `jobs_chaos::verify`).
//!
//! `JOBS_CHAOS_JSON=path` also writes the report as JSON.

use std::time::{Duration, Instant};

use jobs_chaos::ChaosConfig;

#[test]
fn nothing_acknowledged_is_lost_under_faults() {
    let started = Instant::now();
    let cfg = ChaosConfig::ci(env!("CARGO_BIN_EXE_jobs-chaos"));
    let report = jobs_chaos::run(cfg).expect("the chaos run could be carried out");
    eprintln!("{}", report.table());
    if let Ok(path) = std::env::var("JOBS_CHAOS_JSON") {
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("JSON")).expect("write the JSON report");
    }
    assert!(report.passed, "the chaos run failed: {:#?}", report.failures);
    assert_eq!(report.findings.lost, 0);
    assert_eq!(report.findings.unexplained_duplicates, 0);
    assert!(report.findings.late_results_refused > 0, "a stopped worker's late result was refused");
    let skewed: Vec<_> = report.workers.iter().filter(|w| w.skew_s != 0).collect();
    assert!(!skewed.is_empty(), "the fleet has a worker with a skewed clock: {:?}", report.workers);
    for w in skewed {
        assert!(w.runs > 0, "the skewed worker slot ran jobs: {w:?}");
        let (lo, hi) = w.measured_ms.expect("the skewed worker measured its clock");
        let given = w.skew_s * 1000;
        assert!((lo - given).abs() <= 2_000 && (hi - given).abs() <= 2_000, "its clock was off as given: {w:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(120), "the CI chaos run must stay under 2 minutes");
}

/// A skewed worker slot without libfaketime is a clear error before the
/// run starts, never a run on the true clock.
#[test]
fn a_missing_libfaketime_is_a_clear_error() {
    let mut cfg = ChaosConfig::ci(env!("CARGO_BIN_EXE_jobs-chaos"));
    cfg.faketime_lib = Some("/nonexistent/libfaketimeMT.so.1".into());
    let err = jobs_chaos::run(cfg).expect_err("no run without libfaketime");
    assert!(matches!(err, jobs_chaos::ChaosError::Faketime { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("apt-get install faketime") && text.contains("/nonexistent"), "{text}");
}
