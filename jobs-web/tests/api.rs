//! The JSON admin API (`/api/...`) and the dashboard's assets (`/ui/`),
//! through the router alone (tower `oneshot`, no socket).

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use common::*;
use jobs_core::prelude::*;
use jobs_core::{JobStatus, Overlap, ScheduleDef, ScheduleOptions, Scheduler, SharedQueue};
use jobs_web::WebState;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token";
const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-token");

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// A queue after a pool ran succeeding, retried and dead jobs; the pool is
/// shut down so that nothing changes under the test.
async fn after_mixed_run() -> SharedQueue {
    let metrics = JobMetrics::new();
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let pool = start_pool(queue.clone(), &metrics);
    run_mixed_jobs(&queue).await;
    pool.shutdown().await.expect("clean shutdown");
    queue
}

/// A fetch of one job of the test queue, leased for 30 s.
fn take_one() -> jobs_core::backend::FetchRequest {
    jobs_core::backend::FetchRequest {
        queues: vec![QUEUE.into()],
        max: 1,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    }
}

async fn dead_ids(queue: &SharedQueue) -> Vec<String> {
    queue.dead_jobs(QUEUE, 100).await.expect("dead").iter().map(|j| j.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_describe_queues_jobs_pools_and_throughput() {
    let metrics = JobMetrics::new();
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let pool = start_pool(queue.clone(), &metrics);
    let retried = WebFlaky { fail_times: 1 }.enqueue(&queue).await.expect("enqueue");
    run_mixed_jobs(&queue).await;
    eventually("retried job done", || async {
        queue.job(&retried).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    let state = WebState::new(queue.clone());

    let (code, stats) = get_json(&state, "/api/stats").await;
    assert_eq!(code, StatusCode::OK, "{stats}");
    assert_eq!(keys(&stats), ["generated_at", "queues", "totals"]);
    let q = &stats["queues"][0];
    assert_eq!((q["name"].clone(), q["paused"].clone()), (json!(QUEUE), json!(false)));
    assert_eq!((q["dead"].clone(), q["processed"].clone()), (json!(2), json!(6)), "{q}");
    assert_eq!(q["by_priority"]["high"]["dead"], 1, "{q}");
    assert_eq!(stats["totals"]["dead"], 2);

    let (code, page) = get_json(&state, &format!("/api/queues/{QUEUE}/jobs?status=dead")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(keys(&page), ["has_more", "jobs", "limit", "offset", "queue", "status", "total"]);
    assert_eq!(
        (page["total"].clone(), page["has_more"].clone(), page["limit"].clone()),
        (json!(2), json!(false), json!(50))
    );
    let dead = &page["jobs"][0];
    assert_eq!(
        keys(dead),
        [
            "attempts",
            "enqueued_at",
            "expires_at",
            "finished_at",
            "id",
            "last_error",
            "max_retries",
            "name",
            "priority",
            "queue",
            "run_at",
            "snoozes",
            "status",
        ]
    );
    assert_eq!(dead["status"], "dead");
    assert!(page["jobs"].as_array().expect("list").iter().any(|j| j["last_error"] == "this input can never work"));

    // Paging through the six succeeded jobs, two at a time.
    let (_, p1) = get_json(&state, &format!("/api/queues/{QUEUE}/jobs?status=succeeded&limit=2")).await;
    assert_eq!(
        (p1["jobs"].as_array().map(Vec::len), p1["has_more"].clone(), p1["total"].clone()),
        (Some(2), json!(true), Value::Null)
    );
    let (_, p3) = get_json(&state, &format!("/api/queues/{QUEUE}/jobs?status=succeeded&offset=4&limit=2")).await;
    assert_eq!((p3["jobs"].as_array().map(Vec::len), p3["has_more"].clone()), (Some(2), json!(false)), "{p3}");
    assert_ne!(p1["jobs"][0]["id"], p3["jobs"][0]["id"]);

    let (code, job) = get_json(&state, &format!("/api/jobs/{retried}")).await;
    assert_eq!(code, StatusCode::OK, "{job}");
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone(), job["max_retries"].clone()),
        (json!("succeeded"), json!(2), json!(2))
    );
    assert_eq!(job["payload"], json!({ "fail_times": 1 }));
    assert_eq!(job["attempt_log"][0]["error"], "planned failure 1");
    assert_eq!(keys(&job["attempt_log"][0]), ["attempt", "duration_ms", "error", "finished_at", "started_at"]);
    assert_eq!(job["attempt_log"][1]["error"], Value::Null);
    let kinds: Vec<&str> =
        job["timeline"].as_array().expect("list").iter().map(|e| e["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, ["enqueued", "started", "failed", "started", "succeeded"], "{job}");
    assert!(job["enqueued_at"].as_str().expect("time").ends_with('Z'), "RFC 3339 UTC: {job}");

    let (code, tp) = get_json(&state, "/api/throughput").await;
    assert_eq!(code, StatusCode::OK, "{tp}");
    let minutes = tp["minutes"].as_array().expect("list");
    assert_eq!((minutes.len(), tp["queue"].clone()), (60, Value::Null));
    let processed: u64 = minutes.iter().map(|m| m["processed"].as_u64().expect("n")).sum();
    let failed: u64 = minutes.iter().map(|m| m["failed"].as_u64().expect("n")).sum();
    // Failed attempts: 1 (the job above) + 1 + 2 + 3 (out of retries) + 1 (permanent).
    assert_eq!((processed, failed), (6, 8), "{tp}");
    let (_, tq) = get_json(&state, &format!("/api/queues/{QUEUE}/throughput?minutes=5")).await;
    assert_eq!((tq["minutes"].as_array().map(Vec::len), tq["queue"].clone()), (Some(5), json!(QUEUE)));
    assert_eq!(keys(&tq["minutes"][0]), ["failed", "minute", "processed"]);

    let (code, w) = get_json(&state, "/api/workers").await;
    assert_eq!(code, StatusCode::OK, "{w}");
    assert_eq!((w["workers"].clone(), w["pools"].as_array().map(Vec::len)), (json!(3), Some(1)));
    assert_eq!(
        keys(&w["pools"][0]),
        ["ahead", "host", "id", "last_seen", "pid", "queues", "running", "running_jobs", "started_at", "workers"]
    );
    assert_eq!(w["pools"][0]["pid"], std::process::id());

    let (code, auth) = get_json(&state, "/api/auth").await;
    assert_eq!((code, auth), (StatusCode::OK, json!({ "actions_enabled": false, "token_valid": null })));
    pool.shutdown().await.expect("clean shutdown");
}

/// A running job's page says whether its handler is known to have started:
/// not while it is only leased, from its pool's start mark on; a job not
/// running says nothing of it.
#[tokio::test]
async fn a_running_job_shows_whether_its_handler_started() {
    use jobs_core::backend::{Finish, FinishResult, Outcome};
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let state = WebState::new(queue.clone());
    let id = WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("enqueue");
    let handler = |job: &Value| job["handler_started"].clone();
    let (code, job) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!((code, handler(&job)), (StatusCode::OK, Value::Null), "pending: {job}");
    let req = take_one();
    let leased = queue.fetch(&req).await.expect("fetch").jobs.pop().expect("the job");
    let (_, job) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!((job["status"].clone(), handler(&job)), (json!("running"), json!(false)), "leased: {job}");
    let mark = Finish { id: id.clone(), token: leased.token, outcome: Outcome::Started };
    assert_eq!(queue.finish(vec![mark]).await.expect("mark"), vec![FinishResult::Applied(JobStatus::Running)]);
    let (_, job) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!(handler(&job), json!(true), "started: {job}");
    let done = Finish { id: id.clone(), token: leased.token, outcome: Outcome::Succeeded { result: None } };
    queue.finish(vec![done]).await.expect("finish");
    let (_, job) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!((job["status"].clone(), handler(&job)), (json!("succeeded"), Value::Null), "ended: {job}");
}

/// A snooze is shown as one (not a failed attempt) and an expired job
/// as expired, with its count in the stats and a tab of its own.
#[tokio::test]
async fn snoozes_and_expired_jobs_are_shown() {
    use jobs_core::backend::{Finish, Outcome};
    use jobs_core::When;
    let memory = MemoryQueue::with_manual_clock();
    let queue: SharedQueue = Arc::new(memory.clone());
    let state = WebState::new(queue.clone());
    let snoozy = WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("enqueue");
    let late = WebFlaky { fail_times: 0 }
        .enqueue_with(&queue, JobOptions::new().expires_in(Duration::from_secs(60)))
        .await
        .expect("enqueue");
    let req = take_one();
    let leased = queue.fetch(&req).await.expect("fetch").jobs.pop().expect("the first job");
    assert_eq!(leased.id, snoozy);
    let outcome = Outcome::Snooze {
        at: When::In(Duration::from_secs(600)),
        reason: "not ready".into(),
        limit: 3,
        holds_group: false,
    };
    queue.finish(vec![Finish { id: snoozy.clone(), token: leased.token, outcome }]).await.expect("finish");
    memory.advance(Duration::from_secs(120));
    let fetched = queue.fetch(&req).await.expect("fetch");
    assert_eq!(fetched.expired.iter().map(|e| &e.id).collect::<Vec<_>>(), vec![&late]);

    let (code, job) = get_json(&state, &format!("/api/jobs/{snoozy}")).await;
    assert_eq!(code, StatusCode::OK, "{job}");
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone(), job["snoozes"].clone()),
        (json!("scheduled"), json!(0), json!(1))
    );
    assert_eq!(
        (job["attempt_log"][0]["snoozed_ms"].clone(), job["attempt_log"][0]["error"].clone()),
        (json!(600_000), json!("not ready"))
    );
    let kinds: Vec<&str> =
        job["timeline"].as_array().expect("list").iter().map(|e| e["kind"].as_str().expect("kind")).collect();
    // (The manual clock started before the producer's enqueue time: the
    // order of `enqueued` is not what this checks.)
    assert!(kinds.contains(&"snoozed") && !kinds.contains(&"failed"), "a snooze, not a failure: {job}");
    assert_eq!(kinds.last(), Some(&"due"), "{job}");

    let (_, job) = get_json(&state, &format!("/api/jobs/{late}")).await;
    assert_eq!(job["status"], "expired");
    assert!(job["expires_at"].is_string(), "{job}");
    assert_eq!(job["timeline"].as_array().and_then(|t| t.last()).map(|e| e["kind"].clone()), Some(json!("expired")));
    let (_, stats) = get_json(&state, "/api/stats").await;
    assert_eq!(stats["totals"]["expired"], 1, "{stats}");
    let (code, page) = get_json(&state, &format!("/api/queues/{QUEUE}/jobs?status=expired")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(page["jobs"][0]["id"], late.to_string());
}

#[tokio::test]
async fn bad_requests_are_400_and_unknown_things_404_all_in_json() {
    let state = WebState::new(Arc::new(MemoryQueue::new()));
    for (uri, code, says) in [
        ("/api/queues/q/jobs?status=zombie", StatusCode::BAD_REQUEST, "unknown status `zombie`: use one of pending,"),
        ("/api/queues/q/jobs?limit=0", StatusCode::BAD_REQUEST, "limit must be between 1 and 500, not 0"),
        ("/api/queues/q/jobs?limit=501", StatusCode::BAD_REQUEST, "limit must be between 1 and 500"),
        ("/api/queues/q/jobs?offset=-1", StatusCode::BAD_REQUEST, "offset"),
        ("/api/queues/q/throughput?minutes=0", StatusCode::BAD_REQUEST, "minutes must be between 1 and 1440"),
        ("/api/queues/bad%20name/jobs", StatusCode::BAD_REQUEST, "invalid queue name `bad name`"),
        ("/api/jobs/not-an-id", StatusCode::BAD_REQUEST, "`not-an-id` is not a job id"),
        ("/api/jobs/q:01ARZ3NDEKTSV4RRFFQ69G5FAV", StatusCode::NOT_FOUND, "no job `q:01ARZ3NDEKTSV4RRFFQ69G5FAV`"),
        ("/api/nothing/here", StatusCode::NOT_FOUND, "no such API endpoint"),
    ] {
        let (got, body) = get_json(&state, uri).await;
        assert_eq!(got, code, "{uri}: {body}");
        assert_eq!(keys(&body), ["code", "error"], "{uri}");
        assert!(body["error"].as_str().expect("text").contains(says), "{uri}: {body}");
    }
    let (_, body) = get_json(&state, "/api/jobs/q:01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(body["code"], "not_found");
    // An unknown queue is empty, not an error.
    let (code, page) = get_json(&state, "/api/queues/nobody/jobs?status=dead").await;
    assert_eq!((code, page["jobs"].clone(), page["total"].clone()), (StatusCode::OK, json!([]), json!(0)));
    let (code, tp) = get_json(&state, "/api/throughput?minutes=3").await;
    assert_eq!((code, tp["minutes"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "an axis without queues");
}

#[tokio::test]
async fn a_backend_that_is_down_says_so_on_every_page() {
    let state = WebState::new(unreachable());
    for uri in ["/api/stats", "/api/queues/q/jobs", "/api/schedules"] {
        let (code, body) = get_json(&state, uri).await;
        assert_eq!(
            (code, body["code"].clone()),
            (StatusCode::SERVICE_UNAVAILABLE, json!("backend_unavailable")),
            "{uri}: {body}"
        );
        assert!(body["error"].as_str().expect("text").contains("connection refused"), "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_and_the_own_origin() {
    let queue = after_mixed_run().await;
    let id = dead_ids(&queue).await.remove(0);
    let uri = format!("/api/jobs/{id}/retry");

    let read_only = WebState::new(queue.clone());
    let (code, body) = post_json(&read_only, &uri, &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::FORBIDDEN, json!("read_only")), "{body}");
    assert!(body["error"].as_str().expect("text").contains("read-only: no admin token is configured"), "{body}");

    let admin = WebState::new(queue.clone()).admin_token(TOKEN);
    for headers in [vec![], vec![("authorization", "Bearer nope")], vec![("authorization", "Basic czNjcmV0LXRva2Vu")]] {
        let (code, h, body) = send(&admin, "POST", &uri, &headers).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(h.get("www-authenticate").map(|v| v.to_str().expect("ascii")), Some("Bearer realm=\"jobs\""));
        assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
    }
    let evil = [BEARER, ("origin", "https://evil.example"), ("host", "127.0.0.1:8080")];
    let (code, body) = post_json(&admin, &uri, &evil).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::FORBIDDEN, json!("cross_origin")), "{body}");
    assert_eq!(queue.job(&id.parse().expect("id")).await.expect("read").expect("kept").status, JobStatus::Dead);
    let (code, _) = post_json(&admin, &uri, &[BEARER, ("origin", "null"), ("host", "127.0.0.1:8080")]).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "an opaque origin is not ours");

    let own =
        [("authorization", "bearer s3cret-token"), ("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")];
    let (code, body) = post_json(&admin, &uri, &own).await;
    assert_eq!((code, body.clone()), (StatusCode::OK, json!({ "id": id, "outcome": "retried", "status": "pending" })));

    let proxied = WebState::new(queue.clone()).admin_token(TOKEN).allow_origin("https://jobs.example.com/");
    let other = dead_ids(&queue).await.remove(0);
    let via_proxy = [BEARER, ("origin", "https://jobs.example.com"), ("host", "10.0.0.5:8080")];
    let (code, body) = post_json(&proxied, &format!("/api/jobs/{other}/retry"), &via_proxy).await;
    assert_eq!(code, StatusCode::OK, "an allowed origin: {body}");

    let (_, auth) = get_json(&admin, "/api/auth").await;
    assert_eq!(auth, json!({ "actions_enabled": true, "token_valid": null }));
    let (_, auth) = send(&admin, "GET", "/api/auth", &[("authorization", "Bearer nope")])
        .await
        .2
        .parse::<Value>()
        .map(|v| ((), v))
        .expect("JSON");
    assert_eq!(auth["token_valid"], false);
    let (_, _, body) = send(&admin, "GET", "/api/auth", &[BEARER]).await;
    assert_eq!(body.parse::<Value>().expect("JSON")["token_valid"], true);
    // A blank token configures nothing.
    assert!(!WebState::new(queue).admin_token("  ").actions_enabled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_change_the_backend_and_the_next_read_shows_it() {
    let queue = after_mixed_run().await;
    // A long stats cache: reads after an action must not be stale anyway.
    let state = WebState::new(queue.clone()).admin_token(TOKEN).stats_ttl(Duration::from_secs(3600));
    assert_eq!(get_json(&state, "/api/stats").await.1["totals"]["dead"], 2);

    let first = dead_ids(&queue).await.remove(0);
    assert_eq!(post_json(&state, &format!("/api/jobs/{first}/retry"), &[BEARER]).await.0, StatusCode::OK);
    let (code, body) = post_json(&state, &format!("/api/jobs/{first}/retry"), &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::CONFLICT, json!("invalid_state")), "{body}");
    assert_eq!(get_json(&state, &format!("/api/jobs/{first}")).await.1["status"], "pending");
    let (_, stats) = get_json(&state, "/api/stats").await;
    assert_eq!((stats["totals"]["dead"].clone(), stats["totals"]["pending"].clone()), (json!(1), json!(1)));

    // Kill it again to have two, then retry all and purge.
    let (code, body) = post_json(&state, &format!("/api/queues/{QUEUE}/retry-dead"), &[BEARER]).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "queue": QUEUE, "retried": 1, "failed": 0, "errors": [] })));
    assert!(dead_ids(&queue).await.is_empty());
    let doomed = WebDoomed {}.enqueue(&queue).await.expect("enqueue");
    let metrics = JobMetrics::new();
    let pool = start_pool(queue.clone(), &metrics);
    eventually("all dead again", || async {
        queue.job(&doomed).await.ok().flatten().is_some_and(|j| j.status == JobStatus::Dead)
            && dead_ids(&queue).await.len() == 3
    })
    .await;
    pool.shutdown().await.expect("clean shutdown");
    let (_, job) = get_json(&state, &format!("/api/jobs/{first}")).await;
    let kinds: Vec<&str> =
        job["timeline"].as_array().expect("list").iter().map(|e| e["kind"].as_str().expect("kind")).collect();
    assert!(kinds.contains(&"retried") && kinds.ends_with(&["failed", "dead"]), "{job}");
    let (code, body) = post_json(&state, &format!("/api/queues/{QUEUE}/purge-dead"), &[BEARER]).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "queue": QUEUE, "purged": 3 })));
    assert_eq!(get_json(&state, &format!("/api/jobs/{doomed}")).await.0, StatusCode::NOT_FOUND);

    // Pause and resume a queue.
    let (code, body) = post_json(&state, &format!("/api/queues/{QUEUE}/pause"), &[BEARER]).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "kind": "queue", "name": QUEUE, "paused": true })));
    assert_eq!(get_json(&state, "/api/stats").await.1["queues"][0]["paused"], true);
    assert_eq!(post_json(&state, &format!("/api/queues/{QUEUE}/resume"), &[BEARER]).await.0, StatusCode::OK);
    assert_eq!(get_json(&state, "/api/stats").await.1["queues"][0]["paused"], false);

    // Limits: read, set one (the other stays), refuse nonsense, remove.
    let limits = format!("/api/queues/{QUEUE}/limits");
    let (code, body) = get_json(&state, &limits).await;
    let none = json!({ "queue": QUEUE, "max_running": null, "max_jobs": null, "rate": null,
        "group_concurrency": null, "group_rate": null, "priority_levels": [], "limited": 0, "throttled": 0, "handed": 0,
        "breaker": null, "group_breaker": null, "breaker_state": { "state": "closed", "recent_failures": 0,
        "opened": 0, "groups_open": 0, "groups_opened": 0, "groups": [] }, "retention": {}, "archive": false });
    assert_eq!((code, body), (StatusCode::OK, none.clone()));
    let (code, body) = post_json(&state, &format!("{limits}?max_running=3"), &[BEARER]).await;
    assert_eq!((code, body["max_running"].clone(), body["max_jobs"].clone()), (StatusCode::OK, json!(3), json!(null)));
    let (_, body) = post_json(&state, &format!("{limits}?max_jobs=50"), &[BEARER]).await;
    assert_eq!((body["max_running"].clone(), body["max_jobs"].clone()), (json!(3), json!(50)), "max_running kept");
    assert_eq!(queue.policy(QUEUE).await.expect("policy").max_running, Some(3), "stored in the backend");
    let (_, body) = post_json(&state, &format!("{limits}?rate=100/1m"), &[BEARER]).await;
    assert_eq!(body["rate"], "100/1m");
    let (_, body) = post_json(&state, &format!("{limits}?group_concurrency=2&group_rate=10/1s"), &[BEARER]).await;
    assert_eq!((body["group_concurrency"].clone(), body["group_rate"].clone()), (json!(2), json!("10/1s")));
    let p = queue.policy(QUEUE).await.expect("policy");
    assert_eq!((p.group_concurrency, p.rate.is_some()), (Some(2), true), "stored, the queue's rate kept");
    let (_, body) = post_json(&state, &format!("{limits}?breaker=5/1m:30s"), &[BEARER]).await;
    assert_eq!(body["breaker"], "5/1m:30s");
    let retention = "keep_succeeded=1h&max_succeeded=0&keep_dead=30days&max_dead=10&archive=true";
    let (_, body) = post_json(&state, &format!("{limits}?{retention}"), &[BEARER]).await;
    assert_eq!(
        (body["retention"].clone(), body["archive"].clone()),
        (json!({ "succeeded": "1h", "succeeded_max": 0, "dead_age": "30days", "dead_max": 10 }), json!(true))
    );
    let p = queue.policy(QUEUE).await.expect("policy");
    assert_eq!((p.retention.succeeded_max, p.retention.dead_max, p.archive), (Some(0), Some(10), true), "stored");
    let (_, body) = post_json(&state, &format!("{limits}?keep_dead=none&archive=false"), &[BEARER]).await;
    assert_eq!(
        (body["retention"].clone(), body["archive"].clone()),
        (json!({ "succeeded": "1h", "succeeded_max": 0, "dead_max": 10 }), json!(false)),
        "one back to the backend's, the others kept"
    );
    let breaker = format!("/api/queues/{QUEUE}/breaker");
    let (code, body) = post_json(&state, &format!("{breaker}?open=10m"), &[BEARER]).await;
    assert_eq!((code, body["breaker_state"]["state"].clone()), (StatusCode::OK, json!("open")), "{body}");
    assert!(matches!(queue.breaker(QUEUE).await.expect("breaker").state, jobs_core::BreakerState::Open { .. }));
    assert_eq!(post_json(&state, &format!("{breaker}?close=true"), &[]).await.0, StatusCode::UNAUTHORIZED);
    let (_, body) = post_json(&state, &format!("{breaker}?close=true"), &[BEARER]).await;
    assert_eq!(
        (body["breaker_state"]["state"].clone(), body["breaker_state"]["opened"].clone()),
        (json!("closed"), json!(1))
    );
    // A group's own breaker.
    let (_, body) = post_json(&state, &format!("{limits}?group_breaker=3/1m:20s"), &[BEARER]).await;
    assert_eq!(body["group_breaker"], "3/1m:20s");
    let (code, body) = post_json(&state, &format!("{breaker}?open=10m&group=acme"), &[BEARER]).await;
    let bs = body["breaker_state"].clone();
    assert_eq!(
        (code, bs["groups_open"].clone(), bs["groups"][0]["group"].clone()),
        (StatusCode::OK, json!(1), json!("acme"))
    );
    assert_eq!((bs["state"].clone(), bs["groups"][0]["state"].clone()), (json!("closed"), json!("open")), "{body}");
    assert_eq!(queue.breaker(QUEUE).await.expect("breaker").groups_open, 1, "stored in the backend");
    let (_, body) = post_json(&state, &format!("{breaker}?close=true&group=acme"), &[BEARER]).await;
    assert_eq!(
        (body["breaker_state"]["groups_open"].clone(), body["breaker_state"]["groups_opened"].clone()),
        (json!(0), json!(1))
    );
    for bad in ["open=soon", "open=1m&close=true", "", "close=true&group="] {
        let (code, body) = post_json(&state, &format!("{breaker}?{bad}"), &[BEARER]).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for bad in [
        "max_running=0",
        "max_jobs=lots",
        "rate=fast",
        "group_concurrency=0",
        "group_rate=fast",
        "breaker=5/1m",
        "group_breaker=0/1m:1s",
        "keep_succeeded=soon",
        "max_dead=-1",
        "archive=maybe",
    ] {
        let (code, body) = post_json(&state, &format!("{limits}?{bad}"), &[BEARER]).await;
        assert_eq!((code, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("bad_request")), "{bad}: {body}");
    }
    assert_eq!(post_json(&state, &format!("{limits}?max_running=5"), &[]).await.0, StatusCode::UNAUTHORIZED);
    let all_none = "max_running=none&max_jobs=none&rate=none&group_concurrency=none&group_rate=none&breaker=none\
                    &group_breaker=none&keep_succeeded=none&max_succeeded=none&keep_dead=none&max_dead=none";
    let (_, body) = post_json(&state, &format!("{limits}?{all_none}"), &[BEARER]).await;
    let mut none = none;
    none["breaker_state"]["opened"] = json!(1);
    none["breaker_state"]["groups_opened"] = json!(1);
    assert_eq!(body, none);
    let (code, body) = get_json(&state, &format!("/api/queues/{QUEUE}/groups")).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "queue": QUEUE, "groups": [] })));
    let (code, _) = get_json(&state, &format!("/api/queues/{QUEUE}/groups?limit=0")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // Cancel a scheduled job; cancelling again reports it finished.
    let later = WebFlaky { fail_times: 0 }
        .enqueue_with(&queue, JobOptions::new().delay(Duration::from_secs(3600)))
        .await
        .expect("enqueue");
    let (code, body) = post_json(&state, &format!("/api/jobs/{later}/cancel"), &[BEARER]).await;
    assert_eq!(
        (code, body["outcome"].clone(), body["status"].clone()),
        (StatusCode::OK, json!("cancelled"), json!("cancelled"))
    );
    let (_, body) = post_json(&state, &format!("/api/jobs/{later}/cancel"), &[BEARER]).await;
    assert_eq!(body["outcome"], "already_finished");

    // Schedules: listed with their next fire, paused and resumed.
    Scheduler::new(queue.clone())
        .add("nightly", "0 0 3 * * *", "Europe/Berlin", WebFlaky { fail_times: 0 })
        .await
        .expect("add");
    // An interval schedule with rules, and one past its end.
    let prices = ScheduleDef {
        every: Some(Duration::from_secs(90)),
        jitter: Some(Duration::from_secs(30)),
        overlap: Overlap::Queue,
        exclude: vec!["2030-12-25".into()],
        ..ScheduleDef::new("prices", "", "UTC", "web_flaky", QUEUE)
    };
    Scheduler::new(queue.clone()).put(prices).await.expect("put");
    let over = ScheduleOptions::new().starts_at(UNIX_EPOCH).ends_at(UNIX_EPOCH + Duration::from_secs(3600));
    Scheduler::new(queue.clone())
        .add_with("over", "0 * * * *", "UTC", WebFlaky { fail_times: 0 }, over)
        .await
        .expect("add");
    let (code, list) = get_json(&state, "/api/schedules").await;
    assert_eq!(code, StatusCode::OK, "{list}");
    // Pools also store the cron jobs of every linked crate (the conformance
    // suite's, in a workspace-wide build): look this one up by name.
    let s = list["schedules"].as_array().expect("a list").iter().find(|s| s["name"] == "nightly").expect("listed");
    assert_eq!(
        keys(s),
        [
            "catch_up",
            "cron",
            "ended",
            "ends_at",
            "every",
            "exclude",
            "held_tick",
            "jitter",
            "job_name",
            "last_job",
            "last_run",
            "last_skipped",
            "name",
            "next_fire",
            "orphaned",
            "overlap",
            "paused",
            "queue",
            "skipped",
            "starts_at",
            "timezone"
        ]
    );
    assert_eq!(
        (s["name"].clone(), s["paused"].clone(), s["job_name"].clone()),
        (json!("nightly"), json!(false), json!("web_flaky"))
    );
    assert!(s["next_fire"].is_string(), "{s}");
    let find = |name: &str| {
        list["schedules"].as_array().expect("a list").iter().find(|s| s["name"] == name).expect("listed").clone()
    };
    let prices = find("prices");
    assert_eq!(
        (&prices["cron"], &prices["every"], &prices["jitter"], &prices["overlap"], &prices["exclude"]),
        (&json!(""), &json!("1m 30s"), &json!("30s"), &json!("queue"), &json!(["2030-12-25"]))
    );
    assert_eq!((&prices["ended"], &prices["skipped"], &prices["held_tick"]), (&json!(false), &json!(0), &Value::Null));
    let over = find("over");
    assert_eq!(
        (&over["ended"], &over["next_fire"], &over["ends_at"]),
        (&json!(true), &Value::Null, &json!("1970-01-01T01:00:00.000Z"))
    );
    let (code, body) = post_json(&state, "/api/schedules/nightly/pause", &[BEARER]).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "kind": "schedule", "name": "nightly", "paused": true })));
    let nightly = |list: Value| {
        list["schedules"].as_array().expect("a list").iter().find(|s| s["name"] == "nightly").expect("listed").clone()
    };
    let s = nightly(get_json(&state, "/api/schedules").await.1);
    assert_eq!((s["paused"].clone(), s["next_fire"].clone()), (json!(true), Value::Null));
    assert_eq!(post_json(&state, "/api/schedules/nightly/resume", &[BEARER]).await.0, StatusCode::OK);
    assert_eq!(nightly(get_json(&state, "/api/schedules").await.1)["paused"], false);
    let (code, body) = post_json(&state, "/api/schedules/nope/pause", &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")), "{body}");
    // Run now: one job of the schedule's, enqueued at once; the token is needed.
    assert_eq!(post_json(&state, "/api/schedules/nightly/run", &[]).await.0, StatusCode::UNAUTHORIZED);
    let (code, body) = post_json(&state, "/api/schedules/nightly/run", &[BEARER]).await;
    assert_eq!(
        (code, body["kind"].clone(), body["name"].clone()),
        (StatusCode::OK, json!("schedule"), json!("nightly"))
    );
    let id: jobs_core::JobId = body["job"].as_str().expect("the job's id").parse().expect("a job id");
    let job = queue.job(&id).await.expect("read").expect("the job is stored");
    assert_eq!(job.name, "web_flaky", "the schedule's job");
    let (code, body) = post_json(&state, "/api/schedules/nope/run", &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")), "{body}");
    // A read path does not take a POST.
    assert_eq!(send(&state, "POST", "/api/stats", &[BEARER]).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

/// A stored schedule whose job no live pool runs: listed `orphaned`,
/// removed with the token only, then gone (404 on a second removal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_schedules_are_flagged_and_removed_with_the_token() {
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let metrics = JobMetrics::new();
    let pool = start_pool(queue.clone(), &metrics);
    eventually("the pool reported its presence", || async { queue.pools().await.is_ok_and(|w| !w.is_empty()) }).await;
    Scheduler::new(queue.clone()).add("nightly", "0 0 3 * * *", "UTC", WebFlaky { fail_times: 0 }).await.expect("add");
    queue
        .put_schedule(ScheduleDef::new("legacy-export", "0 0 4 * * *", "UTC", "export_removed_from_code", QUEUE))
        .await
        .expect("stored");
    // A long cache: the removal must show at the next read anyway.
    let state = WebState::new(queue.clone()).admin_token(TOKEN).stats_ttl(Duration::from_secs(3600));
    let orphaned = |list: &Value, name: &str| {
        list["schedules"].as_array().expect("a list").iter().find(|s| s["name"] == name).map(|s| s["orphaned"].clone())
    };
    let (code, list) = get_json(&state, "/api/schedules").await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(
        (orphaned(&list, "legacy-export"), orphaned(&list, "nightly")),
        (Some(json!(true)), Some(json!(false))),
        "{list}"
    );

    let uri = "/api/schedules/legacy-export/remove";
    for headers in [vec![], vec![("authorization", "Bearer nope")]] {
        let (code, body) = post_json(&state, uri, &headers).await;
        assert_eq!((code, body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("unauthorized")), "{body}");
    }
    let (code, body) = post_json(&WebState::new(queue.clone()), uri, &[BEARER]).await;
    assert_eq!((code, body["code"].clone()), (StatusCode::FORBIDDEN, json!("read_only")), "{body}");
    let stored = || async { queue.schedules().await.expect("schedules").iter().any(|s| s.def.name == "legacy-export") };
    assert!(stored().await, "refused: still stored");

    let (code, body) = post_json(&state, uri, &[BEARER]).await;
    assert_eq!((code, body), (StatusCode::OK, json!({ "kind": "schedule", "name": "legacy-export", "removed": true })));
    assert!(!stored().await, "removed from the backend");
    let (_, list) = get_json(&state, "/api/schedules").await;
    assert_eq!((orphaned(&list, "legacy-export"), orphaned(&list, "nightly")), (None, Some(json!(false))), "{list}");
    let (code, body) = post_json(&state, uri, &[BEARER]).await;
    assert_eq!(
        (code, body),
        (StatusCode::NOT_FOUND, json!({ "error": "no schedule named `legacy-export`", "code": "not_found" }))
    );
    assert_eq!(send(&state, "GET", uri, &[BEARER]).await.0, StatusCode::METHOD_NOT_ALLOWED, "an action is a POST");
    pool.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn api_answers_are_never_cached() {
    let state = WebState::new(Arc::new(MemoryQueue::new()));
    let (_, h, _) = send(&state, "GET", "/api/stats", &[]).await;
    assert_eq!(h.get("cache-control").map(|v| v.to_str().expect("ascii")), Some("no-store"));
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().expect("ascii")), Some("nosniff"));
}

#[tokio::test]
async fn the_dashboard_is_served_embedded_with_a_strict_csp() {
    let state = WebState::new(Arc::new(MemoryQueue::new()));
    let (code, h, _) = send(&state, "GET", "/ui", &[]).await;
    assert_eq!(
        (code, h.get("location").map(|v| v.to_str().expect("ascii"))),
        (StatusCode::TEMPORARY_REDIRECT, Some("ui/"))
    );

    let (code, h, html) = send(&state, "GET", "/ui/", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(h.get("content-type").map(|v| v.to_str().expect("ascii")), Some("text/html; charset=utf-8"));
    let csp = h.get("content-security-policy").expect("a CSP").to_str().expect("ascii");
    assert_eq!(csp, jobs_web::CONTENT_SECURITY_POLICY);
    for part in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().expect("ascii")), Some("DENY"));
    assert!(html.contains("<script type=\"module\" src=\"main.js\"></script>"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style="), "nothing inline: the CSP would block it");

    let etag = h.get("etag").expect("an ETag").to_str().expect("ascii").to_owned();
    let (code, h, _) = send(&state, "GET", "/ui/", &[("if-none-match", &etag)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    assert!(h.get("content-security-policy").is_some());

    for (file, ctype) in [("main.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8")] {
        let (code, h, _) = send(&state, "GET", &format!("/ui/{file}"), &[]).await;
        assert_eq!((code, h.get("content-type").map(|v| v.to_str().expect("ascii"))), (StatusCode::OK, Some(ctype)));
    }
    let (code, h, _) = send(&state, "GET", "/ui/secret.txt", &[]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(h.get("content-security-policy").is_some());
    assert_eq!(send(&state, "GET", "/ui/..%2FCargo.toml", &[]).await.0, StatusCode::NOT_FOUND);
}

/// The pages put server data on screen as text only: no script assigns
/// HTML (`innerHTML` and friends) or evaluates strings.
#[test]
fn no_page_script_writes_html_or_evaluates_strings() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/ui");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("ui/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "js") {
            let text = std::fs::read_to_string(&path).expect("read");
            for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                assert!(!text.contains(banned), "{} uses {banned}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "checked {checked} scripts");
}

/// Over a `QueueRouter`, the API lists the queues of both backends and an
/// action on a queue reaches the backend that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_sees_every_backend_of_a_router() {
    let (main, bulk) = (MemoryQueue::new(), MemoryQueue::new());
    let router = jobs_core::QueueRouter::builder("main", main.clone())
        .backend("bulk", bulk.clone())
        .route("bulk", "bulk")
        .build()
        .expect("a valid router");
    let queue: SharedQueue = Arc::new(router);
    WebFlaky { fail_times: 0 }.enqueue(&queue).await.expect("enqueue");
    let id = WebFlaky { fail_times: 0 }.enqueue_with(&queue, JobOptions::new().queue("bulk")).await.expect("enqueue");
    let state = WebState::new(queue.clone()).admin_token(TOKEN);

    let (_, stats) = get_json(&state, "/api/stats").await;
    let names: Vec<&str> =
        stats["queues"].as_array().expect("list").iter().map(|q| q["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["bulk", QUEUE], "{stats}");
    assert_eq!(stats["totals"]["pending"], 2, "{stats}");
    let (code, job) = get_json(&state, &format!("/api/jobs/{id}")).await;
    assert_eq!((code, job["queue"].clone()), (StatusCode::OK, json!("bulk")), "{job}");

    assert_eq!(post_json(&state, "/api/queues/bulk/pause", &[BEARER]).await.0, StatusCode::OK);
    assert!(bulk.stats().await.expect("stats").queues["bulk"].paused, "paused on bulk's backend");
    assert!(!main.stats().await.expect("stats").queues.contains_key("bulk"), "nothing of bulk on the other");
}
