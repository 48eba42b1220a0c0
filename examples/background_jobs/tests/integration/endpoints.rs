//! What the HTTP port serves: `/metrics` and `/health/*` by default; the
//! dashboard and the admin API only with `app.http.admin`, and then every
//! `/api/` request needs the admin token; requests for a `Host` that is not
//! loopback, an IP address or in `jobs.http.allowed_hosts` are refused. All
//! on 127.0.0.1.

use std::net::SocketAddr;

use background_jobs::Http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Harness, DEADLINE};

const TOKEN: &str = "test-admin-token-0123456789abcdef";

/// One HTTP/1.1 request on a fresh connection; the status and the body.
async fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    request_to(addr, &addr.to_string(), method, path, token).await
}

/// [`request`] with `host` as its `Host` header.
async fn request_to(addr: SocketAddr, host: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = tokio::time::timeout(DEADLINE, exchange).await.expect("an answer within the deadline");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{answer}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn loopback() -> Http {
    Http::At(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_metrics_and_health_are_served_by_default() {
    let h = Harness::start_serving(loopback(), |s| s.jobs.jobs.http.admin_token = Some(TOKEN.into()))
        .await
        .expect("starts");
    let addr = h.app.http_addr.expect("served");
    let (status, body) = request(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jobs_"), "{body}");
    for path in ["/health/jobs", "/health/queues", "/health/workers"] {
        let (status, body) = request(addr, "GET", path, None).await;
        assert!(status == 200 || status == 503, "{path}: {status} {body}");
        assert!(body.contains("status"), "{path}: {body}");
    }
    // Not even with the token: the configuration did not ask for them.
    for path in ["/api/stats", "/api/queues/email/jobs", "/ui/", "/ui/main.js"] {
        assert_eq!(request(addr, "GET", path, Some(TOKEN)).await.0, 404, "{path} is not served");
    }
    assert_eq!(request(addr, "POST", "/api/queues/email/pause", Some(TOKEN)).await.0, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_the_token_for_reads_and_actions() {
    let h = Harness::start_serving(loopback(), |s| {
        s.app.http.admin = true;
        s.jobs.jobs.http.admin_token = Some(TOKEN.into());
    })
    .await
    .expect("starts");
    let addr = h.app.http_addr.expect("served");
    for path in ["/api/stats", "/api/queues/email/jobs", "/api/workers", "/api/schedules"] {
        let (status, body) = request(addr, "GET", path, None).await;
        assert_eq!(status, 401, "{path} without the token: {body}");
        assert!(body.contains("Authorization: Bearer"), "{body}");
        assert_eq!(request(addr, "GET", path, Some("wrong-token")).await.0, 401, "{path} with another token");
        let (status, body) = request(addr, "GET", path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    assert_eq!(request(addr, "POST", "/api/queues/email/pause", None).await.0, 401);
    let (status, body) = request(addr, "POST", "/api/queues/email/pause", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(request(addr, "POST", "/api/queues/email/resume", Some(TOKEN)).await.0, 200);
    // The page itself holds no data, and `/api/auth` only says whether a
    // token is right; metrics and health stay open.
    assert_eq!(request(addr, "GET", "/ui/", None).await.0, 200);
    let (status, body) = request(addr, "GET", "/api/auth", None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"actions_enabled":true,"token_valid":null}"#));
    let (status, body) = request(addr, "GET", "/api/auth", Some("wrong-token")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"actions_enabled":true,"token_valid":false}"#));
    assert_eq!(request(addr, "GET", "/metrics", None).await.0, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_not_served_without_a_token() {
    for token in [None, Some("   ")] {
        let e = Harness::start_serving(loopback(), |s| {
            s.app.http.admin = true;
            s.jobs.jobs.http.admin_token = token.map(str::to_owned);
        })
        .await
        .map(|_| ())
        .expect_err("refused");
        let msg = e.to_string();
        assert!(msg.contains("app.http.admin") && msg.contains("jobs.http.admin_token"), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_ip_addresses_and_allowed_names_are_served() {
    for admin in [false, true] {
        let h = Harness::start_serving(loopback(), |s| {
            s.app.http.admin = admin;
            s.jobs.jobs.http.admin_token = Some(TOKEN.into());
            s.jobs.jobs.http.allowed_hosts = vec!["jobs.internal".into(), "metrics.internal:9090".into()];
        })
        .await
        .expect("starts");
        let addr = h.app.http_addr.expect("served");
        let port = addr.port();
        let mut paths = vec!["/metrics"];
        if admin {
            paths.extend(["/api/stats", "/ui/"]);
        }
        for path in paths {
            for host in [format!("jobs.internal:{port}"), "JOBS.internal".to_owned(), format!("localhost:{port}")] {
                let (status, body) = request_to(addr, &host, "GET", path, Some(TOKEN)).await;
                assert_eq!(status, 200, "admin {admin}: {path} for {host}: {body}");
            }
            for host in
                [format!("evil.example:{port}"), format!("metrics.internal:{port}"), "jobs.internal.evil".into()]
            {
                let (status, body) = request_to(addr, &host, "GET", path, Some(TOKEN)).await;
                assert_eq!(status, 421, "admin {admin}: {path} for {host}: {body}");
                assert!(body.contains("\"code\":\"host_not_allowed\""), "nothing else served: {body}");
            }
        }
        h.stop().await;
    }
}
