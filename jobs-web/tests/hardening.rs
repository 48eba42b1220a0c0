//! Hardening: malformed and oversized input gets a 4xx and never
//! a panic, the answer never echoes more than a bounded message, job
//! payloads and errors are shown cut to a bounded size, the admin token is
//! required, and the ready server binds loopback by default and keeps
//! serving after malformed HTTP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use common::*;
use jobs_core::prelude::*;
use jobs_core::{JobStatus, NewJob, SharedQueue};
use jobs_web::WebState;
use tower::ServiceExt;

/// Fails for good with an error of `n` bytes.
#[job(queue = "web_test", retries = 0)]
pub async fn web_huge_error(n: usize) -> Result<(), JobError> {
    Err(JobError::permanent(format!("boom {}", "e".repeat(n))))
}

fn state(queue: SharedQueue) -> WebState {
    WebState::new(queue).admin_token("s3cret")
}

fn memory() -> SharedQueue {
    Arc::new(MemoryQueue::new())
}

#[test]
fn the_default_bind_is_loopback() {
    assert!(jobs_web::DEFAULT_BIND.ip().is_loopback(), "{}", jobs_web::DEFAULT_BIND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_paths_and_queries_are_4xx_with_a_bounded_message() {
    let st = state(memory());
    let long_id = format!("/api/jobs/{}", "a".repeat(60_000));
    let cases: Vec<(String, StatusCode)> = vec![
        ("/api/jobs/not-an-id".into(), StatusCode::BAD_REQUEST),
        ("/api/jobs/%FF%FE".into(), StatusCode::BAD_REQUEST),
        ("/api/jobs/%00".into(), StatusCode::BAD_REQUEST),
        ("/api/jobs/web_test:01JDQ6V5Z3C8T4M9N2K7R1W0XY".into(), StatusCode::NOT_FOUND),
        (long_id, StatusCode::BAD_REQUEST),
        ("/api/queues/bad%7Bq%7D/jobs".into(), StatusCode::BAD_REQUEST),
        (format!("/api/queues/{}/jobs", "q".repeat(60_000)), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/jobs?limit=abc".into(), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/jobs?limit=-1".into(), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/jobs?limit=0".into(), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/jobs?limit=99999999999999999999999".into(), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/jobs?offset=x".into(), StatusCode::BAD_REQUEST),
        (format!("/api/queues/web_test/jobs?status={}", "s".repeat(60_000)), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/throughput?minutes=0".into(), StatusCode::BAD_REQUEST),
        ("/api/queues/web_test/throughput?minutes=1e9".into(), StatusCode::BAD_REQUEST),
        ("/api/throughput?minutes=%FF".into(), StatusCode::BAD_REQUEST),
        ("/api/nope/../../etc/passwd".into(), StatusCode::NOT_FOUND),
    ];
    for (uri, want) in cases {
        let (status, _, body) = send(&st, "GET", &uri, &[]).await;
        let shown: String = uri.chars().take(60).collect();
        assert_eq!(status, want, "{shown}: {}", body.chars().take(300).collect::<String>());
        assert!(body.len() <= 2048, "{shown}: an answer of {} bytes", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(v["code"].is_string() && v["error"].is_string(), "{shown}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_and_refuse_bodies() {
    let st = state(memory());
    let uri = "/api/queues/web_test/pause";
    let long = format!("Bearer {}", "x".repeat(1 << 20));
    for auth in [None, Some("Bearer wrong"), Some("Basic s3cret"), Some("Bearer"), Some("s3cret"), Some(long.as_str())]
    {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, _, body) = send(&st, "POST", uri, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{:?}", auth.map(|a| &a[..a.len().min(20)]));
        assert!(body.len() < 1024);
    }
    // A header value that is not text.
    let mut req = Request::post(uri).body(Body::empty()).expect("request");
    req.headers_mut().insert("authorization", HeaderValue::from_bytes(b"Bearer s3cr\xffet").expect("bytes"));
    let resp = jobs_web::router(st.clone()).oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A declared body past the limit: 413 before anything runs.
    let (status, _, body) =
        send(&st, "POST", uri, &[("authorization", "Bearer s3cret"), ("content-length", "10000000")]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // A real body past the limit.
    let req = Request::post(uri)
        .header("authorization", "Bearer s3cret")
        .header("content-length", "204800")
        .body(Body::from(vec![b'{'; 200 * 1024]))
        .expect("request");
    let resp = jobs_web::router(st.clone()).oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The wrong method.
    let (status, _, _) = send(&st, "GET", uri, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // And the right request works.
    let (status, _, body) = send(&st, "POST", uri, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_payloads_and_errors_are_shown_cut() {
    let queue = memory();
    let metrics = JobMetrics::new();
    let pool = start_pool(queue.clone(), &metrics);
    let dead = WebHugeError { n: 1 << 20 }.enqueue(&queue).await.expect("enqueue");
    let big = NewJob {
        payload: serde_json::to_vec(&serde_json::json!({ "blob": "z".repeat(300 * 1024), "note": "\u{1b}[2J" }))
            .expect("JSON"),
        format: jobs_core::backend::PayloadFormat::Json,
        ..WebHugeError { n: 1 }.into_new_job(JobOptions::new().delay(Duration::from_secs(3600))).expect("valid")
    };
    let big = queue.enqueue_many(vec![big]).await.expect("enqueue").remove(0);
    eventually("the failing job is dead", || async {
        queue.job(&dead).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Dead)
    })
    .await;
    pool.shutdown().await.expect("shutdown");
    let st = state(queue);

    let (status, body) = get_json(&st, &format!("/api/jobs/{dead}")).await;
    assert_eq!(status, StatusCode::OK);
    let last = body["last_error"].as_str().expect("an error");
    // The worker stores at most 4 KiB of an error (jobs_core::backend::MAX_ERROR_LEN),
    // below this view's own 8 KiB cut: the stored text says what was left out.
    assert!(last.starts_with("boom eee") && last.ends_with("more bytes)"), "{}", &last[last.len() - 80..]);
    assert!(last.chars().count() < 8300, "{} characters", last.chars().count());
    let attempt = body["attempt_log"][0]["error"].as_str().expect("an error");
    assert!(attempt.chars().count() < 8300);
    let (_, _, text) = get(&st, &format!("/api/jobs/{dead}")).await;
    assert!(text.len() < 40 * 1024, "the whole answer is {} bytes", text.len());

    let (status, body) = get_json(&st, &format!("/api/jobs/{big}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["payload_truncated"], true);
    assert!(body["payload"].as_str().is_some_and(|p| p.len() < 70 * 1024));
    let (status, page) = get_json(&st, "/api/queues/web_test/jobs?status=dead").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page["jobs"][0]["last_error"].as_str().is_some_and(|e| e.chars().count() < 8300));
}

/// Raw HTTP, bytes at a time: nonsense, oversized headers, lying lengths.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    send_raw(addr, bytes, true)
}

/// Sends bytes and returns the answer's first line. `half_close` ends the
/// request side at once (for inputs the server may wait on forever); a
/// well-formed request with `Connection: close` must not, since hyper may
/// drop a half-closed connection before answering.
fn send_raw(addr: std::net::SocketAddr, bytes: &[u8], half_close: bool) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_serving_after_malformed_http() {
    let server = jobs_web::Server::bind("127.0.0.1:0".parse().expect("addr"), state(memory())).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(server.run());
    let huge_header = format!("GET /api/auth HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "h".repeat(2 << 20));
    let inputs: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"\x00\xff\xfe\r\n\r\n".to_vec(),
        b"GET /api/auth HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        huge_header.into_bytes(),
        b"POST /api/queues/q/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"POST /api/queues/q/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde".to_vec(),
        b"POST /api/queues/q/pause HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(100_000)).into_bytes(),
    ];
    for input in &inputs {
        let line = tokio::task::spawn_blocking({
            let input = input.clone();
            move || raw(addr, &input)
        })
        .await
        .expect("no panic");
        // Either a 4xx or a closed connection; never a 5xx.
        assert!(line.is_empty() || line.contains(" 4"), "{line}");
    }
    let line = tokio::task::spawn_blocking(move || {
        send_raw(addr, b"GET /api/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", false)
    })
    .await
    .expect("no panic");
    assert!(line.contains(" 200"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_offsets_are_refused_before_the_backend_reads() {
    let backend = Arc::new(Recording::default());
    let st = state(backend.clone());
    let (status, page) = get_json(&st, "/api/queues/web_test/jobs?status=succeeded&offset=10000&limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["offset"], 10_000);
    for offset in ["10001", "1000000", "18446744073709551615"] {
        for status in ["pending", "succeeded", "dead"] {
            let uri = format!("/api/queues/web_test/jobs?status={status}&offset={offset}");
            let (code, body) = get_json(&st, &uri).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}: {body}");
            let error = body["error"].as_str().expect("a message");
            assert!(error.contains("offset must be at most 10000"), "{error}");
        }
    }
    // The backend was asked for the one page within the limit, no deeper.
    assert_eq!(backend.lists(), [(10_000, 501)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_is_cached_per_fixed_window_whatever_the_minutes_asked() {
    let backend = Arc::new(Recording::default());
    WebFlaky { fail_times: 0 }.enqueue(&(backend.clone() as SharedQueue)).await.expect("enqueue");
    let st = state(backend.clone()).stats_ttl(Duration::from_secs(3600));
    let (status, tp) = get_json(&st, "/api/queues/web_test/throughput?minutes=60").await;
    assert_eq!((status, tp["minutes"].as_array().map(Vec::len)), (StatusCode::OK, Some(60)));
    assert_eq!(backend.throughput_reads(), 1);
    // Every window's edges and a spread in between.
    let edges = [5usize, 15, 30, 60, 180, 360, 720, 1440].into_iter().flat_map(|w| [w - 1, w, w + 1]);
    let asked: Vec<usize> = edges.chain((1..=1440).step_by(13)).filter(|n| (1..=1440).contains(n)).collect();
    for n in asked {
        for uri in [format!("/api/queues/web_test/throughput?minutes={n}"), format!("/api/throughput?minutes={n}")] {
            let (status, tp) = get_json(&st, &uri).await;
            assert_eq!((status, tp["minutes"].as_array().map(Vec::len)), (StatusCode::OK, Some(n)), "{uri}");
        }
    }
    // One read per fixed window (5, 15, 30, 60, 180, 360, 720, 1440 minutes).
    assert_eq!(backend.throughput_reads(), 8);
    let (status, body) = get_json(&st, "/api/queues/web_test/throughput?minutes=1441").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(backend.throughput_reads(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_queue_names_cannot_push_real_queues_out_of_the_throughput_cache() {
    let backend = Arc::new(Recording::default());
    WebFlaky { fail_times: 0 }.enqueue(&(backend.clone() as SharedQueue)).await.expect("enqueue");
    let st = state(backend.clone()).stats_ttl(Duration::from_secs(3600));
    let (status, _) = get_json(&st, "/api/queues/web_test/throughput").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(backend.throughput_reads(), 1);
    for i in 0..300 {
        let (status, tp) = get_json(&st, &format!("/api/queues/made_up_{i}/throughput")).await;
        assert_eq!((status, tp["minutes"].as_array().map(Vec::len)), (StatusCode::OK, Some(60)));
    }
    let reads = backend.throughput_reads();
    let (status, _) = get_json(&st, "/api/queues/web_test/throughput").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(backend.throughput_reads(), reads, "the real queue's entry was read again");
}
