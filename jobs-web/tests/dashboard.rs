//! The Grafana dashboard uses only metrics (and labels) the code exports.
//!
//! The exported names come from a real `JobMetrics` registry after a pool
//! run (with a job that snoozes once), a stats read, a schedule lateness
//! observation and an expired job, not from a list.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use jobs_core::metrics::prometheus::proto::MetricType;
use jobs_core::prelude::*;
use jobs_core::{JobStatus, SharedQueue};
use serde_json::Value;

const DASHBOARD: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/grafana/dashboards/background-jobs-dashboard.json");

static SNOOZED: AtomicBool = AtomicBool::new(false);

/// Snoozes once, then succeeds: `jobs_snoozed_total` gets a series.
#[job(queue = "web_test")]
async fn web_snoozy() -> Result<(), JobError> {
    if !SNOOZED.swap(true, Ordering::SeqCst) {
        return Err(JobError::retry_in(Duration::from_millis(1)));
    }
    Ok(())
}

/// Series names the registry exports, with the label names of each.
async fn exported() -> BTreeMap<String, BTreeSet<String>> {
    let metrics = JobMetrics::new();
    let queue: SharedQueue = Arc::new(metrics.instrument(MemoryQueue::new()));
    let pool = start_pool(queue.clone(), &metrics);
    run_mixed_jobs(&queue).await;
    let snoozy = WebSnoozy {}.enqueue(&queue).await.expect("enqueue");
    eventually("the snoozing job ran twice", || async {
        queue.job(&snoozy).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    metrics.record_expired(&jobs_core::backend::ExpiredJob { id: JobId::new(QUEUE), name: "web_flaky".into() });
    metrics.update_queue_sizes(&queue).await.expect("stats");
    metrics.observe_schedule_lateness(Duration::from_millis(120));
    let families = metrics.registry().gather();
    pool.shutdown().await.expect("clean shutdown");

    let mut out = BTreeMap::new();
    for f in &families {
        let labels: BTreeSet<String> =
            f.get_metric().iter().flat_map(|m| m.get_label().iter().map(|l| l.name().to_owned())).collect();
        if f.get_field_type() == MetricType::HISTOGRAM {
            let mut with_le = labels.clone();
            with_le.insert("le".to_owned());
            out.insert(format!("{}_bucket", f.name()), with_le);
            out.insert(format!("{}_sum", f.name()), labels.clone());
            out.insert(format!("{}_count", f.name()), labels);
        } else {
            out.insert(f.name().to_owned(), labels);
        }
    }
    out
}

/// Every PromQL text of the dashboard: panel targets and variable queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The query without its string literals (label values, legends).
fn strip_strings(q: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    for c in q.chars() {
        if c == '"' {
            in_str = !in_str;
            out.push(' ');
        } else if !in_str {
            out.push(c);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `(metric, labels matched in its selector)` for each metric the query names.
fn selectors(q: &str) -> Vec<(String, Vec<String>)> {
    let q = strip_strings(q);
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_ident(chars[i]) && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$')) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if !word.starts_with("jobs_") {
                continue;
            }
            let mut labels = Vec::new();
            if chars.get(i) == Some(&'{') {
                let end = chars[i..].iter().position(|c| *c == '}').map_or(chars.len(), |p| i + p);
                let inner: String = chars[i + 1..end].iter().collect();
                for m in inner.split(',') {
                    let name: String = m.trim().chars().take_while(|c| is_ident(*c)).collect();
                    if !name.is_empty() {
                        labels.push(name);
                    }
                }
                i = end;
            }
            out.push((word, labels));
        } else {
            i += 1;
        }
    }
    out
}

/// Label names of `by (..)` clauses.
fn grouping_labels(q: &str) -> Vec<String> {
    let q = strip_strings(q);
    let mut out = Vec::new();
    for part in q.split("by (").skip(1) {
        let inner = part.split(')').next().unwrap_or_default();
        out.extend(inner.split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_uses_exported_metrics_and_labels() {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard file exists");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()), "has panels");
    let mut qs = Vec::new();
    queries(&dashboard, &mut qs);
    assert!(qs.len() >= 10, "found only {} queries", qs.len());

    let exported = exported().await;
    let mut used = BTreeSet::new();
    for q in &qs {
        let sel = selectors(q);
        assert!(!sel.is_empty(), "query names no jobs_ metric: {q}");
        let mut known_labels = BTreeSet::new();
        for (metric, labels) in &sel {
            let Some(have) = exported.get(metric) else {
                panic!("`{metric}` is not exported (query: {q}); exported: {:?}", exported.keys());
            };
            for l in labels {
                assert!(have.contains(l), "`{metric}` has no label `{l}` (query: {q}); it has {have:?}");
            }
            known_labels.extend(have.iter().cloned());
            used.insert(metric.clone());
        }
        for l in grouping_labels(q) {
            assert!(known_labels.contains(&l), "groups by `{l}`, which none of its metrics has: {q}");
        }
    }
    // The dashboard covers what the issue asks for.
    for family in [
        "jobs_processed_total",
        "jobs_enqueued_total",
        "jobs_queue_size",
        "jobs_active_workers",
        "jobs_worker_slots",
        "jobs_duration_seconds_bucket",
        "jobs_retries_total",
        "jobs_dead_total",
        "jobs_snoozed_total",
        "jobs_expired_total",
        "jobs_schedule_lateness_seconds_bucket",
    ] {
        assert!(used.contains(family), "no panel uses {family}");
    }
}

#[test]
fn the_query_parser_finds_metrics_labels_and_groupings() {
    let q = r#"sum by (job, le) (rate(jobs_duration_seconds_bucket{queue=~"$queue", x="jobs_fake"}[$__rate_interval])) / jobs_active_workers"#;
    assert_eq!(
        selectors(q),
        [
            ("jobs_duration_seconds_bucket".to_owned(), vec!["queue".to_owned(), "x".to_owned()]),
            ("jobs_active_workers".to_owned(), vec![])
        ]
    );
    assert_eq!(grouping_labels(q), ["job", "le"]);
}
