//! The `Host` check against DNS rebinding: a page on another site whose name
//! resolves to this server sends its own name as `Host`, and gets a 421 on
//! every route; loopback names, IP literals and the allowed names are served.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use jobs_web::WebState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret";

fn state(queue: SharedQueue) -> WebState {
    WebState::new(queue).metrics(JobMetrics::new()).admin_token(TOKEN).allow_host("jobs.example.com")
}

fn memory() -> SharedQueue {
    Arc::new(MemoryQueue::new())
}

/// One `GET` of each kind of route, each answering 200 when served.
const READS: [&str; 6] =
    ["/api/stats", "/api/queues/web_test/jobs", "/api/workers", "/ui/", "/metrics", "/health/queues"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_are_refused_on_every_route() {
    let st = state(memory());
    for host in
        ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io:8080", "jobs.example.org"]
    {
        for uri in READS.iter().chain(&["/health/jobs", "/ui/main.js", "/api/nope"]) {
            let (status, headers, body) = send(&st, "GET", uri, &[("host", host)]).await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host} {uri}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
            assert_eq!(v["code"], "host_not_allowed", "{v}");
            let error = v["error"].as_str().expect("a message");
            assert!(error.contains(host) && error.contains("allow_host"), "{error}");
            assert_eq!(headers.get("cache-control").map(|v| v.to_str().expect("ascii")), Some("no-store"));
        }
    }
    // The rebinding page's action: its `Origin` matches its `Host`, so only
    // the host check stands between it and the queue.
    let origin_and_host = [("host", "evil.example:8080"), ("origin", "http://evil.example:8080")];
    let bearer = format!("Bearer {TOKEN}");
    let headers = [origin_and_host[0], origin_and_host[1], ("authorization", bearer.as_str())];
    let (status, _, body) = send(&st, "POST", "/api/queues/web_test/pause", &headers).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    let stats = st.queue().stats().await.expect("stats");
    assert!(stats.queues.get("web_test").is_none_or(|q| !q.paused), "the queue was paused");
    // A `Host` that is not text.
    let (status, _, _) = send(&st, "GET", "/api/stats", &[("host", "evil.example\u{e9}")]).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_ip_literals_and_allowed_names_are_served() {
    let st = state(memory());
    let hosts = [
        "127.0.0.1",
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "10.0.0.7:9090",
        "jobs.example.com",
        "Jobs.Example.com:443",
    ];
    for host in hosts {
        for uri in READS {
            let (status, _, body) = send(&st, "GET", uri, &[("host", host)]).await;
            assert_eq!(status, StatusCode::OK, "{host} {uri}: {}", body.chars().take(300).collect::<String>());
        }
    }
    // No `Host` at all: not a browser's request (in-process calls, HTTP/1.0).
    let (status, _, _) = send(&st, "GET", "/api/stats", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // An action from an allowed name, same origin.
    let bearer = format!("Bearer {TOKEN}");
    let headers = [("host", "jobs.example.com"), ("origin", "https://jobs.example.com"), ("authorization", &bearer)];
    let (status, _, body) = send(&st, "POST", "/api/queues/web_test/pause", &headers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partial_routers_check_the_host_too() {
    let st = WebState::new(memory()).metrics(JobMetrics::new());
    let routers = [jobs_web::observability_router(st.clone()), jobs_web::admin_router(st.clone())];
    for (router, uri) in routers.into_iter().zip(["/metrics", "/api/stats"]) {
        for (host, want) in [("evil.example", StatusCode::MISDIRECTED_REQUEST), ("127.0.0.1:1", StatusCode::OK)] {
            let req = axum::http::Request::get(uri).header("host", host).body(axum::body::Body::empty()).expect("req");
            let resp = tower::ServiceExt::oneshot(router.clone(), req).await.expect("infallible");
            assert_eq!(resp.status(), want, "{uri} {host}");
        }
    }
}

/// Sends `request` to `addr` and returns the status code and the body.
async fn http(addr: SocketAddr, request: String) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebinding_page_cannot_read_a_bound_server() {
    let server = jobs_web::Server::bind("127.0.0.1:0".parse().expect("addr"), state(memory())).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let port = addr.port();
    let get = |target: &str, host: &str| format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");

    // What the browser sends for `http://evil.example:PORT/api/stats` once
    // `evil.example` resolves to 127.0.0.1.
    let (code, body) = http(addr, get("/api/stats", &format!("evil.example:{port}"))).await;
    assert_eq!(code, 421, "{body}");
    assert!(body.contains("host_not_allowed"), "{body}");
    // The request line's host counts too.
    let (code, _) = http(addr, get("http://evil.example/api/stats", &format!("127.0.0.1:{port}"))).await;
    assert_eq!(code, 421);
    // The dashboard's own address.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (code, body) = http(addr, get("/api/stats", &host)).await;
        assert_eq!(code, 200, "{host}: {body}");
        assert!(body.contains("\"queues\""), "{body}");
    }
    let _ = stop.send(());
    task.await.expect("no panic").expect("clean shutdown");
}
