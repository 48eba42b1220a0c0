//! The `jobs` binary as an operator runs it: a process with real standard
//! streams (stdin not a terminal), the backend named by flags and files.
#![allow(clippy::unwrap_used)] // Scenarios are tests: a failed unwrap is a failed test.

use std::process::{Command, Output, Stdio};

fn jobs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobs"))
        .args(args)
        .env_remove("JOBS_REDIS_URL")
        .env_remove("JOBS_CONFIG")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("the jobs binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn one_error_line(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    assert_eq!(text(&out.stdout), "", "{out:?}");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning: ")).collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_owned()
}

#[test]
fn help_works_and_lists_exit_codes() {
    let out = jobs(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Exit codes: 0 ok, 1 operation failed, 2 usage error"));
}

#[test]
fn without_redis_it_warns_that_it_sees_an_empty_memory_queue() {
    let out = jobs(&["stats"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "no queues: nothing has been enqueued yet\n");
    assert!(text(&out.stderr).starts_with("warning: no Redis is configured"), "{out:?}");
}

#[test]
fn with_no_job_linked_enqueue_and_worker_explain_why() {
    let line = one_error_line(&jobs(&["enqueue", "send_mail", "--json", "{}"]), 2);
    assert!(line.starts_with("error: unknown job `send_mail`: this program links no job;"), "{line}");
    let line = one_error_line(&jobs(&["worker"]), 78);
    assert!(line.starts_with("error: no job is linked into this program, so a worker has nothing to run"), "{line}");
}

#[test]
fn a_bad_configuration_file_is_exit_78() {
    let line = one_error_line(&jobs(&["--config", "/nonexistent/jobs.yaml", "stats"]), 78);
    assert!(line.starts_with("error: /nonexistent/jobs.yaml: cannot read the configuration:"), "{line}");
}

#[cfg(not(feature = "redis"))]
#[test]
fn a_redis_url_without_the_redis_feature_is_exit_78() {
    let out = jobs(&["--redis-url", "redis://:hunter2@127.0.0.1:6379", "queues"]);
    let line = one_error_line(&out, 78);
    assert!(line.contains("built without the `redis` feature") && !line.contains("hunter2"), "{line}");
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_redis_is_exit_69_and_the_password_is_never_shown() {
    let refusing = jobs_redis::testing::RefusingPort::new();
    let port = refusing.port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let out = jobs(&["--redis-url", &url, "queues"]);
    let line = one_error_line(&out, 69);
    assert!(line.starts_with(&format!("error: cannot connect to Redis at redis://:***@127.0.0.1:{port}: ")), "{line}");
    assert!(!text(&out.stderr).contains("hunter2"), "{line}");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_through_a_configuration_file() {
    use std::time::Duration;

    use jobs_core::backend::{FetchRequest, Finish, Outcome};
    use jobs_core::{JobId, JobQueue, NewJob};

    let url = jobs_redis::testing::shared_server_url();
    let prefix = format!("cli-bin-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("jobs-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jobs.yaml");
    std::fs::write(&file, format!("jobs:\n  redis: {{ url: \"{url}\", prefix: \"{prefix}\" }}\n")).unwrap();
    let config = file.to_str().unwrap();

    // A dead job, put there the way a worker would.
    let q = jobs_redis::RedisQueue::from_config(&jobs_redis::RedisConfig {
        prefix: prefix.clone(),
        ..jobs_redis::RedisConfig::new(url.clone())
    })
    .await
    .unwrap();
    let id = JobId::new("imports");
    let job =
        NewJob { max_retries: Some(0), ..NewJob::new(id.clone(), "import_csv", br#"{"path":"/data/a.csv"}"#.to_vec()) };
    q.enqueue_many(vec![job]).await.unwrap();
    let req = FetchRequest {
        queues: vec!["imports".into()],
        max: 1,
        lease: Duration::from_secs(30),
        default_max_retries: 0,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    };
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("ready");
    let outcome = Outcome::Dead { error: "line 7: bad date".into() };
    q.finish(vec![Finish { id: id.clone(), token: leased.token, outcome }]).await.unwrap();

    let out = jobs(&["--config", config, "dead", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stderr), "", "no warning on Redis: {out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["jobs"][0]["id"], id.to_string());
    assert_eq!(doc["jobs"][0]["last_error"], "line 7: bad date");

    let line = one_error_line(&jobs(&["--config", config, "dead", "purge", "--queue", "imports"]), 2);
    assert!(line.ends_with("stdin is not a terminal; pass --yes to confirm"), "{line}");
    let out = jobs(&["--config", config, "dead", "purge", "--queue", "imports", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "purged 1 dead job of queue `imports`\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `archive` reads files only: no backend is opened (so no warning about
/// one), its folder comes from `--dir` or the configuration, and a line
/// a writer has not finished is left out.
#[test]
fn archive_reads_files_without_a_backend() {
    let dir = std::env::temp_dir().join(format!("jobs-bin-archive-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("reports")).unwrap();
    let job = serde_json::json!({
        "backlog": "b1", "seq": 1, "archived_at": "2030-01-31T09:00:01.000Z",
        "job": { "id": "reports:01HZX3T6J5K0000000000000AA", "name": "build_report", "queue": "reports",
                 "priority": "normal", "status": "succeeded", "payload": { "day": 3 }, "attempts": 1,
                 "max_retries": null, "attempt_log": [], "attempts_omitted": 0,
                 "enqueued_at": { "secs_since_epoch": 1_895_994_000u64, "nanos_since_epoch": 0 },
                 "run_at": null,
                 "finished_at": { "secs_since_epoch": 1_895_994_001u64, "nanos_since_epoch": 0 },
                 "result": 42 }
    });
    let line = format!("{job}\n{{\"backlog\":");
    std::fs::write(dir.join("reports/2030-01-31.0.jsonl"), line).unwrap();
    let d = dir.to_str().unwrap();
    let out = jobs(&["archive", "--dir", d, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stderr), "", "no backend, no warning");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["jobs"][0]["job"]["result"], 42);
    let config = dir.join("jobs.yaml");
    std::fs::write(&config, format!("jobs:\n  archive: {{ dir: \"{d}\" }}\n")).unwrap();
    let out = jobs(&["--config", config.to_str().unwrap(), "archive", "--queue", "reports"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("reports:01HZX3T6J5K0000000000000AA"), "{out:?}");
    let line = one_error_line(&jobs(&["archive"]), 2);
    assert!(line.contains("jobs.archive.dir"), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}
