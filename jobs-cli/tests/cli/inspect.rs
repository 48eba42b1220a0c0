//! `stats`, `queues`, `job` and `workers`.

use std::time::Duration;

use jobs_core::backend::{Finish, Outcome, ProgressUpdate, ProgressWrite};
use jobs_core::prelude::*;
use jobs_core::{SharedQueue, When};
use serde_json::json;

use crate::support::{cli, fail, fits_80, on_every_backend, take_one, wait_until};
use crate::{BuildReport, SendMail};

on_every_backend!(
    empty_backend,
    stats_and_queues,
    job_shows_everything,
    job_shows_snoozes_and_expiry,
    job_shows_progress,
    job_shows_whether_its_handler_started,
    job_errors,
    workers_lists_live_pools
);

fn mail(to: &str) -> SendMail {
    SendMail { to: to.into(), subject: "hi".into() }
}

async fn empty_backend(q: SharedQueue) {
    assert_eq!(cli(&q, &["stats"]).await.ok(), "no queues: nothing has been enqueued yet\n");
    assert_eq!(cli(&q, &["queues"]).await.ok(), "no queues: nothing has been enqueued yet\n");
    let stats = cli(&q, &["stats", "--json"]).await.json();
    assert_eq!(stats["queues"], json!({}));
    assert_eq!(stats["total"]["pending"], 0);
    assert_eq!(cli(&q, &["queues", "--json"]).await.json(), json!({ "queues": [] }));
    assert_eq!(cli(&q, &["workers"]).await.ok(), "no live worker pools\n");
    assert_eq!(cli(&q, &["workers", "--json"]).await.json(), json!({ "workers": [] }));
}

async fn stats_and_queues(q: SharedQueue) {
    let long_queue = "q".repeat(64);
    mail("ann@example.com").enqueue(&q).await.unwrap();
    mail("bob@example.com").enqueue_with(&q, JobOptions::new().priority(Priority::Critical)).await.unwrap();
    BuildReport { day: 1 }.enqueue_with(&q, JobOptions::new().queue(&long_queue)).await.unwrap();
    BuildReport { day: 2 }.enqueue_with(&q, JobOptions::new().delay(Duration::from_secs(3600))).await.unwrap();

    let text = cli(&q, &["stats"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("QUEUE"), "{text}");
    assert!(lines[0].ends_with("PENDING  SCHED  RUNNING  RETRY  DEAD  DONE  FAILED  EXPIRED"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("mail") && l.contains("critical")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("mail") && l.contains("high")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("qqqq") && l.contains('…')), "long names are cut:\n{text}");
    let total = lines.last().unwrap();
    assert!(total.starts_with("total"), "{text}");
    assert_eq!(total.split_whitespace().skip(1).take(2).collect::<Vec<_>>(), ["3", "1"], "{text}");

    let stats = cli(&q, &["stats", "--json"]).await.json();
    assert_eq!(stats["queues"]["mail"]["priorities"]["high"]["pending"], 1);
    assert_eq!(stats["queues"]["mail"]["priorities"]["critical"]["pending"], 1);
    assert_eq!(stats["queues"]["mail"]["total"]["pending"], 2);
    assert_eq!(stats["queues"]["mail"]["paused"], false);
    assert_eq!(stats["queues"]["reports"]["total"]["scheduled"], 1);
    assert_eq!(stats["total"]["pending"], 3);
    for key in ["pending", "scheduled", "running", "retrying", "dead", "processed", "failed", "expired"] {
        assert!(stats["total"][key].is_u64(), "{key} in {stats}");
    }

    let text = cli(&q, &["queues"]).await.ok().to_owned();
    fits_80(&text);
    assert_eq!(text.lines().count(), 4, "a header and one line per queue:\n{text}");
    assert!(text.lines().skip(1).all(|l| l.contains("active")), "{text}");
    let queues = cli(&q, &["queues", "--json"]).await.json();
    let names: Vec<&str> = queues["queues"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mail", long_queue.as_str(), "reports"]);
    assert_eq!(queues["queues"][0]["pending"], 2);
    assert_eq!(queues["queues"][0]["paused"], false);
}

async fn job_shows_everything(q: SharedQueue) {
    let id = BuildReport { day: 3 }.enqueue(&q).await.unwrap();
    fail(&q, &id, &["db timeout", "db down\nfor maintenance"]).await;
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    for want in [
        format!("id        {id}"),
        "job       build_report".into(),
        "queue     reports".into(),
        "status    dead".into(),
        "attempts  2 (retries: the pool's default)".into(),
        "payload   {\"day\":3}".into(),
    ] {
        assert!(text.contains(&want), "missing `{want}` in:\n{text}");
    }
    let attempts: Vec<&str> = text.lines().filter(|l| l.starts_with("  #")).collect();
    assert_eq!(attempts.len(), 2, "{text}");
    assert!(attempts[0].starts_with("  #1") && attempts[0].ends_with("failed: db timeout"), "{text}");
    assert!(attempts[1].ends_with("failed: db down for maintenance"), "{text}");

    let doc = cli(&q, &["job", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc["id"], id.to_string());
    assert_eq!(doc["name"], "build_report");
    assert_eq!(doc["status"], "dead");
    assert_eq!(doc["priority"], "normal");
    assert_eq!(doc["attempts"], 2);
    assert_eq!(doc["payload"], json!({ "day": 3 }));
    assert_eq!(doc["last_error"], "db down\nfor maintenance");
    assert_eq!(doc["attempt_log"][0]["error"], "db timeout");
    assert!(doc["attempt_log"][0]["started_at"].as_str().unwrap().ends_with('Z'), "{doc}");
    assert!(doc["finished_at"].is_string() && doc["result"].is_null(), "{doc}");

    // A job that succeeded with a result.
    let id = BuildReport { day: 4 }.enqueue(&q).await.unwrap();
    let req = take_one("reports");
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("the report is ready");
    let result = Some(b"8".to_vec());
    q.finish(vec![Finish { id: id.clone(), token: leased.token, outcome: Outcome::Succeeded { result } }])
        .await
        .unwrap();
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    assert!(text.contains("status    succeeded") && text.contains("result    8"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("  #1") && l.ends_with("ok")), "{text}");
    assert_eq!(cli(&q, &["job", &id.to_string(), "--json"]).await.json()["result"], 8);
}

/// A running job's last progress: percent, note (made printable: it is the
/// job's own text), attempt and age; in JSON as stored.
async fn job_shows_progress(q: SharedQueue) {
    let id = BuildReport { day: 3 }.enqueue(&q).await.unwrap();
    let req = take_one("reports");
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("the report is ready");
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    assert!(!text.contains("progress"), "none reported yet:\n{text}");
    let update =
        ProgressUpdate { id: id.clone(), token: leased.token, fraction: 0.42, note: "page 3\x1b[2J of 7".into() };
    assert_eq!(q.report_progress(&update).await.unwrap(), ProgressWrite::Stored);
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    let line = text.lines().find(|l| l.starts_with("progress")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("progress  42% page 3\\u{1b}[2J of 7 (attempt 1, "), "{line}");
    fits_80(line);
    let doc = cli(&q, &["job", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc["progress"]["note"], "page 3\x1b[2J of 7");
    assert_eq!(doc["progress"]["attempt"], 1);
    assert!((doc["progress"]["fraction"].as_f64().unwrap() - 0.42).abs() < 1e-6, "{}", doc["progress"]);
    assert!(doc["progress"]["at"].as_str().unwrap().ends_with('Z'));
}

/// A running job says whether its handler is known to have started: not
/// while it is only leased, from its pool's start mark on; in JSON as a
/// boolean, absent for a job not running.
async fn job_shows_whether_its_handler_started(q: SharedQueue) {
    use jobs_core::backend::{Finish, FinishResult, Outcome};
    let id = BuildReport { day: 4 }.enqueue(&q).await.unwrap();
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    assert!(!text.contains("handler"), "pending:\n{text}");
    assert!(cli(&q, &["job", &id.to_string(), "--json"]).await.json().get("handler_started").is_none());
    let leased = q.fetch(&take_one("reports")).await.unwrap().jobs.pop().expect("the report is ready");
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    let line = text.lines().find(|l| l.starts_with("handler")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line, "handler   not reported started (waiting for a worker, or just started)");
    fits_80(line);
    assert_eq!(cli(&q, &["job", &id.to_string(), "--json"]).await.json()["handler_started"], false);
    let mark = Finish { id: id.clone(), token: leased.token, outcome: Outcome::Started };
    assert_eq!(q.finish(vec![mark]).await.unwrap(), vec![FinishResult::Applied(jobs_core::JobStatus::Running)]);
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    assert!(text.lines().any(|l| l == "handler   started"), "{text}");
    assert_eq!(cli(&q, &["job", &id.to_string(), "--json"]).await.json()["handler_started"], true);
}

/// A snoozed run is shown as a snooze, not a failure; an expired job shows
/// its state and expiry, and `stats` counts it.
async fn job_shows_snoozes_and_expiry(q: SharedQueue) {
    let snoozy = BuildReport { day: 5 }.enqueue(&q).await.unwrap();
    let req = take_one("reports");
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("the report is ready");
    let outcome = Outcome::Snooze {
        at: When::In(Duration::from_secs(3600)),
        reason: "export not ready".into(),
        limit: 5,
        holds_group: false,
    };
    q.finish(vec![Finish { id: snoozy.clone(), token: leased.token, outcome }]).await.unwrap();
    let text = cli(&q, &["job", &snoozy.to_string()]).await.ok().to_owned();
    assert!(text.contains("status    scheduled") && text.contains("snoozes   1"), "{text}");
    assert!(text.contains("attempts  0 "), "a snooze is not an attempt:\n{text}");
    assert!(text.lines().any(|l| l.starts_with("  #1") && l.ends_with("snoozed 1h: export not ready")), "{text}");
    let doc = cli(&q, &["job", &snoozy.to_string(), "--json"]).await.json();
    assert_eq!((doc["snoozes"].as_u64(), doc["attempt_log"][0]["snoozed_ms"].as_u64()), (Some(1), Some(3_600_000)));

    let late =
        BuildReport { day: 6 }.enqueue_with(&q, JobOptions::new().expires_in(Duration::from_millis(20))).await.unwrap();
    let expires = q.job(&late).await.unwrap().unwrap().expires_at.unwrap();
    wait_until("the expiry passes", || async { q.now().await.unwrap() > expires }).await;
    assert_eq!(q.fetch(&req).await.unwrap().expired.len(), 1);
    let text = cli(&q, &["job", &late.to_string()]).await.ok().to_owned();
    assert!(text.contains("status    expired") && text.contains("expires   "), "{text}");
    let stats = cli(&q, &["stats", "--json"]).await.json();
    assert_eq!(stats["queues"]["reports"]["total"]["expired"], 1);
}

async fn job_errors(q: SharedQueue) {
    let missing = jobs_core::JobId::new("mail").to_string();
    let out = cli(&q, &["job", &missing]).await;
    assert_eq!(out.fails(1), format!("error: no job `{missing}`"));
    let out = cli(&q, &["job", "nope"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.err.contains("`nope` is not a job id: expected QUEUE:ULID"), "{out:?}");
}

async fn workers_lists_live_pools(q: SharedQueue) {
    let pool = WorkerPool::builder(q.clone())
        .queues(["mail"])
        .workers(3)
        .scheduler(false)
        .data(crate::Factor(2))
        .start()
        .unwrap();
    wait_until("the pool reports itself", || async {
        cli(&q, &["workers", "--json"]).await.json()["workers"].as_array().is_some_and(|w| !w.is_empty())
    })
    .await;
    let doc = cli(&q, &["workers", "--json"]).await.json();
    let w = &doc["workers"][0];
    assert_eq!(w["id"], pool.id());
    assert_eq!(w["pid"], std::process::id());
    assert_eq!(w["queues"], json!(["mail"]));
    assert_eq!(w["workers"], 3);
    assert!(w["started_at"].as_str().unwrap().ends_with('Z') && w["running_jobs"].is_array(), "{doc}");
    assert_eq!(w["ahead"], 0, "an idle pool takes no job ahead: {doc}");
    let text = cli(&q, &["workers"]).await.ok().to_owned();
    fits_80(&text);
    assert!(text.starts_with("POOL") && text.contains(pool.id()) && text.contains("0/3"), "{text}");
    assert!(text.lines().next().is_some_and(|h| h.contains("BUSY") && h.contains("AHEAD")), "{text}");
    pool.shutdown().await.unwrap();
    assert_eq!(cli(&q, &["workers"]).await.ok(), "no live worker pools\n");
}
