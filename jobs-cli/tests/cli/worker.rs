//! `worker`: runs a pool until its shutdown signal, then stops gracefully.

use jobs_cli::Context;
use jobs_core::{JobId, JobStatus, SharedQueue};

use crate::support::{cli, exec, on_every_backend, wait_until};

on_every_backend!(runs_jobs_until_shutdown, bad_settings_fail_at_start, reloads_queue_limits_on_signal);

async fn status(q: &SharedQueue, id: &JobId) -> Option<JobStatus> {
    q.job(id).await.unwrap().map(|j| j.status)
}

async fn runs_jobs_until_shutdown(q: SharedQueue) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ctx = Context::new(q.clone()).with_data(crate::Factor(2)).with_shutdown(async move {
        let _ = stopped.await;
    });
    let args = ["worker", "--queues", "reports,flaky", "--workers", "2", "--no-scheduler"];
    let worker = exec(ctx, &args, None);
    let operator = async {
        let report = cli(&q, &["enqueue", "build_report", "--json", r#"{"day": 21}"#]).await;
        let report: JobId = report.ok().trim().parse().unwrap();
        let failing = cli(&q, &["enqueue", "always_fails", "--json", r#"{"reason": "disk on fire"}"#]).await;
        let failing: JobId = failing.ok().trim().parse().unwrap();
        wait_until("the report succeeds", || async { status(&q, &report).await == Some(JobStatus::Succeeded) }).await;
        wait_until("the failing job is dead", || async { status(&q, &failing).await == Some(JobStatus::Dead) }).await;
        let doc = cli(&q, &["job", &report.to_string(), "--json"]).await.json();
        assert_eq!(doc["result"], 42);
        let dead = cli(&q, &["dead", "list", "--queue", "flaky"]).await.ok().to_owned();
        assert_eq!(dead.lines().nth(2), Some("  disk on fire"), "{dead}");
        wait_until("the pool is listed", || async {
            cli(&q, &["workers", "--json"]).await.json()["workers"][0]["queues"]
                == serde_json::json!(["reports", "flaky"])
        })
        .await;
        stop.send(()).unwrap();
    };
    let (out, ()) = tokio::join!(worker, operator);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.out, "", "the worker prints its status on stderr: {out:?}");
    let lines: Vec<&str> = out.err.lines().collect();
    assert!(lines[0].starts_with("worker pool pool-"), "{out:?}");
    assert!(lines[0].ends_with(" serving reports, flaky with 2 workers; stop it with Ctrl-C or SIGTERM"), "{out:?}");
    assert!(lines.contains(&"stopping: waiting up to 30s for running jobs"), "{out:?}");
    assert_eq!(lines.last(), Some(&"stopped"), "{out:?}");
    assert_eq!(cli(&q, &["workers"]).await.ok(), "no live worker pools\n", "the pool removed its presence");
}

async fn bad_settings_fail_at_start(q: SharedQueue) {
    let ctx = Context::new(q.clone()).with_shutdown(std::future::pending());
    let out = exec(ctx, &["worker"], None).await;
    let line = out.fails(2);
    assert!(line.starts_with("error: job `build_report` ("), "{out:?}");
    assert!(line.contains("takes `Data<cli::Factor>`, but the pool was given no value of that type"), "{out:?}");
    let ctx = Context::new(q.clone()).with_data(crate::Factor(2)).with_shutdown(std::future::pending());
    let out = exec(ctx, &["worker", "--workers", "0"], None).await;
    assert_eq!(out.fails(2), "error: workers must be at least 1");
    let ctx = Context::new(q.clone()).with_data(crate::Factor(2)).with_shutdown(std::future::pending());
    let out = exec(ctx, &["worker", "--queues", "bad queue"], None).await;
    assert!(out.fails(2).starts_with("error: invalid queue name `bad queue`"), "{out:?}");
}

/// On each reload signal the worker reads the configuration again and
/// applies its queue limits; a configuration that does not load is
/// reported and changes nothing.
async fn reloads_queue_limits_on_signal(q: SharedQueue) {
    use std::sync::{Arc, Mutex};

    use jobs_core::config::Config;

    let limits = |yaml: &str| Config::from_yaml_str(yaml).unwrap();
    let file = Arc::new(Mutex::new("queues:\n  reports: { max_running: 3 }\n".to_owned()));
    let read = file.clone();
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = loads.clone();
    let (reload, reloads) = tokio::sync::mpsc::channel(4);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ctx = Context::new(q.clone())
        .with_data(crate::Factor(2))
        .with_config(limits(&file.lock().unwrap()))
        .with_config_loader(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Config::from_yaml_str(&read.lock().unwrap())?)
        })
        .with_reload_signal(reloads)
        .with_shutdown(async move {
            let _ = stopped.await;
        });
    let worker = exec(ctx, &["worker", "--queues", "reports", "--no-scheduler"], None);
    let policy = |q: SharedQueue| async move { q.policy("reports").await.unwrap() };
    let operator = async {
        wait_until("the limits at start", || async { policy(q.clone()).await.max_running == Some(3) }).await;
        *file.lock().unwrap() = "queues:\n  reports: { max_running: 7, group_concurrency: 2 }\n".to_owned();
        reload.send(()).await.unwrap();
        wait_until("the reloaded limits", || async { policy(q.clone()).await.max_running == Some(7) }).await;
        assert_eq!(policy(q.clone()).await.group_concurrency, Some(2));
        *file.lock().unwrap() = "queues:\n  reports: { max_running: 0 }\n".to_owned();
        reload.send(()).await.unwrap();
        let read_twice = || async { loads.load(std::sync::atomic::Ordering::SeqCst) == 2 };
        wait_until("the bad file is read", read_twice).await;
        *file.lock().unwrap() = "queues:\n  reports: { max_running: 9 }\n".to_owned();
        reload.send(()).await.unwrap();
        wait_until("the next good reload", || async { policy(q.clone()).await.max_running == Some(9) }).await;
        stop.send(()).unwrap();
    };
    let (out, ()) = tokio::join!(worker, operator);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.err.lines().collect();
    let reloaded = "configuration reloaded: limits of 1 queue applied";
    assert_eq!(lines.iter().filter(|l| **l == reloaded).count(), 2, "{out:?}");
    let refused: Vec<&&str> = lines.iter().filter(|l| l.starts_with("warning: configuration not reloaded")).collect();
    assert_eq!(refused.len(), 1, "{out:?}");
    assert!(refused[0].contains("queues.reports.max_running: must be at least 1"), "{out:?}");
}
