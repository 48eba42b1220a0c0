//! Workflows and batches in the API: `GET /api/flows`, `GET
//! /api/flows/{id}` and `POST /api/flows/{id}/cancel`, through the router
//! alone (tower `oneshot`, no socket).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use jobs_core::prelude::*;
use jobs_core::{FlowRun, SharedQueue, WorkerHandle};
use jobs_web::WebState;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token";
const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-token");

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// A step that succeeds with its number.
#[job(queue = "web_flows")]
async fn web_step(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// Runs until cancelled.
#[job(queue = "web_flows")]
async fn web_hangs(ctx: JobContext) -> Result<(), JobError> {
    ctx.cancelled().await;
    Ok(())
}

/// A pool on `web_flows` whose running jobs hear of a cancel within a
/// third of a second (a lease of 1 s).
fn flow_pool(queue: &SharedQueue) -> WorkerHandle {
    WorkerPool::builder(queue.clone())
        .queues(["web_flows"])
        .workers(2)
        .lease(Duration::from_secs(1))
        .start()
        .expect("pool starts")
}

fn ids(page: &Value) -> Vec<&str> {
    page["flows"].as_array().expect("a list").iter().map(|f| f["id"].as_str().expect("an id")).collect()
}

async fn status_of(run: &FlowRun) -> FlowStatus {
    run.status().await.expect("status").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_listed_shown_and_cancelled_with_the_token() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let pool = flow_pool(&queue);
    let done = Workflow::new("etl-1")
        .step("extract", WebStep { n: 1 })
        .step_after("transform", WebStep { n: 2 }, ["extract"])
        .add_step(Step::new("audit", WebStep { n: 3 }).after_any_end(["extract"]))
        .step_after("load", WebStep { n: 4 }, ["transform", "audit"])
        .enqueue(&queue)
        .await
        .expect("enqueued");
    done.wait(Duration::from_secs(10)).await.expect("ends");
    let batch = Batch::with_id("mails").on_complete(WebStep { n: 100 });
    batch.add(&queue, (1..=3).map(|n| WebStep { n })).await.expect("added");
    let mails = batch.close(&queue).await.expect("closed");
    mails.wait(Duration::from_secs(10)).await.expect("ends");
    eventually("the batch's callback succeeded", || async {
        let job = mails.info().await.expect("info").callbacks[0].job.clone();
        queue.job(&job).await.expect("read").is_some_and(|j| j.status == jobs_core::JobStatus::Succeeded)
    })
    .await;
    let hanging = Workflow::new("etl-2")
        .step("extract", WebHangs {})
        .step_after("load", WebStep { n: 5 }, ["extract"])
        .enqueue(&queue)
        .await
        .expect("enqueued");
    eventually("the hanging step runs", || async {
        let job = hanging.info().await.expect("info").members[0].job.clone();
        queue.job(&job).await.expect("read").is_some_and(|j| j.status == jobs_core::JobStatus::Running)
    })
    .await;
    let state = WebState::new(queue.clone()).admin_token(TOKEN);

    // The list: newest first, by kind, a page at a time.
    let (code, page) = get_json(&state, "/api/flows").await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(keys(&page), ["flows", "has_more", "kind", "limit", "offset"]);
    assert_eq!(
        (page["kind"].clone(), page["has_more"].clone(), page["limit"].clone()),
        (json!(null), json!(false), json!(50))
    );
    assert_eq!(ids(&page), ["etl-2", "mails", "etl-1"]);
    let etl1 = &page["flows"][2];
    assert_eq!(
        keys(etl1),
        ["closed", "created_at", "ended", "ended_at", "id", "kind", "status", "succeeded", "total"],
        "{etl1}"
    );
    assert_eq!(
        (etl1["kind"].clone(), etl1["status"].clone(), etl1["total"].clone(), etl1["ended"].clone()),
        (json!("workflow"), json!("succeeded"), json!(4), json!(4))
    );
    assert!(etl1["created_at"].as_str().expect("text").ends_with('Z') && etl1["ended_at"].is_string(), "{etl1}");
    assert_eq!(page["flows"][0]["ended_at"], json!(null));
    assert_eq!(ids(&get_json(&state, "/api/flows?kind=workflow").await.1), ["etl-2", "etl-1"]);
    assert_eq!(ids(&get_json(&state, "/api/flows?kind=batch").await.1), ["mails"]);
    let (_, page) = get_json(&state, "/api/flows?limit=1").await;
    assert_eq!((ids(&page), page["has_more"].clone()), (vec!["etl-2"], json!(true)));
    let (_, page) = get_json(&state, "/api/flows?offset=2&limit=1").await;
    assert_eq!((ids(&page), page["has_more"].clone()), (vec!["etl-1"], json!(false)));
    for uri in [
        "/api/flows?kind=job",
        "/api/flows?limit=0",
        "/api/flows?limit=501",
        "/api/flows?offset=20000",
        "/api/flows?limit=x",
    ] {
        let (code, body) = get_json(&state, uri).await;
        assert_eq!((code, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("bad_request")), "{uri}: {body}");
    }

    // A workflow: its steps with their levels, dependencies and times.
    let (code, flow) = get_json(&state, "/api/flows/etl-1").await;
    assert_eq!(code, StatusCode::OK, "{flow}");
    assert_eq!(
        keys(&flow),
        [
            "callbacks",
            "closed",
            "created_at",
            "ended",
            "ended_at",
            "id",
            "kind",
            "levels",
            "members",
            "members_total",
            "status",
            "succeeded",
            "total"
        ]
    );
    assert_eq!((flow["levels"].clone(), flow["members_total"].clone()), (json!(3), json!(4)));
    let levels: Vec<(&str, u64)> = flow["members"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| (m["name"].as_str().expect("name"), m["level"].as_u64().expect("level")))
        .collect();
    assert_eq!(levels, [("extract", 0), ("transform", 1), ("audit", 1), ("load", 2)]);
    let load = &flow["members"][3];
    assert_eq!(
        keys(load),
        ["after", "ended_at", "job", "job_name", "level", "name", "released_at", "status"],
        "{load}"
    );
    assert_eq!(
        load["after"],
        json!([{ "step": "transform", "on_failure": "cancel" }, { "step": "audit", "on_failure": "cancel" }])
    );
    assert_eq!(flow["members"][2]["after"], json!([{ "step": "extract", "on_failure": "continue" }]));
    assert_eq!((load["job_name"].clone(), load["status"].clone()), (json!("web_step"), json!("succeeded")));
    let job = load["job"].as_str().expect("a job id");
    assert_eq!(get_json(&state, &format!("/api/jobs/{job}")).await.0, StatusCode::OK, "the step's job is readable");
    assert_eq!(flow["callbacks"], json!([]));

    // A batch: its members and its callback with its job's status.
    let (_, flow) = get_json(&state, "/api/flows/mails").await;
    assert_eq!(
        (flow["kind"].clone(), flow["levels"].clone(), flow["members_total"].clone()),
        (json!("batch"), json!(0), json!(3))
    );
    assert_eq!(flow["members"][0].get("level"), None, "batch members have no level");
    let cb = &flow["callbacks"][0];
    assert_eq!(
        (cb["name"].clone(), cb["status"].clone(), cb["job_status"].clone()),
        (json!("@on_complete"), json!("released"), json!("succeeded"))
    );

    // Unknown and malformed ids.
    let (code, body) = get_json(&state, "/api/flows/nope").await;
    assert_eq!((code, body["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")), "{body}");
    assert_eq!(body["error"], "no workflow or batch `nope`");
    let (code, body) = get_json(&state, "/api/flows/bad%20id").await;
    assert_eq!((code, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("bad_request")), "{body}");

    // Cancel: refused without the token, read-only, or from another site.
    let uri = "/api/flows/etl-2/cancel";
    for headers in [vec![], vec![("authorization", "Bearer nope")]] {
        let (code, body) = post_json(&state, uri, &headers).await;
        assert_eq!((code, body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("unauthorized")), "{body}");
    }
    let (code, body) = post_json(&WebState::new(queue.clone()), uri, &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::FORBIDDEN, json!("read_only")), "{body}");
    let evil = [BEARER, ("origin", "https://evil.example"), ("host", "127.0.0.1:8080")];
    assert_eq!(post_json(&state, uri, &evil).await.0, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&hanging).await, FlowStatus::Running, "nothing was cancelled");

    // With it: cancelled; it ends once its running step has stopped.
    let (code, body) = post_json(&state, uri, &[BEARER]).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        (body["id"].clone(), body["kind"].clone(), body["outcome"].clone()),
        (json!("etl-2"), json!("workflow"), json!("cancelled"))
    );
    eventually("the workflow ends cancelled", || async { status_of(&hanging).await == FlowStatus::Cancelled }).await;
    let (_, flow) = get_json(&state, "/api/flows/etl-2").await;
    assert_eq!(flow["status"], "cancelled");
    assert_eq!(
        (flow["members"][1]["status"].clone(), flow["members"][1]["released_at"].clone()),
        (json!("cancelled"), json!(null))
    );
    let (_, body) = post_json(&state, uri, &[BEARER]).await;
    assert_eq!(
        body,
        json!({ "id": "etl-2", "kind": "workflow", "outcome": "already_cancelled", "status": "cancelled" })
    );
    let (_, body) = post_json(&state, "/api/flows/etl-1/cancel", &[BEARER]).await;
    assert_eq!(body, json!({ "id": "etl-1", "kind": "workflow", "outcome": "already_ended", "status": "succeeded" }));
    let (code, body) = post_json(&state, "/api/flows/nope/cancel", &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")), "{body}");
    assert_eq!(status_of(&done).await, FlowStatus::Succeeded);

    // Reads that need the token need it here too.
    let closed = WebState::new(queue.clone()).admin_token(TOKEN).require_token_for_reads(true);
    assert_eq!(get_json(&closed, "/api/flows").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get_json(&closed, "/api/flows/etl-1").await.0, StatusCode::UNAUTHORIZED);
    pool.shutdown().await.expect("clean shutdown");
}

/// A backend without a flow store
/// answers 501 `unsupported` on every flow endpoint.
#[tokio::test]
async fn a_backend_without_flows_answers_501() {
    let hidden = jobs_core::testing::Faulty::new(MemoryQueue::new()).without_flows();
    let state = WebState::new(Arc::new(hidden)).admin_token(TOKEN);
    for (method, uri) in [("GET", "/api/flows"), ("GET", "/api/flows/etl-1"), ("POST", "/api/flows/etl-1/cancel")] {
        let (code, _, body) = send(&state, method, uri, &[BEARER]).await;
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!((code, body["code"].clone()), (StatusCode::NOT_IMPLEMENTED, json!("unsupported")), "{uri}: {body}");
        assert_eq!(body["error"], "this backend stores no workflows or batches (use MemoryQueue or RedisQueue)");
    }
}

/// A batch larger than a page shows its first 500 jobs in the order they
/// were added, and counts every one.
#[tokio::test]
async fn a_large_batch_shows_its_first_page() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let batch = Batch::with_id("big");
    batch.add(&queue, (1..=503).map(|n| WebStep { n })).await.expect("added");
    let state = WebState::new(queue.clone()).admin_token(TOKEN);
    let (code, flow) = get_json(&state, "/api/flows/big").await;
    assert_eq!(code, StatusCode::OK, "{flow}");
    assert_eq!((flow["members_total"].clone(), flow["total"].clone()), (json!(503), json!(503)));
    let shown = flow["members"].as_array().expect("a list");
    assert_eq!(shown.len(), 500);
    let stored = FlowRun::open(&queue, "big").await.expect("stored").info().await.expect("info");
    let names: Vec<&str> = shown.iter().map(|m| m["name"].as_str().expect("a name")).collect();
    let first: Vec<&str> = stored.members[..500].iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, first, "the first 500, in the order they were added");
}
