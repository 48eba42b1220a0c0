//! The short chaos run CI does (about 35 s): worker processes SIGKILLed,
//! stopped past their lease and ended by a poison job, `redis-server`
//! SIGKILLed and restarted from its AOF (`appendfsync always`), down and
//! frozen for 3 s, all under load; every acknowledged job checked.
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
    assert!(report.findings.late_results_refused > 0, "a stopped worker's late result was refused");
    assert!(started.elapsed() < Duration::from_secs(120), "the CI chaos run must stay under 2 minutes");
}
