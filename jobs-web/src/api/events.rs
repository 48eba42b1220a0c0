//! `GET /api/queues/{queue}/events`: a queue's job events as a
//! server-sent event stream, which the dashboard's queue and job pages
//! follow to update as jobs change.
//!
//! Each job event is one SSE event named `job`, its `id` the event's cursor
//! and its data the event as JSON. A client that reconnects sends the last
//! id it saw (`Last-Event-ID`, or `?after=`) and gets what happened since,
//! as far as the backend's bounded history reaches; when events were
//! dropped before it read them, an event named `missed` says so (the page
//! then reloads what it shows). Streams are limited per server
//! ([`MAX_STREAMS`]): each holds a subscription on the backend.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jobs_core::{EventCursor, EventFilter, EventKind, EventStream, JobEvent, JobId};
use serde::Deserialize;
use serde::Serialize;

use super::views::ts;
use super::{query_param, queue_param, ApiError};
use crate::state::WebState;

/// Event streams served at once; past it a request is answered 503.
pub(crate) const MAX_STREAMS: usize = 64;

/// The query of an event stream.
#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    /// Only this job's events.
    job: Option<String>,
    /// Resume after this cursor (as `Last-Event-ID` does).
    after: Option<String>,
}

pub(crate) async fn events(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let queue = queue_param(path)?;
    let q = query_param(query)?;
    let mut filter = EventFilter::queue(&queue);
    if let Some(id) = &q.job {
        let id: JobId = id.parse()?;
        if id.queue() != queue {
            return Err(ApiError::BadRequest(format!("job `{id}` is not a job of queue `{queue}`")));
        }
        filter = filter.job(&id);
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.after)
        .filter(|a| !a.is_empty());
    let Ok(permit) = state.inner.event_streams.clone().try_acquire_owned() else {
        return Err(ApiError::Backend(jobs_core::Error::Backend(
            format!("too many event streams open on this server (at most {MAX_STREAMS}); the page still refreshes by polling")
                .into(),
        )));
    };
    let backend = state.queue().clone();
    let stream = match after {
        Some(a) => EventStream::resume(&backend, filter, EventCursor::from_backend(a)).await?,
        None => EventStream::open(&backend, filter).await?,
    };
    let sse = futures_util::stream::unfold((stream, permit), |(mut s, permit)| async move {
        let item = s.next().await?;
        let ev = match item {
            Ok(e) => {
                let id = e.cursor.to_string();
                Event::default().event("job").id(id).json_data(view(e)).unwrap_or_else(|err| {
                    Event::default().event("error").data(format!("an event could not be encoded: {err}"))
                })
            }
            Err(jobs_core::Error::EventsMissed { .. }) => Event::default().event("missed").data("events were missed"),
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok::<_, Infallible>(ev), (s, permit)))
    });
    Ok(Sse::new(sse).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// A job event as the API shows it: times as RFC 3339 text, like every
/// other answer.
#[derive(Serialize)]
struct EventView {
    cursor: String,
    kind: EventKind,
    job: String,
    name: String,
    attempt: u32,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<f32>,
}

fn view(e: JobEvent) -> EventView {
    EventView {
        cursor: e.cursor.to_string(),
        kind: e.kind,
        job: e.job.to_string(),
        name: e.name,
        attempt: e.attempt,
        at: ts(e.at),
        detail: e.detail,
        progress: e.progress,
    }
}
