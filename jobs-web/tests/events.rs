//! `GET /api/queues/{queue}/events`: the queue's job events as server-sent
//! events, through the router alone (tower `oneshot`, no socket).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use jobs_web::WebState;
use tower::ServiceExt;

#[job(queue = "reports")]
async fn build(day: u32) -> Result<u32, JobError> {
    Ok(day)
}

/// Sends `GET uri` with `headers`; returns the status and the body stream.
async fn open(state: &WebState, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, axum::body::BodyDataStream) {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = jobs_web::router(state.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    (resp.status(), resp.into_body().into_data_stream())
}

/// Reads SSE events (name, id, data) until `n` arrived (keep-alive comments
/// skipped), within a deadline.
async fn read_events(body: &mut axum::body::BodyDataStream, n: usize) -> Vec<(String, String, String)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while out.len() < n {
            let chunk = body.next().await.expect("the stream goes on").expect("a chunk");
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    out.push((name, id, data));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {n} events arrived: {out:?}", out.len()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_s_events_stream_and_resume_from_the_last_id() {
    let mem = MemoryQueue::new();
    let q: SharedQueue = std::sync::Arc::new(mem.clone());
    let state = WebState::new(q.clone());
    let l = q.listen("reports", Duration::from_secs(60)).await.unwrap();
    let a = Build { day: 1 }.enqueue(&q).await.unwrap();
    let b = Build { day: 2 }.enqueue(&q).await.unwrap();
    q.cancel(&a).await.unwrap();

    let (status, mut body) = open(&state, &format!("/api/queues/reports/events?after={}", l.cursor), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let got = read_events(&mut body, 3).await;
    let seen: Vec<(String, String, String)> = got
        .iter()
        .map(|(name, _, data)| {
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            (name.clone(), v["kind"].as_str().unwrap().to_owned(), v["job"].as_str().unwrap().to_owned())
        })
        .collect();
    let job = |id: &JobId, kind: &str| ("job".to_owned(), kind.to_owned(), id.to_string());
    assert_eq!(seen, vec![job(&a, "enqueued"), job(&b, "enqueued"), job(&a, "cancelled")]);
    let first: serde_json::Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(first["name"], "build");
    assert_eq!(first["cursor"].as_str(), Some(got[0].1.as_str()), "the SSE id is the event's cursor");
    assert!(first["at"].as_str().is_some_and(|t| t.ends_with('Z')), "an RFC 3339 time: {first}");

    // What happens next arrives on the open stream.
    q.cancel(&b).await.unwrap();
    let next = read_events(&mut body, 1).await;
    assert!(next[0].2.contains(&b.to_string()) && next[0].2.contains("cancelled"), "{next:?}");
    drop(body);

    // A reconnecting client names the last id it saw and gets what followed.
    let (_, mut again) = open(&state, "/api/queues/reports/events", &[("last-event-id", &got[1].1)]).await;
    let resumed = read_events(&mut again, 2).await;
    assert!(resumed[0].2.contains(&a.to_string()) && resumed[0].2.contains("cancelled"), "{resumed:?}");
    assert!(resumed[1].2.contains(&b.to_string()) && resumed[1].2.contains("cancelled"), "{resumed:?}");

    // One job's events only.
    let (_, mut one) = open(&state, &format!("/api/queues/reports/events?after={}&job={b}", l.cursor), &[]).await;
    let only = read_events(&mut one, 2).await;
    assert!(only.iter().all(|(_, _, d)| d.contains(&b.to_string())), "{only:?}");
}

#[tokio::test]
async fn bad_event_requests_are_refused() {
    let q: SharedQueue = std::sync::Arc::new(MemoryQueue::new());
    let state = WebState::new(q);
    let other = JobId::new("mail");
    let (status, _) = open(&state, &format!("/api/queues/reports/events?job={other}"), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = open(&state, "/api/queues/no%7Bsuch%7D/events", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Reads that need the token need it here too.
    let closed =
        WebState::new(std::sync::Arc::new(MemoryQueue::new())).admin_token("t0ken").require_token_for_reads(true);
    let (status, _) = open(&closed, "/api/queues/reports/events", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = open(&closed, "/api/queues/reports/events", &[("authorization", "Bearer t0ken")]).await;
    assert_eq!(status, StatusCode::OK);
}

/// Streams are bounded per server: past the bound a request is refused
/// (503), and a closed stream frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_bounded() {
    let q: SharedQueue = std::sync::Arc::new(MemoryQueue::new());
    let state = WebState::new(q);
    let mut open_ones = Vec::new();
    for _ in 0..64 {
        let (status, body) = open(&state, "/api/queues/reports/events", &[]).await;
        assert_eq!(status, StatusCode::OK);
        open_ones.push(body);
    }
    let (status, _) = open(&state, "/api/queues/reports/events", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    open_ones.pop();
    // The stream's task lets go of its place once its body is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = open(&state, "/api/queues/reports/events", &[]).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a closed stream never freed its place");
        tokio::task::yield_now().await;
    }
}
