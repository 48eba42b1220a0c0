//! `enqueue`: payloads checked against the linked job types.

use jobs_core::{JobId, JobStatus, Priority, QueuePolicy, SharedQueue};
use serde_json::json;

use crate::support::{cli, on_every_backend};

on_every_backend!(enqueues_valid_payloads, refuses_what_is_wrong, queue_policies_fail_the_operation, ids_and_keys);

async fn enqueue(q: &SharedQueue, args: &[&str]) -> (JobId, String) {
    let mut argv = vec!["enqueue"];
    argv.extend_from_slice(args);
    let out = cli(q, &argv).await;
    let id = out.ok().trim_end().parse::<JobId>().unwrap_or_else(|e| panic!("stdout is the id alone: {e}: {out:?}"));
    assert_eq!(out.out, format!("{id}\n"));
    (id, out.err)
}

async fn enqueues_valid_payloads(q: SharedQueue) {
    let (id, note) = enqueue(&q, &["send_mail", "--json", r#"{"to": "ann@example.com", "subject": "hi"}"#]).await;
    assert_eq!(id.queue(), "mail");
    assert_eq!(note, "enqueued `send_mail` on queue `mail` at priority high, due now\n");
    let job = q.job(&id).await.unwrap().unwrap();
    assert_eq!(job.payload, json!({ "to": "ann@example.com", "subject": "hi" }));
    assert_eq!((job.status, job.priority, job.max_retries), (JobStatus::Pending, Priority::High, Some(2)));

    let args = ["send_mail", "--json", r#"{"to":"b@example.com","subject":"x"}"#, "--queue", "urgent"];
    let (id, note) =
        enqueue(&q, &[&args[..], &["--priority", "critical", "--delay", "5m", "--max-retries", "7"]].concat()).await;
    assert_eq!(id.queue(), "urgent");
    assert!(note.starts_with("enqueued `send_mail` on queue `urgent` at priority critical, due 20"), "{note}");
    let job = q.job(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.priority, job.max_retries), (JobStatus::Scheduled, Priority::Critical, Some(7)));

    let (id, _) = enqueue(&q, &["build_report", "--json", r#"{"day": 3}"#, "--at", "2099-01-01T01:00:00+01:00"]).await;
    assert_eq!(id.queue(), "reports");
    let doc = cli(&q, &["job", &id.to_string(), "--json"]).await.json();
    assert_eq!((doc["status"].as_str(), doc["run_at"].as_str()), (Some("scheduled"), Some("2099-01-01T00:00:00.000Z")));
}

async fn ids_and_keys(q: SharedQueue) {
    let mail = |to: &str| format!(r#"{{"to": "{to}", "subject": "hi"}}"#);
    let first_mail = mail("a@example.com");
    let (first, _) = enqueue(&q, &["send_mail", "--json", &first_mail, "--id", "welcome-7"]).await;
    let second_mail = mail("b@example.com");
    let (again, note) = enqueue(&q, &["send_mail", "--json", &second_mail, "--id", "welcome-7"]).await;
    assert_eq!(
        (again, note.as_str()),
        (first.clone(), "`send_mail` on queue `mail`: a job with its id is stored: added nothing\n")
    );
    let line =
        cli(&q, &["enqueue", "send_mail", "--json", &second_mail, "--id", "welcome-7", "--fail-if-exists"]).await;
    let line = line.fails(1);
    assert!(line.starts_with("error: a job with id `welcome-7` is stored in queue `mail` already"), "{line}");
    let shown = cli(&q, &["job", &first.to_string()]).await;
    assert!(shown.ok().contains("caller id welcome-7\n"), "{shown:?}");
    assert_eq!(q.job(&first).await.unwrap().unwrap().payload["to"], "a@example.com");

    let report = |day: u32| format!(r#"{{"day": {day}}}"#);
    let (keyed, _) = enqueue(&q, &["build_report", "--json", &report(1), "--key", "daily", "--delay", "1h"]).await;
    let (kept, note) = enqueue(&q, &["build_report", "--json", &report(2), "--key", "daily"]).await;
    assert_eq!(kept, keyed);
    assert!(note.contains("kept it, added nothing"), "{note}");
    let (replaced, _) = enqueue(&q, &["build_report", "--json", &report(3), "--key", "daily", "--replace"]).await;
    assert_eq!(replaced, keyed);
    let doc = cli(&q, &["job", &keyed.to_string(), "--json"]).await.json();
    assert_eq!(
        (doc["payload"]["day"].as_u64(), doc["status"].as_str(), doc["key"].as_str()),
        (Some(3), Some("pending"), Some("daily"))
    );
    let out = cli(&q, &["enqueue", "build_report", "--json", &report(4), "--replace"]).await;
    assert_eq!(out.code, 2, "--replace needs --key: {out:?}");
}

async fn refuses_what_is_wrong(q: SharedQueue) {
    let out = cli(&q, &["enqueue", "send_mial", "--json", "{}"]).await;
    let line = out.fails(2);
    assert!(line.starts_with("error: unknown job `send_mial` (did you mean `send_mail`?); linked jobs: "), "{line}");
    for name in ["always_fails", "build_report", "send_mail"] {
        assert!(line.contains(name), "{line}");
    }

    let out = cli(&q, &["enqueue", "send_mail", "--json", r#"{"to": "nope", "subject": ""}"#]).await;
    let line = out.fails(2);
    assert!(line.starts_with("error: invalid payload for job `send_mail`: field `to` (email): "), "{line}");
    assert!(line.contains("; field `subject` (length): "), "every broken rule: {line}");

    for (payload, want) in [
        (r#"{"to": "a@example.com"}"#, "error: invalid payload for job `send_mail`: missing field `subject`"),
        (
            r#"{"to": 1, "subject": "x"}"#,
            "error: invalid payload for job `send_mail`: invalid type: integer `1`, expected a string",
        ),
        ("{", "error: --json is not valid JSON: EOF while parsing an object at line 1 column 1"),
    ] {
        assert_eq!(cli(&q, &["enqueue", "send_mail", "--json", payload]).await.fails(2), want);
    }
    let out = cli(&q, &["enqueue", "build_report", "--json", r#"{"day": 40}"#]).await;
    assert!(out.fails(2).starts_with("error: invalid payload for job `build_report`: field `day` (range): "));
    let out = cli(&q, &["enqueue", "build_report", "--json", "[3]"]).await;
    assert!(out.fails(2).starts_with("error: --json must be a JSON object with the job's fields"), "{out:?}");
    let out = cli(&q, &["enqueue", "build_report", "--json", r#"{"day": 3}"#, "--queue", "a b"]).await;
    assert!(out.fails(2).starts_with("error: invalid queue name `a b`"), "{out:?}");

    // Refused by the parser: clap's usage errors, exit 2.
    for (args, want) in [
        (&["--priority", "urgent"][..], "unknown priority `urgent`"),
        (&["--delay", "soon"], "write e.g. 30s, 5m or 1h 30m"),
        (&["--at", "tomorrow"], "write RFC 3339"),
        (&["--delay", "5m", "--at", "2099-01-01T00:00:00Z"], "cannot be used with"),
    ] {
        let argv = [&["enqueue", "build_report", "--json", r#"{"day": 3}"#][..], args].concat();
        let out = cli(&q, &argv).await;
        assert_eq!((out.code, out.out.as_str()), (2, ""), "{args:?}");
        assert!(out.err.starts_with("error: ") && out.err.contains(want), "{args:?}: {}", out.err);
    }
    assert!(q.stats().await.unwrap().queues.values().all(|c| c.total().pending == 0), "nothing was written");
}

async fn queue_policies_fail_the_operation(q: SharedQueue) {
    let policy = QueuePolicy { max_jobs: Some(1), priority_levels: vec![Priority::Normal], ..Default::default() };
    q.set_policy("reports", policy).await.unwrap();
    enqueue(&q, &["build_report", "--json", r#"{"day": 1}"#]).await;
    let out = cli(&q, &["enqueue", "build_report", "--json", r#"{"day": 2}"#]).await;
    assert_eq!(out.fails(1), "error: queue `reports` is full: it holds its limit of 1 pending and scheduled jobs");
    let out = cli(&q, &["enqueue", "build_report", "--json", r#"{"day": 2}"#, "--priority", "high"]).await;
    assert!(out.fails(1).contains("does not accept priority `high`"), "{out:?}");
}
