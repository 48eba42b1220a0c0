//! `events`.

use std::time::Duration;

use jobs_core::backend::{ProgressUpdate, ProgressWrite};
use jobs_core::prelude::*;
use jobs_core::SharedQueue;

use crate::support::{cli, on_every_backend, take_one};
use crate::BuildReport;

on_every_backend!(events_since_a_cursor, events_show_progress);

async fn events_since_a_cursor(q: SharedQueue) {
    let l = q.listen("reports", Duration::from_secs(60)).await.unwrap();
    let id = BuildReport { day: 1 }.enqueue(&q).await.unwrap();
    q.cancel(&id).await.unwrap();
    let after = l.cursor.to_string();

    let out = cli(&q, &["events", "reports", "--after", &after, "--count", "2", "--json"]).await;
    let lines: Vec<serde_json::Value> = out.ok().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["job"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    let id_text = id.to_string();
    assert_eq!(
        seen,
        vec![("enqueued", id_text.as_str(), "build_report"), ("cancelled", id_text.as_str(), "build_report")]
    );
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'), "{}", lines[0]);
    assert!(lines[0]["cursor"].is_string());

    // Filtered by kind, as text.
    let out = cli(&q, &["events", "reports", "--after", &after, "--kind", "cancelled", "--count", "1"]).await;
    let text = out.ok();
    assert!(text.contains(&format!("cancelled  {id}  build_report  attempt 0")), "{text}");
    assert_eq!(text.lines().count(), 1);
    // A shorter kind is padded to the column's width.
    assert_eq!(format!("{:<9}|", jobs_core::EventKind::Started), "started  |");

    let out = cli(&q, &["events", "no{such}", "--count", "1"]).await;
    assert!(out.fails(2).contains("invalid queue name"), "{}", out.fails(2));
    let out = cli(&q, &["events", "reports", "--kind", "finished"]).await;
    assert_eq!(out.code, 2);
    assert!(out.err.contains("unknown event kind `finished`: expected one of enqueued, started"), "{}", out.err);
}

/// A progress event shows its percent and note (printable) as text, and its
/// fraction and note in JSON.
async fn events_show_progress(q: SharedQueue) {
    let l = q.listen("reports", Duration::from_secs(60)).await.unwrap();
    let id = BuildReport { day: 2 }.enqueue(&q).await.unwrap();
    let req = take_one("reports");
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("the report is ready");
    let update = ProgressUpdate { id: id.clone(), token: leased.token, fraction: 0.25, note: "page\n2 of 8".into() };
    assert_eq!(q.report_progress(&update).await.unwrap(), ProgressWrite::Stored);
    let after = l.cursor.to_string();

    let out = cli(&q, &["events", "reports", "--after", &after, "--kind", "progress", "--count", "1"]).await;
    let text = out.ok();
    assert!(text.contains(&format!("progress   {id}  build_report  attempt 1  25%  page 2 of 8")), "{text}");
    let out = cli(&q, &["events", "reports", "--after", &after, "--kind", "progress", "--count", "1", "--json"]).await;
    let e: serde_json::Value = serde_json::from_str(out.ok().trim()).unwrap();
    assert_eq!(
        (e["kind"].as_str(), e["progress"].as_f64(), e["detail"].as_str()),
        (Some("progress"), Some(0.25), Some("page\n2 of 8"))
    );
}
