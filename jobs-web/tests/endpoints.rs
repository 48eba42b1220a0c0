//! Every endpoint, healthy and unhealthy: status codes and JSON shape.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use jobs_core::config::Config;
use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use jobs_web::{QueueLimits, Server, Thresholds, WebState};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

const COUNT_KEYS: [&str; 8] = ["dead", "expired", "failed", "pending", "processed", "retrying", "running", "scheduled"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_system_answers_200_everywhere() {
    let metrics = JobMetrics::new();
    let queue: SharedQueue = Arc::new(metrics.instrument(MemoryQueue::new()));
    let pool = start_pool(queue.clone(), &metrics);
    run_mixed_jobs(&queue).await;
    let state = WebState::new(queue.clone()).metrics(metrics.clone());
    eventually("the pool reports itself", || async { !queue.pools().await.expect("workers").is_empty() }).await;

    let (code, jobs) = get_json(&state, "/health/jobs").await;
    assert_eq!(code, StatusCode::OK, "{jobs}");
    assert_eq!(
        keys(&jobs),
        ["backend_reachable", "busy", "pools", "problems", "queues", "status", "totals", "workers"],
        "{jobs}"
    );
    assert_eq!(jobs["status"], "healthy");
    assert_eq!(jobs["problems"], serde_json::json!([]));
    assert_eq!(
        (jobs["backend_reachable"].clone(), jobs["pools"].clone(), jobs["workers"].clone()),
        (true.into(), 1.into(), 3.into())
    );
    assert_eq!(keys(&jobs["totals"]), COUNT_KEYS);
    assert_eq!(jobs["totals"]["dead"], 2, "{jobs}");
    assert_eq!(jobs["totals"]["processed"], 5, "{jobs}");

    let (code, queues) = get_json(&state, "/health/queues").await;
    assert_eq!(code, StatusCode::OK, "{queues}");
    assert_eq!(keys(&queues), ["problems", "queues", "status"]);
    let q = &queues["queues"][0];
    let mut want = vec!["by_priority", "healthy", "name", "paused"];
    want.extend(COUNT_KEYS);
    want.sort_unstable();
    assert_eq!(keys(q), want, "{q}");
    assert_eq!(
        (q["name"].clone(), q["healthy"].clone(), q["paused"].clone()),
        (QUEUE.into(), true.into(), false.into())
    );
    assert_eq!(q["by_priority"]["high"]["dead"], 1, "{q}");
    assert_eq!(keys(&q["by_priority"]["normal"]), COUNT_KEYS);

    let (code, workers) = get_json(&state, "/health/workers").await;
    assert_eq!(code, StatusCode::OK, "{workers}");
    assert_eq!(keys(&workers), ["busy", "pools", "problems", "status", "workers"]);
    let p = &workers["pools"][0];
    assert_eq!(keys(p), ["host", "id", "last_seen", "pid", "queues", "running", "started_at", "workers"]);
    assert_eq!(p["id"], pool.id());
    assert_eq!(p["pid"], std::process::id());
    assert_eq!(p["queues"], serde_json::json!([QUEUE]));
    assert!(p["last_seen"].as_str().expect("text").ends_with('Z'), "RFC 3339: {p}");

    pool.shutdown().await.expect("clean shutdown");
    // A pool that shut down removed its presence record.
    let (code, workers) = get_json(&state, "/health/workers").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{workers}");
}

#[tokio::test]
async fn no_live_pool_is_unhealthy_unless_not_required() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let state = WebState::new(queue.clone());
    let (code, workers) = get_json(&state, "/health/workers").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(workers["status"], "unhealthy");
    assert!(workers["problems"][0].as_str().expect("text").contains("no worker pool is alive"), "{workers}");
    assert_eq!((workers["workers"].clone(), workers["pools"].clone()), (0.into(), serde_json::json!([])));
    let (code, jobs) = get_json(&state, "/health/jobs").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{jobs}");
    assert_eq!(jobs["backend_reachable"], true);
    let (code, _) = get_json(&state, "/health/queues").await;
    assert_eq!(code, StatusCode::OK, "queues do not need a pool");

    let state = WebState::new(queue).thresholds(Thresholds { require_pool: false, ..Thresholds::new() });
    assert_eq!(get_json(&state, "/health/workers").await.0, StatusCode::OK);
    assert_eq!(get_json(&state, "/health/jobs").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_backend_is_503_and_metrics_still_serve() {
    let state = WebState::new(unreachable()).metrics(JobMetrics::new());
    for uri in ["/health/jobs", "/health/queues", "/health/workers"] {
        let (code, body) = get_json(&state, uri).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {body}");
        assert_eq!(body["status"], "unhealthy");
        assert!(body["problems"].to_string().contains("connection refused"), "{uri}: {body}");
    }
    let (_, jobs) = get_json(&state, "/health/jobs").await;
    assert_eq!(jobs["backend_reachable"], false);
    assert!(jobs["problems"][0].as_str().expect("text").starts_with("backend unreachable: "), "{jobs}");
    let (_, queues) = get_json(&state, "/health/queues").await;
    assert_eq!(queues["queues"], serde_json::json!([]));

    let (code, ctype, text) = get(&state, "/metrics").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert!(text.contains("jobs_backend_up 0"), "{text}");
}

#[tokio::test]
async fn a_queue_past_a_limit_is_503() {
    let config = Config::from_yaml_str("queues:\n  web_test: { max_jobs: 2 }\n").expect("valid");
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    config.apply_queue_policies(&queue).await.expect("policies");
    let state = WebState::new(queue.clone())
        .thresholds(Thresholds { require_pool: false, ..Thresholds::from_config(&config) })
        .stats_ttl(Duration::ZERO);
    WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("room for one");
    assert_eq!(get_json(&state, "/health/queues").await.0, StatusCode::OK);
    WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("room for two");
    assert!(WebFlaky { fail_times: 0 }.enqueue(&queue).await.is_err(), "full");

    let (code, body) = get_json(&state, "/health/queues").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["queues"][0]["healthy"], false);
    let problem = body["problems"][0].as_str().expect("text");
    assert!(problem.contains("queue `web_test`: 2 jobs waiting (pending + scheduled), at or above its limit of 2"));
    assert_eq!(get_json(&state, "/health/jobs").await.0, StatusCode::SERVICE_UNAVAILABLE);

    let state = WebState::new(queue.clone())
        .thresholds(Thresholds::new().queue("other", QueueLimits { pending: Some(1), ..Default::default() }));
    assert_eq!(get_json(&state, "/health/queues").await.0, StatusCode::OK, "limits are per queue");
    let state = WebState::new(queue)
        .thresholds(Thresholds::new().queue(QUEUE, QueueLimits { pending: Some(2), ..Default::default() }));
    let (code, body) = get_json(&state, "/health/queues").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["problems"][0].as_str().expect("text").contains("2 jobs pending"), "{body}");
}

#[tokio::test]
async fn stats_are_cached_for_the_ttl() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let cached = WebState::new(queue.clone()).stats_ttl(Duration::from_secs(3600));
    let fresh = WebState::new(queue.clone()).stats_ttl(Duration::ZERO);
    assert_eq!(get_json(&cached, "/health/jobs").await.1["queues"], 0);
    WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("enqueue");
    assert_eq!(get_json(&cached, "/health/jobs").await.1["queues"], 0, "served from the cache");
    assert_eq!(get_json(&fresh, "/health/jobs").await.1["queues"], 1);
}

#[tokio::test]
async fn metrics_are_404_when_disabled_and_unknown_paths_404() {
    let state = WebState::new(Arc::new(MemoryQueue::new()));
    let (code, _, body) = get(&state, "/metrics").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body.contains("metrics are disabled"));
    assert_eq!(get(&state, "/health").await.0, StatusCode::NOT_FOUND);
}

/// The ready server on a real socket, and the `/metrics` text after a run of
/// succeeding, retried and dead jobs (run with `--nocapture` to see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_server_serves_metrics_after_a_mixed_run() {
    let metrics = JobMetrics::new();
    let queue: SharedQueue = Arc::new(metrics.instrument(MemoryQueue::new()));
    let pool = start_pool(queue.clone(), &metrics);
    run_mixed_jobs(&queue).await;
    let state = WebState::new(queue.clone()).metrics(metrics.clone());
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), state).await.expect("binds");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connects");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.expect("sent");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("read");
    let (head, text) = raw.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    println!("{text}");
    for line in [
        r#"jobs_enqueued_total{job="web_flaky",priority="normal",queue="web_test"} 6"#,
        r#"jobs_enqueued_total{job="web_doomed",priority="high",queue="web_test"} 1"#,
        r#"jobs_processed_total{job="web_flaky",queue="web_test",status="succeeded"} 5"#,
        r#"jobs_processed_total{job="web_flaky",queue="web_test",status="failed"} 5"#,
        r#"jobs_processed_total{job="web_flaky",queue="web_test",status="dead"} 1"#,
        r#"jobs_processed_total{job="web_doomed",queue="web_test",status="dead"} 1"#,
        r#"jobs_retries_total{job="web_flaky",queue="web_test"} 5"#,
        r#"jobs_dead_total{job="web_flaky",queue="web_test"} 1"#,
        r#"jobs_dead_total{job="web_doomed",queue="web_test"} 1"#,
        r#"jobs_duration_seconds_count{job="web_flaky",queue="web_test"} 11"#,
        r#"jobs_queue_size{priority="normal",queue="web_test",state="dead"} 1"#,
        r#"jobs_queue_size{priority="high",queue="web_test",state="dead"} 1"#,
        "jobs_worker_slots 3",
        "jobs_backend_up 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    let _ = stop.send(());
    task.await.expect("joined").expect("server ran");
    pool.shutdown().await.expect("clean shutdown");
}
