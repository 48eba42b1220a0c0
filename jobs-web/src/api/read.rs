//! The API's reads (`GET`), open to everyone who can reach the server
//! unless the state requires the admin token for them ([`require_reader`]).
//! Polled reads (stats, pools, schedules, throughput) come through the
//! state's short caches; lists read one page, never the whole queue.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jobs_core::{JobStatus, MinuteCounts};
use serde::Deserialize;

use super::views::{
    AuthView, GroupsView, JobSummary, JobView, JobsPage, LimitsView, PoolView, ScheduleView, SchedulesView, StatsView,
    ThroughputView, WorkersView,
};
use super::{job_param, query_param, queue_param, ApiError};
use crate::state::{TokenCheck, WebState, Window};

/// Jobs per page when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
const MAX_LIMIT: usize = 500;
/// The largest `offset` accepted. A backend reaches an offset by reading
/// past the jobs before it (records and payloads, uncached), so capping the
/// offset caps what one request can make it read: the jobs of the listed
/// state up to `MAX_OFFSET + MAX_LIMIT + 1`, plus the entries of other
/// states it passes where it filters a shared list (succeeded and
/// cancelled jobs).
const MAX_OFFSET: usize = 10_000;
/// Minutes of throughput when the request names none: the last hour.
const DEFAULT_MINUTES: usize = 60;
/// The most minutes of throughput accepted: a day, the largest cached
/// [`Window`].
const MAX_MINUTES: usize = Window::MINUTES[Window::MINUTES.len() - 1];

/// Lets a read through when reads are open, or when it carries the admin
/// token ([`WebState::require_token_for_reads`]); 401 without the right
/// token, 403 when no token is configured to present.
pub(crate) async fn require_reader(State(state): State<WebState>, req: Request, next: Next) -> Response {
    if !state.inner.reads_need_token {
        return next.run(req).await;
    }
    let sent = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match state.check_token(sent) {
        TokenCheck::Valid => next.run(req).await,
        TokenCheck::Wrong => ApiError::Unauthorized.into_response(),
        TokenCheck::ReadOnly => ApiError::ReadsClosed.into_response(),
    }
}

/// `GET /api/auth`: whether actions are possible, and whether the
/// `Authorization` header sent (if any) holds the token.
pub(crate) async fn auth(State(state): State<WebState>, headers: HeaderMap) -> Json<AuthView> {
    let sent = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default());
    let token_valid = match (sent, state.check_token(sent)) {
        (None, _) | (_, TokenCheck::ReadOnly) => None,
        (Some(_), check) => Some(check == TokenCheck::Valid),
    };
    Json(AuthView { actions_enabled: state.actions_enabled(), token_valid })
}

/// `GET /api/stats`: every queue's counts per priority.
pub(crate) async fn stats(State(state): State<WebState>) -> Result<Json<StatsView>, ApiError> {
    Ok(Json(StatsView::new(&state.stats().await?)))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

fn parse_status(s: &str) -> Result<JobStatus, ApiError> {
    const ALL: [JobStatus; 8] = [
        JobStatus::Pending,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Retrying,
        JobStatus::Dead,
        JobStatus::Succeeded,
        JobStatus::Cancelled,
        JobStatus::Expired,
    ];
    ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|st| st.as_str()).collect();
        ApiError::BadRequest(format!("unknown status `{s}`: use one of {}", names.join(", ")))
    })
}

/// `GET /api/queues/{queue}/jobs?status=pending&offset=0&limit=50`: one page
/// of a queue's jobs in one state.
pub(crate) async fn list_jobs(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobsPage>, ApiError> {
    let queue = queue_param(path)?;
    let q = query_param(query)?;
    let status = parse_status(q.status.as_deref().unwrap_or("pending"))?;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}, not {limit}")));
    }
    if offset > MAX_OFFSET {
        return Err(ApiError::BadRequest(format!(
            "offset must be at most {MAX_OFFSET}, not {offset}: pages deeper than that are not served"
        )));
    }
    // One more than asked, to know whether a next page exists.
    let mut jobs = state.queue().list_jobs(&queue, status, offset, limit + 1).await?;
    let has_more = jobs.len() > limit;
    jobs.truncate(limit);
    let total = match status {
        JobStatus::Succeeded | JobStatus::Cancelled | JobStatus::Expired => None,
        _ => state.stats().await.ok().map(|s| {
            let c = s.queue(&queue);
            match status {
                JobStatus::Pending => c.pending,
                JobStatus::Scheduled => c.scheduled,
                JobStatus::Running => c.running,
                JobStatus::Retrying => c.retrying,
                _ => c.dead,
            }
        }),
    };
    Ok(Json(JobsPage {
        queue,
        status,
        offset,
        limit,
        has_more,
        total,
        jobs: jobs.iter().map(JobSummary::from).collect(),
    }))
}

/// `GET /api/jobs/{id}`: everything about one job.
pub(crate) async fn job(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_param(path)?;
    match state.queue().job(&id).await? {
        Some(info) => Ok(Json(JobView::from(info))),
        None => Err(ApiError::NotFound(format!("no job `{id}`: unknown, or removed after its retention period"))),
    }
}

/// The most groups `GET /api/queues/{queue}/groups` lists.
const MAX_GROUPS: usize = 100;

#[derive(Deserialize)]
pub(crate) struct GroupsQuery {
    limit: Option<usize>,
}

/// `GET /api/queues/{queue}/groups?limit=20`: the busiest groups, most
/// pending first (at most 100).
pub(crate) async fn groups(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GroupsQuery>, QueryRejection>,
) -> Result<Json<GroupsView>, ApiError> {
    let queue = queue_param(path)?;
    let limit = query_param(query)?.limit.unwrap_or(20);
    if !(1..=MAX_GROUPS).contains(&limit) {
        return Err(ApiError::BadRequest(format!("`limit` must be from 1 to {MAX_GROUPS}")));
    }
    let groups = state.queue().groups(&queue, limit).await?;
    Ok(Json(GroupsView { queue, groups }))
}

#[derive(Deserialize)]
pub(crate) struct MinutesQuery {
    minutes: Option<usize>,
}

/// The minutes asked for and the cached window that covers them.
fn minutes(query: Result<Query<MinutesQuery>, QueryRejection>) -> Result<(usize, Window), ApiError> {
    let m = query_param(query)?.minutes.unwrap_or(DEFAULT_MINUTES);
    match Window::covering(m) {
        Some(window) => Ok((m, window)),
        None => Err(ApiError::BadRequest(format!("minutes must be between 1 and {MAX_MINUTES}, not {m}"))),
    }
}

/// The latest `n` of `minutes` (oldest first).
fn latest(minutes: Vec<MinuteCounts>, n: usize) -> Vec<MinuteCounts> {
    let skip = minutes.len().saturating_sub(n);
    minutes.into_iter().skip(skip).collect()
}

/// `GET /api/queues/{queue}/throughput?minutes=60`: attempts per minute.
pub(crate) async fn throughput(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<MinutesQuery>, QueryRejection>,
) -> Result<Json<ThroughputView>, ApiError> {
    let queue = queue_param(path)?;
    let (n, window) = minutes(query)?;
    let minutes = latest(state.throughput(&queue, window).await?, n);
    Ok(Json(ThroughputView { queue: Some(queue), minutes }))
}

/// `GET /api/queues/{queue}/limits`: the queue's limits as the backend
/// holds them.
pub(crate) async fn limits(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<LimitsView>, ApiError> {
    let queue = queue_param(path)?;
    Ok(Json(limits_of(&state, queue).await?))
}

/// A queue's limits, held-back counts and breaker, as the backend holds
/// them now (what the limits endpoints answer).
pub(crate) async fn limits_of(state: &WebState, queue: String) -> Result<LimitsView, ApiError> {
    let policy = state.queue().policy(&queue).await?;
    let stats = state.stats().await?;
    let breaker = state.queue().breaker(&queue).await?;
    Ok(LimitsView::of(queue, policy, &stats, breaker))
}

/// `GET /api/throughput?minutes=60`: attempts per minute, every queue added
/// up (one cached read per queue: the port has no call for all queues).
pub(crate) async fn throughput_all(
    State(state): State<WebState>,
    query: Result<Query<MinutesQuery>, QueryRejection>,
) -> Result<Json<ThroughputView>, ApiError> {
    let (n, window) = minutes(query)?;
    let stats = state.stats().await?;
    let mut sum: BTreeMap<u64, MinuteCounts> = BTreeMap::new();
    for queue in stats.queues.keys() {
        for m in state.known_throughput(queue, window).await? {
            let e = sum.entry(m.minute).or_insert(MinuteCounts { minute: m.minute, ..Default::default() });
            e.processed += m.processed;
            e.failed += m.failed;
        }
    }
    if sum.is_empty() {
        // No queue yet: an empty hour, so the chart still has its axis.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let current = now / 60 * 60;
        for back in 0..n as u64 {
            let minute = current.saturating_sub(back * 60);
            sum.insert(minute, MinuteCounts { minute, ..Default::default() });
        }
    }
    // Windows are longer than asked, and cached reads taken across a minute
    // boundary may reach one minute further: keep the latest `n`.
    Ok(Json(ThroughputView { queue: None, minutes: latest(sum.into_values().collect(), n) }))
}

/// `GET /api/workers`: the live pools.
pub(crate) async fn workers(State(state): State<WebState>) -> Result<Json<WorkersView>, ApiError> {
    let pools = state.workers().await?;
    Ok(Json(WorkersView {
        workers: pools.iter().map(|p| p.workers).sum(),
        busy: pools.iter().map(|p| p.running).sum(),
        pools: pools.into_iter().map(PoolView::from).collect(),
    }))
}

/// `GET /api/schedules`: every schedule with its next fire and last run.
pub(crate) async fn schedules(State(state): State<WebState>) -> Result<Json<SchedulesView>, ApiError> {
    let list = state.schedules().await?;
    Ok(Json(SchedulesView { schedules: list.into_iter().map(ScheduleView::from).collect() }))
}
