//! The API's actions (`POST`): only with the admin token, only from this
//! server's own origin.
//!
//! Why this is CSRF-safe: the token travels in the `Authorization` header,
//! which a browser never attaches on its own (unlike a cookie), and which a
//! page of another site cannot set on a request to this server without a
//! CORS preflight that this server never grants. On top of that, an action
//! whose `Origin` header names another site is refused outright.

use std::collections::HashSet;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jobs_core::{CancelResult, JobStatus};

use super::views::{JobActionView, LimitsView, PausedView, PurgeView, RemovedView, RetryAllView, TriggeredView};
use super::{job_param, queue_param, ApiError};
use crate::state::{TokenCheck, WebState};

/// Dead jobs read per round by "retry all".
const RETRY_BATCH: usize = 200;
/// Failures "retry all" reports one by one (the rest are counted).
const MAX_REPORTED_ERRORS: usize = 5;

/// Refuses an action before it runs: 403 from another origin or when no
/// token is configured, 401 without the right token.
pub(crate) async fn require_admin(State(state): State<WebState>, req: Request, next: Next) -> Response {
    match authorize(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn authorize(state: &WebState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("<not text>");
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| host.is_some_and(|h| authority.eq_ignore_ascii_case(h)));
        let allowed = state.inner.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin));
        if !own && !allowed {
            return Err(ApiError::CrossOrigin(origin.to_owned()));
        }
    }
    let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match state.check_token(sent) {
        TokenCheck::Valid => Ok(()),
        TokenCheck::ReadOnly => Err(ApiError::ReadOnly),
        TokenCheck::Wrong => Err(ApiError::Unauthorized),
    }
}

/// `POST /api/jobs/{id}/retry`: a dead job back to pending, attempts reset.
pub(crate) async fn retry(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JobActionView>, ApiError> {
    let id = job_param(path)?;
    state.queue().retry_dead(&id).await?;
    state.invalidate().await;
    tracing::info!(job = %id, "dead job retried from the dashboard");
    Ok(Json(JobActionView { id: id.to_string(), outcome: "retried", status: JobStatus::Pending }))
}

/// `POST /api/jobs/{id}/cancel`: takes a waiting job out of its queue, or
/// asks a running one to stop.
pub(crate) async fn cancel(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JobActionView>, ApiError> {
    let id = job_param(path)?;
    let (outcome, status) = match state.queue().cancel(&id).await? {
        CancelResult::Cancelled => ("cancelled", JobStatus::Cancelled),
        CancelResult::Requested => ("cancel_requested", JobStatus::Running),
        CancelResult::AlreadyFinished(s) => ("already_finished", s),
        // A result the port gained after this crate: the cancel was done as
        // the backend saw fit, so answer with the status the job has now.
        _ => {
            let job = state.queue().job(&id).await?.ok_or_else(|| jobs_core::Error::NotFound(id.clone()))?;
            ("other", job.status)
        }
    };
    state.invalidate().await;
    tracing::info!(job = %id, outcome, "job cancelled from the dashboard");
    Ok(Json(JobActionView { id: id.to_string(), outcome, status }))
}

/// `POST /api/queues/{queue}/retry-dead`: every dead job of the queue back
/// to pending. The port has no bulk call, so this reads the dead-letter set
/// a batch at a time and retries each job; it handles at most as many jobs
/// as the queue held dead when it started (jobs that die again meanwhile
/// are left for the next call).
pub(crate) async fn retry_all_dead(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RetryAllView>, ApiError> {
    let queue = queue_param(path)?;
    let backend = state.queue();
    let budget = backend.stats().await?.queue(&queue).dead;
    let mut out = RetryAllView { queue, retried: 0, failed: 0, errors: Vec::new() };
    let mut refused = HashSet::new();
    while out.retried + out.failed < budget {
        let batch = backend.dead_jobs(&out.queue, RETRY_BATCH + refused.len()).await?;
        let fresh: Vec<_> = batch.into_iter().filter(|j| !refused.contains(&j.id)).collect();
        if fresh.is_empty() {
            break;
        }
        for job in fresh {
            if out.retried + out.failed >= budget {
                break;
            }
            match backend.retry_dead(&job.id).await {
                Ok(()) => out.retried += 1,
                Err(e) => {
                    out.failed += 1;
                    if out.errors.len() < MAX_REPORTED_ERRORS {
                        out.errors.push(e.to_string());
                    }
                    refused.insert(job.id);
                }
            }
        }
    }
    state.invalidate().await;
    tracing::info!(queue = %out.queue, retried = out.retried, failed = out.failed, "dead jobs retried from the dashboard");
    Ok(Json(out))
}

/// `POST /api/queues/{queue}/purge-dead`: deletes every dead job of the queue.
pub(crate) async fn purge_dead(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PurgeView>, ApiError> {
    let queue = queue_param(path)?;
    let purged = state.queue().purge_dead(&queue).await?;
    state.invalidate().await;
    tracing::info!(queue = %queue, purged, "dead jobs purged from the dashboard");
    Ok(Json(PurgeView { queue, purged }))
}

/// `POST /api/queues/{queue}/pause`: holds workers off the queue.
pub(crate) async fn pause_queue(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PausedView>, ApiError> {
    let queue = queue_param(path)?;
    state.queue().pause(&queue).await?;
    state.invalidate().await;
    tracing::info!(queue = %queue, "queue paused from the dashboard");
    Ok(Json(PausedView { kind: "queue", name: queue, paused: true }))
}

/// The query of `POST /api/queues/{queue}/limits`: each limit given is
/// set (a number of at least 1, or `none`), the others stay.
#[derive(serde::Deserialize)]
pub(crate) struct LimitsQuery {
    max_running: Option<String>,
    max_jobs: Option<String>,
    rate: Option<String>,
    group_concurrency: Option<String>,
    group_rate: Option<String>,
    breaker: Option<String>,
    group_breaker: Option<String>,
    keep_succeeded: Option<String>,
    max_succeeded: Option<String>,
    keep_dead: Option<String>,
    max_dead: Option<String>,
    archive: Option<bool>,
}

/// `n` or `none`, for the limit `name`.
fn limit(name: &str, text: &str) -> Result<Option<u64>, ApiError> {
    match text {
        "none" => Ok(None),
        _ => match text.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::BadRequest(format!("`{name}` must be a number of at least 1, or `none`; got `{text}`"))),
        },
    }
}

/// A retention age (`1h`) or `none` (the backend's), for `name`.
fn age(name: &str, text: &str) -> Result<Option<std::time::Duration>, ApiError> {
    match text {
        "none" => Ok(None),
        _ => humantime::parse_duration(text).map(Some).map_err(|_| {
            ApiError::BadRequest(format!("`{name}` must be a duration such as `1h`, or `none`; got `{text}`"))
        }),
    }
}

/// A retention count (0 and up) or `none` (the backend's), for `name`.
fn count(name: &str, text: &str) -> Result<Option<usize>, ApiError> {
    match text {
        "none" => Ok(None),
        _ => text
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("`{name}` must be a number, or `none`; got `{text}`"))),
    }
}

/// A rate (`100/1m`) or `none`; `None` when not given.
fn rate_param(text: Option<&str>) -> Result<Option<Option<jobs_core::Rate>>, ApiError> {
    match text {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(text) => Ok(Some(Some(text.parse::<jobs_core::Rate>().map_err(ApiError::BadRequest)?))),
    }
}

/// A breaker (`5/1m:30s`) or `none`; `None` when not given.
fn breaker_param(text: Option<&str>) -> Result<Option<Option<jobs_core::Breaker>>, ApiError> {
    match text {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(text) => Ok(Some(Some(text.parse::<jobs_core::Breaker>().map_err(ApiError::BadRequest)?))),
    }
}

/// `POST /api/queues/{queue}/limits?max_running=5&max_jobs=none&rate=100/1m`
/// (also `group_concurrency`, `group_rate`, `breaker`, `group_breaker`,
/// the retention's `keep_succeeded`, `max_succeeded`, `keep_dead`,
/// `max_dead` (`none`: the backend's) and `archive=true|false`): changes
/// the limits given, from the next enqueue and fetch on.
pub(crate) async fn set_limits(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LimitsQuery>, QueryRejection>,
) -> Result<Json<LimitsView>, ApiError> {
    let queue = queue_param(path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let running = q.max_running.as_deref().map(|t| limit("max_running", t)).transpose()?;
    let jobs = q.max_jobs.as_deref().map(|t| limit("max_jobs", t)).transpose()?;
    let rate = rate_param(q.rate.as_deref())?;
    let group_running = q.group_concurrency.as_deref().map(|t| limit("group_concurrency", t)).transpose()?;
    let group_rate = rate_param(q.group_rate.as_deref())?;
    let breaker = breaker_param(q.breaker.as_deref())?;
    let group_breaker = breaker_param(q.group_breaker.as_deref())?;
    let keep_succeeded = q.keep_succeeded.as_deref().map(|t| age("keep_succeeded", t)).transpose()?;
    let max_succeeded = q.max_succeeded.as_deref().map(|t| count("max_succeeded", t)).transpose()?;
    let keep_dead = q.keep_dead.as_deref().map(|t| age("keep_dead", t)).transpose()?;
    let max_dead = q.max_dead.as_deref().map(|t| count("max_dead", t)).transpose()?;
    let mut policy = state.queue().policy(&queue).await?;
    let r = &mut policy.retention;
    if let Some(d) = keep_succeeded {
        r.succeeded = d;
    }
    if let Some(n) = max_succeeded {
        r.succeeded_max = n;
    }
    if let Some(d) = keep_dead {
        r.dead_age = d;
    }
    if let Some(n) = max_dead {
        r.dead_max = n;
    }
    if let Some(on) = q.archive {
        policy.archive = on;
    }
    if let Some(n) = running {
        policy.max_running = n;
    }
    if let Some(n) = jobs {
        policy.max_jobs = n;
    }
    if let Some(r) = rate {
        policy.rate = r;
    }
    if let Some(n) = group_running {
        policy.group_concurrency = n
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| ApiError::BadRequest(format!("`group_concurrency` is at most {}", u32::MAX)))
            })
            .transpose()?;
    }
    if let Some(r) = group_rate {
        policy.group_rate = r;
    }
    if let Some(b) = breaker {
        policy.breaker = b;
    }
    if let Some(b) = group_breaker {
        policy.group_breaker = b;
    }
    state.queue().set_policy(&queue, policy.clone()).await?;
    state.invalidate().await;
    tracing::info!(queue = %queue, max_running = ?policy.max_running, max_jobs = ?policy.max_jobs, "queue limits set from the dashboard");
    Ok(Json(super::read::limits_of(&state, queue).await?))
}

/// The query of `POST /api/queues/{queue}/breaker`: `open=10m` or
/// `close=true`, and `group=KEY` for that group's own breaker.
#[derive(serde::Deserialize)]
pub(crate) struct BreakerQuery {
    open: Option<String>,
    close: Option<bool>,
    group: Option<String>,
}

/// `POST /api/queues/{queue}/breaker?open=10m` (or `?close=true`; with
/// `&group=KEY`, that group's breaker): opens or closes the circuit
/// breaker for every pool; answers as the limits do.
pub(crate) async fn set_breaker(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<BreakerQuery>, QueryRejection>,
) -> Result<Json<LimitsView>, ApiError> {
    let queue = queue_param(path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let action = match (q.open.as_deref(), q.close) {
        (Some(d), None | Some(false)) => jobs_core::BreakerAction::Open(
            humantime::parse_duration(d)
                .map_err(|_| ApiError::BadRequest(format!("`open` must be a duration such as `10m`; got `{d}`")))?,
        ),
        (None, Some(true)) => jobs_core::BreakerAction::Close,
        _ => return Err(ApiError::BadRequest("give `open=<duration>` or `close=true`".into())),
    };
    match q.group.as_deref() {
        Some(group) => state.queue().set_group_breaker(&queue, group, action).await?,
        None => state.queue().set_breaker(&queue, action).await?,
    }
    state.invalidate().await;
    tracing::info!(queue = %queue, group = ?q.group, ?action, "breaker changed from the dashboard");
    Ok(Json(super::read::limits_of(&state, queue).await?))
}

/// `POST /api/queues/{queue}/resume`: lets workers take the queue again.
pub(crate) async fn resume_queue(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PausedView>, ApiError> {
    let queue = queue_param(path)?;
    state.queue().resume(&queue).await?;
    state.invalidate().await;
    tracing::info!(queue = %queue, "queue resumed from the dashboard");
    Ok(Json(PausedView { kind: "queue", name: queue, paused: false }))
}

fn schedule_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name).map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `POST /api/schedules/{name}/pause`: holds a schedule's ticks.
pub(crate) async fn pause_schedule(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PausedView>, ApiError> {
    let name = schedule_param(path)?;
    state.scheduler().pause(&name).await?;
    state.invalidate().await;
    tracing::info!(schedule = %name, "schedule paused from the dashboard");
    Ok(Json(PausedView { kind: "schedule", name, paused: true }))
}

/// `POST /api/schedules/{name}/resume`: lets a schedule tick again (ticks
/// missed while paused are skipped).
pub(crate) async fn resume_schedule(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PausedView>, ApiError> {
    let name = schedule_param(path)?;
    state.scheduler().resume(&name).await?;
    state.invalidate().await;
    tracing::info!(schedule = %name, "schedule resumed from the dashboard");
    Ok(Json(PausedView { kind: "schedule", name, paused: false }))
}

/// `POST /api/schedules/{name}/run`: enqueues the schedule's job now, once,
/// built as its ticks build theirs (a paused schedule too); its ticks stay
/// as they are. 404 when there is no such schedule.
pub(crate) async fn run_schedule(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TriggeredView>, ApiError> {
    let name = schedule_param(path)?;
    let job = state.scheduler().trigger(&name).await?;
    state.invalidate().await;
    tracing::info!(schedule = %name, job = %job, "schedule run now from the dashboard");
    Ok(Json(TriggeredView { kind: "schedule", name, job }))
}

/// `POST /api/schedules/{name}/remove`: deletes a schedule (404 when there
/// is none). The dashboard offers it for orphaned schedules, whose job no
/// live pool runs; the API takes any.
pub(crate) async fn remove_schedule(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RemovedView>, ApiError> {
    let name = schedule_param(path)?;
    if !state.scheduler().remove(&name).await? {
        return Err(jobs_core::Error::ScheduleNotFound(name).into());
    }
    state.invalidate().await;
    tracing::info!(schedule = %name, "schedule removed from the dashboard");
    Ok(Json(RemovedView { kind: "schedule", name, removed: true }))
}
