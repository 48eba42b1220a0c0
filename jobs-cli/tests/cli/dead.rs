//! `dead list|show|retry|purge`.

use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use serde_json::json;

use crate::support::{cli, cli_answering, fail, fits_80, on_every_backend, wait_until};
use crate::{BuildReport, SendMail};

on_every_backend!(list_and_show, retry_one, retry_all_asks_first, purge_asks_first);

/// A dead `build_report` on `reports` whose attempts failed with `errors`.
async fn dead_report(q: &SharedQueue, day: u32, errors: &[&str]) -> JobId {
    let id = BuildReport { day }.enqueue(q).await.unwrap();
    fail(q, &id, errors).await;
    tick().await;
    id
}

/// Waits until the clock has moved on by a few milliseconds, so that the
/// next job dies at a later time than this one (backends keep milliseconds).
async fn tick() {
    let start = std::time::Instant::now();
    wait_until("the clock moves on", || async { start.elapsed() >= std::time::Duration::from_millis(3) }).await;
}

async fn dead_count(q: &SharedQueue, queue: &str) -> u64 {
    q.stats().await.unwrap().queue(queue).dead
}

async fn list_and_show(q: SharedQueue) {
    let long_error = format!("upstream said: {}", "no ".repeat(100));
    let a = dead_report(&q, 5, &["timeout", "refused"]).await;
    let b = dead_report(&q, 6, &[long_error.as_str()]).await;
    let c = SendMail { to: "ann@example.com".into(), subject: "hi".into() }.enqueue(&q).await.unwrap();
    fail(&q, &c, &["mailbox full"]).await;

    let text = cli(&q, &["dead", "list"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["ID", "JOB", "TRIES", "DIED"]);
    assert_eq!(lines.len(), 7, "a header, then a line and an error line per job:\n{text}");
    assert!(lines[1].starts_with(&c.to_string()) && lines[1].contains("send_mail"), "newest first:\n{text}");
    assert_eq!(lines[2], "  mailbox full");
    assert!(lines[3].starts_with(&b.to_string()) && lines[3].contains("build_report"), "{text}");
    assert!(lines[4].starts_with("  upstream said: no no") && lines[4].ends_with('…'), "cut to fit:\n{text}");
    assert!(lines[5].starts_with(&a.to_string()), "{text}");
    assert_eq!(lines[6], "  refused");

    let text = cli(&q, &["dead", "list", "--queue", "reports"]).await.ok().to_owned();
    assert_eq!(text.lines().count(), 5, "{text}");
    let out = cli(&q, &["dead", "list", "--limit", "1"]).await;
    assert_eq!(out.ok().lines().count(), 3, "{out:?}");
    assert_eq!(out.err, "showing 1 of 3 dead jobs (--limit N shows more)\n");

    let doc = cli(&q, &["dead", "list", "--json"]).await.json();
    assert_eq!(doc["total"], 3);
    let ids: Vec<&str> = doc["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [c.to_string(), b.to_string(), a.to_string()]);
    assert_eq!(doc["jobs"][2]["attempt_log"][0]["error"], "timeout");
    assert_eq!(doc["jobs"][2]["last_error"], "refused");

    assert_eq!(cli(&q, &["dead", "list", "--queue", "empty"]).await.ok(), "no dead jobs in queue `empty`\n");
    let out = cli(&q, &["dead", "list", "--queue", "no spaces"]).await;
    assert!(out.fails(2).starts_with("error: invalid queue name `no spaces`"), "{out:?}");

    let text = cli(&q, &["dead", "show", &a.to_string()]).await.ok().to_owned();
    assert!(text.contains("status    dead") && text.contains("failed: timeout") && text.contains("failed: refused"));
    let doc = cli(&q, &["dead", "show", &a.to_string(), "--json"]).await.json();
    assert_eq!((doc["status"].as_str(), doc["attempts"].as_u64()), (Some("dead"), Some(2)));

    let pending = BuildReport { day: 7 }.enqueue(&q).await.unwrap();
    let out = cli(&q, &["dead", "show", &pending.to_string()]).await;
    assert_eq!(out.fails(1), format!("error: job `{pending}` is pending, not dead (`job {pending}` shows it)"));
}

async fn retry_one(q: SharedQueue) {
    let id = dead_report(&q, 8, &["boom"]).await;
    let out = cli(&q, &["dead", "retry", &id.to_string()]).await;
    assert_eq!(out.ok(), format!("retried {id}: pending again, attempts reset\n"));
    let job = q.job(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts), (jobs_core::JobStatus::Pending, 0));
    let out = cli(&q, &["dead", "retry", &id.to_string()]).await;
    assert!(out.fails(1).contains("cannot retry a job that is not dead: job `"), "{out:?}");
    let missing = JobId::new("reports");
    assert_eq!(cli(&q, &["dead", "retry", &missing.to_string()]).await.fails(1), format!("error: no job `{missing}`"));

    fail(&q, &id, &["boom again"]).await;
    let text = cli(&q, &["job", &id.to_string()]).await.ok().to_owned();
    let log: Vec<&str> = text.lines().skip_while(|l| *l != "attempts:").skip(1).collect();
    assert_eq!(log.len(), 3, "{text}");
    assert!(log[0].starts_with("  #1") && log[0].ends_with("failed: boom"), "{text}");
    assert_eq!(log[1], "  -- retried from the dead-letter set, attempts reset --");
    assert!(log[2].starts_with("  #1") && log[2].ends_with("failed: boom again"), "{text}");
    let doc = cli(&q, &["dead", "retry", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "retried": [id.to_string()], "skipped": [] }));
}

async fn retry_all_asks_first(q: SharedQueue) {
    let ids = [dead_report(&q, 1, &["x"]).await, dead_report(&q, 2, &["y"]).await, dead_report(&q, 3, &["z"]).await];
    let args = ["dead", "retry", "--all", "--queue", "reports"];

    let out = cli(&q, &args).await;
    assert_eq!(
        out.fails(2),
        "error: refusing to retry 3 dead jobs of queue `reports` without confirmation: stdin is not a terminal; \
         pass --yes to confirm"
    );
    let out = cli_answering(&q, &args, "n\n").await;
    assert_eq!((out.code, out.out.as_str()), (1, ""), "{out:?}");
    assert_eq!(
        out.err,
        "Retry 3 dead jobs of queue `reports`? [y/N] error: not confirmed: did not retry 3 dead jobs of queue `reports`\n"
    );
    let out = cli_answering(&q, &args, "").await;
    assert_eq!(out.code, 1, "end of input is a no: {out:?}");
    assert_eq!(dead_count(&q, "reports").await, 3, "nothing changed");

    let out = cli_answering(&q, &args, "y\n").await;
    assert_eq!(out.ok(), "retried 3 dead jobs of queue `reports`\n");
    assert!(out.err.starts_with("Retry 3 dead jobs of queue `reports`? [y/N] "), "{out:?}");
    assert!(out.err.ends_with("retried 3/3\n"), "progress on stderr: {out:?}");
    assert_eq!(dead_count(&q, "reports").await, 0);
    for id in &ids {
        assert_eq!(q.job(id).await.unwrap().unwrap().status, jobs_core::JobStatus::Pending);
    }

    let doc = cli(&q, &["dead", "retry", "--all", "--queue", "reports", "--yes", "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "retried": [], "skipped": [] }));
    let out = cli(&q, &["dead", "retry", "--all", "--queue", "reports", "-y"]).await;
    assert_eq!(out.ok(), "no dead jobs in queue `reports`: nothing to do\n");

    for args in [&["dead", "retry", "--all"][..], &["dead", "retry"], &["dead", "retry", "--queue", "reports"]] {
        let out = cli(&q, args).await;
        assert_eq!((out.code, out.out.as_str()), (2, ""), "{args:?}: {out:?}");
        assert!(out.err.starts_with("error: "), "{out:?}");
    }
}

async fn purge_asks_first(q: SharedQueue) {
    let a = dead_report(&q, 1, &["x"]).await;
    dead_report(&q, 2, &["y"]).await;
    let args = ["dead", "purge", "--queue", "reports"];
    let out = cli(&q, &args).await;
    assert!(out.fails(2).starts_with("error: refusing to purge 2 dead jobs of queue `reports` without confirmation"));
    let out = cli_answering(&q, &args, "yes\n").await;
    assert_eq!(out.ok(), "purged 2 dead jobs of queue `reports`\n");
    assert_eq!(
        out.err,
        "Delete 2 dead jobs of queue `reports`? This cannot be undone. [y/N] purging 2 dead jobs of queue `reports`…\n"
    );
    assert_eq!(dead_count(&q, "reports").await, 0);
    assert_eq!(cli(&q, &["job", &a.to_string()]).await.fails(1), format!("error: no job `{a}`"));

    let doc = cli(&q, &["dead", "purge", "--queue", "reports", "--yes", "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "purged": 0 }));
    dead_report(&q, 3, &["z"]).await;
    let doc = cli(&q, &["dead", "purge", "--queue", "reports", "--yes", "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "purged": 1 }));
    let out = cli(&q, &["dead", "purge"]).await;
    assert_eq!(out.code, 2, "--queue is required: {out:?}");
}
