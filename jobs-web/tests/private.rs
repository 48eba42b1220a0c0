//! What the API keeps to itself: payload fields marked `#[redact]` in every
//! answer, and every read when the state requires the admin token for them.
//! Through the router alone (tower `oneshot`, no socket), on a MemoryQueue.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use jobs_core::backend::REDACTED;
use jobs_core::prelude::*;
use jobs_core::{JobStatus, SharedQueue};
use jobs_web::WebState;
use serde_json::{json, Value};

const SECRET: &str = "tok-live-9f8e7d6c5b4a";
const TOKEN: &str = "s3cret-admin-token";

/// Rotates a user's API token; refuses permanently (dead at once) so that
/// the dead-letter views show it too.
#[jobs_core::job(queue = "vault")]
async fn rotate_key(user: String, #[redact] token: String, note: String) -> Result<(), JobError> {
    let _ = (token, note);
    Err(JobError::permanent(format!("key store refused the rotation for {user}")))
}

/// Every answer that shows the job: detail while pending, and listing and
/// detail once dead.
async fn answers(state: &WebState, id: &JobId, status: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for uri in [format!("/api/jobs/{id}"), format!("/api/queues/vault/jobs?status={status}")] {
        let (code, _, body) = send(state, "GET", &uri, &[]).await;
        assert_eq!(code, StatusCode::OK, "{uri}: {body}");
        out.push((uri, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redacted_fields_show_in_no_answer() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let state = WebState::new(queue.clone());
    let id = RotateKey { user: "ann".into(), token: SECRET.into(), note: "quarterly rotation".into() }
        .enqueue(&queue)
        .await
        .expect("enqueue");
    let stored = queue.job(&id).await.expect("read").expect("kept");
    assert_eq!(stored.payload["token"], SECRET, "stored as written: only views redact");

    let mut seen = answers(&state, &id, "pending").await;
    let pool = WorkerPool::builder(queue.clone()).queues(["vault"]).workers(1).start().expect("pool starts");
    eventually("the rotation is dead", || async {
        queue.job(&id).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Dead)
    })
    .await;
    pool.shutdown().await.expect("clean shutdown");
    seen.extend(answers(&state, &id, "dead").await);

    for (uri, body) in &seen {
        assert!(!body.contains(SECRET), "{uri} shows the redacted value: {body}");
        assert!(body.contains(&id.to_string()), "{uri} shows the job: {body}");
    }
    let (_, detail) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!(detail["status"], "dead", "{detail}");
    assert_eq!(
        detail["payload"],
        json!({ "user": "ann", "token": REDACTED, "note": "quarterly rotation" }),
        "the other fields are shown as they are"
    );
    assert!(detail["last_error"].as_str().is_some_and(|e| e.contains("for ann")), "{detail}");
}

/// The API's reads, one per route.
const READS: [&str; 7] = [
    "/api/stats",
    "/api/throughput",
    "/api/queues/web_test/jobs?status=dead",
    "/api/queues/web_test/throughput",
    "/api/jobs/{id}",
    "/api/workers",
    "/api/schedules",
];

async fn a_dead_job(queue: &SharedQueue) -> String {
    let id = WebDoomed {}.enqueue(queue).await.expect("enqueue");
    let metrics = JobMetrics::new();
    let pool = start_pool(queue.clone(), &metrics);
    eventually("the doomed job is dead", || async {
        queue.job(&id).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Dead)
    })
    .await;
    pool.shutdown().await.expect("clean shutdown");
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_the_token_when_required() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let id = a_dead_job(&queue).await;
    let reads: Vec<String> = READS.iter().map(|r| r.replace("{id}", &id)).collect();
    let bearer = format!("Bearer {TOKEN}");

    // Default: open, with or without a token configured.
    for state in [WebState::new(queue.clone()), WebState::new(queue.clone()).admin_token(TOKEN)] {
        for uri in &reads {
            let (code, _, body) = send(&state, "GET", uri, &[]).await;
            assert_eq!(code, StatusCode::OK, "{uri} is open by default: {body}");
        }
    }

    let private = WebState::new(queue.clone()).admin_token(TOKEN).require_token_for_reads(true);
    for uri in &reads {
        for headers in [vec![], vec![("authorization", "Bearer nope")], vec![("authorization", "Basic czNjcmV0")]] {
            let (code, h, body) = send(&private, "GET", uri, &headers).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{uri} {headers:?}: {body}");
            assert_eq!(h.get("www-authenticate").map(|v| v.to_str().expect("ascii")), Some("Bearer realm=\"jobs\""));
            let v: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(v["code"], "unauthorized", "{body}");
            assert!(!body.contains("web_doomed"), "{uri}: no data without the token: {body}");
        }
        let (code, _, body) = send(&private, "GET", uri, &[("authorization", &bearer)]).await;
        assert_eq!(code, StatusCode::OK, "{uri} with the token: {body}");
    }
    // Whether actions are on and the token sent is right stay open; so do
    // the dashboard's files, the metrics and health.
    let (code, auth) = get_json(&private, "/api/auth").await;
    assert_eq!((code, auth), (StatusCode::OK, json!({ "actions_enabled": true, "token_valid": null })));
    let (_, _, body) = send(&private, "GET", "/api/auth", &[("authorization", &bearer)]).await;
    assert_eq!(body.parse::<Value>().expect("JSON")["token_valid"], true);
    for uri in ["/ui/", "/ui/core.js"] {
        assert_eq!(get(&private, uri).await.0, StatusCode::OK, "{uri}");
    }
    let health = get(&private, "/health/queues").await.0;
    assert!(health == StatusCode::OK || health == StatusCode::SERVICE_UNAVAILABLE, "{health}");
    // Actions answer as before.
    let retry = format!("/api/jobs/{id}/retry");
    assert_eq!(send(&private, "POST", &retry, &[]).await.0, StatusCode::UNAUTHORIZED);
    let (code, body) = post_json(&private, &retry, &[("authorization", &bearer)]).await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // Reads that need a token while none is configured: refused, closed.
    let closed = WebState::new(queue.clone()).require_token_for_reads(true);
    for uri in &reads {
        let (code, body) = get_json(&closed, uri).await;
        assert_eq!((code, body["code"].clone()), (StatusCode::FORBIDDEN, json!("reads_closed")), "{uri}: {body}");
    }
    let off = private.clone().require_token_for_reads(false);
    assert_eq!(get(&off, "/api/stats").await.0, StatusCode::OK, "turned off again: open");
}
