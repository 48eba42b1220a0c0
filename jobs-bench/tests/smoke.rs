//! Runs every measurement with tiny sizes against a throwaway Redis and
//! checks that the JSON report carries every figure. No timing is asserted:
//! this only keeps the benchmark working.

use jobs_bench::{Progress, Settings, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_is_reported() {
    let target = Target::start().expect("redis-server starts");
    let settings = Settings { worker_exe: Some(env!("CARGO_BIN_EXE_jobs-bench").into()), ..Settings::smoke() };
    let report = jobs_bench::run(&settings, Some(&target), true, &Progress::new("smoke", true))
        .await
        .expect("the benchmark runs");
    let json = serde_json::to_value(&report).expect("the report serializes");

    for backend in ["redis", "memory"] {
        let f = &json[backend];
        for path in [
            "/enqueue_single/per_s",
            "/enqueue_single/mean_us",
            "/enqueue_in_flight/per_s",
            "/enqueue_many/per_s",
            "/end_to_end/per_s",
            "/end_to_end/produced_per_s",
            "/end_to_end_groups/per_s",
            "/end_to_end_groups_idle/per_s",
            "/end_to_end_events/per_s",
            "/events/per_s",
            "/events/cost_pct",
            "/events/delay/p50_ms",
            "/events/delay/p99_ms",
            "/latency/p50_ms",
            "/latency/p99_ms",
            "/latency/p999_ms",
            "/latency/max_ms",
            "/delayed_lateness/p50_ms",
            "/delayed_lateness/p99_ms",
            "/memory_per_job_bytes",
            "/memory_beyond_payload_bytes",
        ] {
            let v = f.pointer(path).unwrap_or_else(|| panic!("{backend}{path} is missing in {json:#}"));
            assert!(v.as_f64().is_some_and(f64::is_finite), "{backend}{path} is not a number: {v}");
        }
        assert!(f["latency"]["n"].as_u64().unwrap() > 0, "{backend}: no latency samples");
        assert!(f["delayed_lateness"]["n"].as_u64().unwrap() > 0, "{backend}: no lateness samples");
        let events = f["events"]["received"].as_u64().unwrap();
        assert_eq!(events, 3 * Settings::smoke().e2e_n as u64, "{backend}: 3 events per job");
        assert!(f["events"]["delay"]["n"].as_u64().unwrap() > 0, "{backend}: no event delay samples");
        let rounds = f["events_rounds"].as_array().unwrap_or_else(|| panic!("{backend}: no events rounds"));
        assert_eq!(rounds.len(), Settings::smoke().events_rounds, "{backend}: one entry per round");
        for r in rounds {
            for k in ["plain_per_s", "followed_per_s"] {
                assert!(r[k].as_f64().is_some_and(|v| v > 0.0), "{backend}: round {k} is {}", r[k]);
            }
        }
    }
    assert!(json["redis"]["commands"]["e2e"].as_array().is_some_and(|a| !a.is_empty()));
    let processes = &json["redis"]["end_to_end_processes"];
    assert!(processes["per_s"].as_f64().is_some_and(|r| r > 0.0), "the worker processes ran the jobs: {processes}");
    for c in ["round_trip", "round_trips_concurrent", "lpush_pipelined", "lpop_pipelined"] {
        assert!(json["ceiling"][c]["rps"].as_f64().is_some_and(|r| r > 0.0), "ceiling {c}");
    }
    for k in ["enqueue_single", "enqueue_in_flight", "enqueue_many", "end_to_end", "latency_p50", "latency_p99"] {
        assert!(json["fractions"][k].as_f64().is_some(), "fraction {k}");
    }
    assert!(json["redis"]["rate_wait"]["seconds"].as_f64().is_some_and(|s| s > 0.0), "rate-wait ran");
    assert_eq!(json["redis"]["rate_wait"]["ran"], 1, "the rate let one job start");
    let table = report.table();
    assert!(table.contains("end to end"));
    // MemoryQueue has no worker processes: its cells say so, not 0/s.
    for row in table.lines().filter(|l| l.contains(" processes")) {
        assert!(row.trim_end().ends_with("| - |"), "MemoryQueue ran no worker processes: {row}");
    }
    // A measurement left out has no row.
    let mut only = Settings::smoke();
    only.only = vec!["single".into()];
    let one = jobs_bench::run(&only, Some(&target), false, &Progress::new("smoke", true)).await.expect("runs");
    let table = one.table();
    assert!(table.contains("enqueue, single awaited") && !table.contains("latency"), "{table}");
    // ... and no figure in the JSON: absent, not zero.
    let json = serde_json::to_value(&one).expect("the report serializes");
    for backend in ["redis", "memory"].into_iter().filter(|b| !json[b].is_null()) {
        let f = &json[backend];
        assert!(f["enqueue_single"]["per_s"].as_f64().is_some_and(|r| r > 0.0), "{backend}: {f:#}");
        for k in [
            "enqueue_many",
            "end_to_end",
            "end_to_end_groups",
            "latency",
            "delayed_lateness",
            "events",
            "fan_in",
            "rate_wait",
            "memory_per_job_bytes",
            "memory_beyond_payload_bytes",
        ] {
            assert!(f.get(k).is_none(), "{backend}: {k} was left out but is reported: {f:#}");
        }
    }
    assert!(json["fractions"].get("end_to_end").is_none(), "no fraction of a figure left out: {json:#}");
}
