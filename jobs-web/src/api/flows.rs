//! Workflows and batches: `GET /api/flows`, `GET /api/flows/{id}` (reads)
//! and `POST /api/flows/{id}/cancel` (an action: the admin token, see
//! [`super::actions`]). A backend without a flow store answers 501
//! `unsupported`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use jobs_core::{
    FlowError, FlowInfo, FlowKind, FlowStatus, FlowStore, FlowSummary, JobStatus, MemberInfo, MemberStatus, OnFailure,
};
use serde::{Deserialize, Serialize};

use super::views::ts;
use super::{query_param, ApiError};
use crate::state::WebState;

/// Flows per page when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
const MAX_LIMIT: usize = 500;
/// The largest `offset` accepted (as for job lists: a deeper page is
/// refused rather than read through).
const MAX_OFFSET: usize = 10_000;
/// The most members one `GET /api/flows/{id}` shows (a batch may hold
/// many more); `members_total` says how many there are.
pub(crate) const MAX_MEMBERS: usize = 500;

/// The backend's flow store, or 501 `unsupported`.
fn store(state: &WebState) -> Result<Arc<dyn FlowStore>, ApiError> {
    state.queue().flow_store().ok_or_else(|| jobs_core::Error::from(FlowError::Unsupported).into())
}

/// A flow id from the path, checked.
fn flow_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    jobs_core::validate_flow_id(&id).map_err(jobs_core::Error::from)?;
    Ok(id)
}

fn not_found(id: &str) -> ApiError {
    jobs_core::Error::from(FlowError::NotFound(id.to_owned())).into()
}

/// The stored flow `id`'s state and counts, or 404.
async fn summary_of(store: &dyn FlowStore, id: &str) -> Result<FlowSummary, ApiError> {
    store.flow_summary(id).await?.ok_or_else(|| not_found(id))
}

/// The stored flow `id` as its page shows it, or 404: its first
/// [`MAX_MEMBERS`] members (a batch may hold millions), or a larger
/// workflow whole (its levels need every step).
async fn read(store: &dyn FlowStore, id: &str) -> Result<FlowInfo, ApiError> {
    let page = store.flow_page(id, 0, MAX_MEMBERS).await?.ok_or_else(|| not_found(id))?;
    if page.summary.kind == FlowKind::Batch || page.summary.total <= MAX_MEMBERS as u64 {
        return Ok(page);
    }
    store.flow(id).await?.ok_or_else(|| not_found(id))
}

/// A flow in a list.
#[derive(Serialize)]
pub(crate) struct FlowSummaryView {
    id: String,
    kind: FlowKind,
    status: FlowStatus,
    closed: bool,
    total: u64,
    ended: u64,
    succeeded: u64,
    created_at: String,
    ended_at: Option<String>,
}

impl From<FlowSummary> for FlowSummaryView {
    fn from(s: FlowSummary) -> Self {
        FlowSummaryView {
            id: s.id,
            kind: s.kind,
            status: s.status,
            closed: s.closed,
            total: s.total,
            ended: s.ended,
            succeeded: s.succeeded,
            created_at: ts(s.created_at),
            ended_at: s.ended_at.map(ts),
        }
    }
}

/// `GET /api/flows`.
#[derive(Serialize)]
pub(crate) struct FlowsPage {
    kind: Option<FlowKind>,
    offset: usize,
    limit: usize,
    has_more: bool,
    flows: Vec<FlowSummaryView>,
}

/// A dependency of a step.
#[derive(Serialize)]
struct AfterView {
    step: String,
    on_failure: OnFailure,
}

/// A member or a callback of a flow.
#[derive(Serialize)]
pub(crate) struct MemberView {
    name: String,
    job: String,
    job_name: String,
    status: MemberStatus,
    /// Its dependency level (workflow steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<usize>,
    after: Vec<AfterView>,
    released_at: Option<String>,
    ended_at: Option<String>,
    /// A released callback's job status: a callback's own status stays
    /// `released`, the flow does not follow its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_status: Option<JobStatus>,
}

impl MemberView {
    fn of(m: MemberInfo, level: Option<usize>) -> Self {
        MemberView {
            name: m.name,
            job: m.job.to_string(),
            job_name: m.job_name,
            status: m.status,
            level,
            after: m.after.into_iter().map(|(step, on_failure)| AfterView { step, on_failure }).collect(),
            released_at: m.released_at.map(ts),
            ended_at: m.ended_at.map(ts),
            job_status: None,
        }
    }
}

/// `GET /api/flows/{id}`.
#[derive(Serialize)]
pub(crate) struct FlowView {
    #[serde(flatten)]
    summary: FlowSummaryView,
    /// How many dependency levels a workflow's steps form.
    levels: usize,
    /// Every member, of which `members` holds the first [`MAX_MEMBERS`].
    members_total: usize,
    members: Vec<MemberView>,
    callbacks: Vec<MemberView>,
}

/// `POST /api/flows/{id}/cancel`.
#[derive(Serialize)]
pub(crate) struct FlowActionView {
    id: String,
    kind: FlowKind,
    /// `cancelled`, `already_cancelled` or `already_ended`.
    outcome: &'static str,
    /// Its status after the call: a cancelled flow stays `running` until its
    /// running jobs have stopped.
    status: FlowStatus,
}

#[derive(Deserialize)]
pub(crate) struct FlowsQuery {
    kind: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /api/flows?kind=workflow|batch&offset=0&limit=50`: one page of
/// workflows and batches, newest first.
pub(crate) async fn list(
    State(state): State<WebState>,
    query: Result<Query<FlowsQuery>, QueryRejection>,
) -> Result<Json<FlowsPage>, ApiError> {
    let q = query_param(query)?;
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some("workflow") => Some(FlowKind::Workflow),
        Some("batch") => Some(FlowKind::Batch),
        Some(other) => {
            return Err(ApiError::BadRequest(format!("unknown kind `{other}`: use workflow or batch")));
        }
    };
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
    let mut flows = store(&state)?.flows(kind, offset, limit + 1).await?;
    let has_more = flows.len() > limit;
    flows.truncate(limit);
    Ok(Json(FlowsPage { kind, offset, limit, has_more, flows: flows.into_iter().map(Into::into).collect() }))
}

/// `GET /api/flows/{id}`: a workflow or batch with its first
/// [`MAX_MEMBERS`] members (each with its dependency level) and its
/// callbacks.
pub(crate) async fn show(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FlowView>, ApiError> {
    let id = flow_param(path)?;
    let store = store(&state)?;
    let info = read(&*store, &id).await?;
    let workflow = info.summary.kind == FlowKind::Workflow;
    let levels = info.levels();
    let level_count = if workflow { levels.len() } else { 0 };
    let mut level_of = std::collections::HashMap::new();
    for (l, members) in levels.iter().enumerate() {
        for m in members {
            level_of.insert(m.name.clone(), l);
        }
    }
    let members_total = usize::try_from(info.summary.total).unwrap_or(usize::MAX);
    let members = info
        .members
        .into_iter()
        .take(MAX_MEMBERS)
        .map(|m| {
            let level = if workflow { level_of.get(&m.name).copied() } else { None };
            MemberView::of(m, level)
        })
        .collect();
    let mut callbacks = Vec::with_capacity(info.callbacks.len());
    for c in info.callbacks {
        let job_status = match c.status {
            MemberStatus::Released => store.job(&c.job).await?.map(|j| j.status),
            _ => None,
        };
        callbacks.push(MemberView { job_status, ..MemberView::of(c, None) });
    }
    Ok(Json(FlowView { summary: info.summary.into(), levels: level_count, members_total, members, callbacks }))
}

/// `POST /api/flows/{id}/cancel`: what was not enqueued yet never runs,
/// running jobs are told to stop; the flow ends `cancelled` once they have.
pub(crate) async fn cancel(
    State(state): State<WebState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FlowActionView>, ApiError> {
    let id = flow_param(path)?;
    let store = store(&state)?;
    summary_of(&*store, &id).await?;
    let cancelled = store.cancel_flow(&id).await?;
    let after = summary_of(&*store, &id).await?;
    let outcome = match (cancelled, after.status) {
        (true, _) => "cancelled",
        (false, FlowStatus::Cancelled) => "already_cancelled",
        (false, _) => "already_ended",
    };
    state.invalidate().await;
    tracing::info!(flow = %id, kind = after.kind.as_str(), outcome, "workflow or batch cancelled from the dashboard");
    Ok(Json(FlowActionView { id, kind: after.kind, outcome, status: after.status }))
}
