//! Webhook jobs against a local receiver on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_jobs::jobs::notify::{SendWebhook, WebhookDelivery};
use jobs_core::prelude::*;
use jobs_web::axum::body::Bytes;
use jobs_web::axum::extract::{Path, State};
use jobs_web::axum::http::header::LOCATION;
use jobs_web::axum::http::{HeaderMap, StatusCode};
use jobs_web::axum::routing::post;
use jobs_web::axum::Router;

use crate::support::{dead_after, succeeded, Harness};

/// A request the receiver got: path, `X-Webhook-Id`, body.
type Seen = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// `POST /status/{code}` answers that status; `/flaky/{n}` answers 503 to
/// the first `n` requests, then 200; `/slow` answers after 5 s;
/// `/moved` answers 307 to `/status/200`.
async fn receiver() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/status/{code}",
            post(|State(s): State<Seen>, Path(code): Path<u16>, h: HeaderMap, b: Bytes| async move {
                record(&s, &format!("/status/{code}"), &h, &b);
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
            }),
        )
        .route(
            "/flaky/{n}",
            post(|State(s): State<Seen>, Path(n): Path<usize>, h: HeaderMap, b: Bytes| async move {
                let count = record(&s, "/flaky", &h, &b);
                if count <= n {
                    (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
                } else {
                    (StatusCode::OK, "ok")
                }
            }),
        )
        .route(
            "/slow",
            post(|State(s): State<Seen>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/slow", &h, &b);
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/moved",
            post(|State(s): State<Seen>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/moved", &h, &b);
                (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, "/status/200")])
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { jobs_web::axum::serve(listener, app).await });
    (base, seen)
}

/// Records a request; returns how many requests that path has had.
fn record(seen: &Seen, path: &str, h: &HeaderMap, body: &Bytes) -> usize {
    let id = h.get("x-webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let doc = serde_json::from_slice(body).unwrap_or_default();
    let mut s = seen.lock().expect("lock");
    s.push((path.to_owned(), id, doc));
    s.iter().filter(|(p, _, _)| p == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_and_sort_failures() {
    let (base, seen) = receiver().await;
    let h = Harness::start(|s| {
        s.app.notify.webhook_url = Some(format!("{base}/status/204"));
        s.app.notify.timeout = Duration::from_millis(300);
        // The receiver is on loopback: allowed explicitly.
        s.app.notify.allow_private = true;
    })
    .await;
    let q = &h.app.queue;
    let hook = |event: &str, url: Option<String>| SendWebhook::new(event.into(), serde_json::json!({ "n": 1 }), url);

    let ok = hook("order.paid", None).enqueue(q).await.expect("valid");
    let refused = hook("order.paid", Some(format!("{base}/status/400"))).enqueue(q).await.expect("valid");
    let flaky = hook("order.paid", Some(format!("{base}/flaky/2"))).enqueue(q).await.expect("valid");
    let throttled = hook("order.paid", Some(format!("{base}/status/429")))
        .enqueue_with(q, JobOptions::new().max_retries(1))
        .await
        .expect("valid");
    let moved = hook("order.paid", Some(format!("{base}/moved"))).enqueue(q).await.expect("valid");
    let slow = hook("order.paid", Some(format!("{base}/slow")))
        .enqueue_with(q, JobOptions::new().max_retries(1))
        .await
        .expect("valid");

    let d: WebhookDelivery = serde_json::from_value(succeeded(&h.finished(&ok).await)).expect("delivery");
    assert_eq!((d.status, d.attempt), (204, 1));

    let err = dead_after(&h.finished(&refused).await, 1);
    assert!(err.contains("/status/400 answered 400 Bad Request"), "a 4xx is permanent: {err}");

    let info = h.finished(&flaky).await;
    succeeded(&info);
    assert_eq!(info.attempts, 3, "two 503s retried: {:?}", info.attempt_log);
    assert!(info.attempt_log[0].error.as_deref().is_some_and(|e| e.contains("503 Service Unavailable: overloaded")));

    let err = dead_after(&h.finished(&throttled).await, 2);
    assert!(err.contains("429"), "429 is retried like a 5xx: {err}");
    let err = dead_after(&h.finished(&moved).await, 1);
    assert!(err.contains("answered 307 Temporary Redirect"), "a redirect is not followed, and permanent: {err}");
    let err = dead_after(&h.finished(&slow).await, 2);
    assert!(err.contains("no answer from") && err.contains("within 300ms"), "a timeout is retried: {err}");

    let seen = seen.lock().expect("lock").clone();
    let flaky_ids: Vec<&str> = seen.iter().filter(|(p, _, _)| p == "/flaky").map(|(_, id, _)| id.as_str()).collect();
    let moved_paths: Vec<&str> =
        seen.iter().filter(|(_, id, _)| *id == moved.to_string()).map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(moved_paths, ["/moved"], "the redirect's target got nothing");
    let flaky_id = flaky.to_string();
    assert_eq!(flaky_ids, [flaky_id.as_str(); 3], "every retry carries the same X-Webhook-Id");
    let (_, _, body) = seen.iter().find(|(p, _, _)| p == "/status/204").expect("delivered");
    assert_eq!(body["event"], "order.paid");
    assert_eq!(body["data"]["n"], 1);
    assert_eq!(body["id"], ok.to_string());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_urls_fail_permanently() {
    let h = Harness::start(|s| s.app.notify.webhook_url = None).await;
    let q = &h.app.queue;
    let none = SendWebhook::new("a.b".into(), serde_json::Value::Null, None).enqueue(q).await.expect("valid");
    let ftp = SendWebhook::new("a.b".into(), serde_json::Value::Null, Some("ftp://example.com/hook".into()))
        .enqueue(q)
        .await
        .expect("valid");
    assert!(dead_after(&h.finished(&none).await, 1).contains("no webhook URL"));
    assert!(dead_after(&h.finished(&ftp).await, 1).contains("not an http:// or https:// URL"));
    let e = SendWebhook::new("Bad Event".into(), serde_json::Value::Null, None).enqueue(q).await.expect_err("invalid");
    assert!(e.to_string().contains("field `event` (pattern)"), "{e}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_unless_allowed() {
    let (base, seen) = receiver().await;
    let port = base.rsplit(':').next().expect("a port").to_owned();
    let h = Harness::start(|s| s.app.notify.webhook_url = None).await;
    let q = &h.app.queue;
    let hook = |url: String| SendWebhook::new("a.b".into(), serde_json::Value::Null, Some(url));
    let direct = hook(format!("{base}/status/200")).enqueue(q).await.expect("valid");
    let mapped = hook(format!("http://[::ffff:127.0.0.1]:{port}/status/200")).enqueue(q).await.expect("valid");
    for id in [&direct, &mapped] {
        let err = dead_after(&h.finished(id).await, 1);
        assert!(err.contains("refused before connecting") && err.contains("loopback address"), "{err}");
        assert!(err.contains("app.notify.allow_private"), "says how to allow it: {err}");
    }
    assert!(seen.lock().expect("lock").is_empty(), "nothing reached the receiver");
    h.stop().await;

    // Listed with its port, the receiver is reachable; its other ports are not.
    let addr = base.trim_start_matches("http://").to_owned();
    let h = Harness::start(|s| s.app.notify.allow = vec![addr.clone()]).await;
    let ok = hook(format!("{base}/status/200")).enqueue(&h.app.queue).await.expect("valid");
    let other = hook("http://127.0.0.1:1/x".into()).enqueue(&h.app.queue).await.expect("valid");
    let d: WebhookDelivery = serde_json::from_value(succeeded(&h.finished(&ok).await)).expect("delivery");
    assert_eq!(d.status, 200);
    assert!(dead_after(&h.finished(&other).await, 1).contains("refused before connecting"));
    h.stop().await;
}

/// Private, link-local and metadata-service targets: the guard refuses them
/// before any connection, so this test sends nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_before_connecting() {
    let h = Harness::start(|s| s.app.notify.webhook_url = None).await;
    let q = &h.app.queue;
    let mut ids = Vec::new();
    for (url, kind) in [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://192.168.1.1:8080/hook", "private"),
        ("http://[fd00::1]/hook", "unique local"),
        ("http://0.0.0.0:9/hook", "unspecified"),
    ] {
        let id =
            SendWebhook::new("a.b".into(), serde_json::Value::Null, Some(url.into())).enqueue(q).await.expect("valid");
        ids.push((id, url, kind));
    }
    for (id, url, kind) in ids {
        let err = dead_after(&h.finished(&id).await, 1);
        assert!(err.contains("refused before connecting") && err.contains(kind), "{url}: {err}");
    }
    h.stop().await;
}
