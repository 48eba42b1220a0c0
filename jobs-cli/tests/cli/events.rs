//! `events`.

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::SharedQueue;

use crate::support::{cli, on_every_backend};
use crate::BuildReport;

on_every_backend!(events_since_a_cursor);

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

    let out = cli(&q, &["events", "no{such}", "--count", "1"]).await;
    assert!(out.fails(2).contains("invalid queue name"), "{}", out.fails(2));
    let out = cli(&q, &["events", "reports", "--kind", "finished"]).await;
    assert_eq!(out.code, 2);
    assert!(out.err.contains("unknown event kind `finished`: expected one of enqueued, started"), "{}", out.err);
}
