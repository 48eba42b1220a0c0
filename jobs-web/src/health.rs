//! `/health/jobs`, `/health/queues`, `/health/workers`: their JSON bodies and
//! the checks behind them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use jobs_core::{Counts, PoolInfo, QueueStats};
use serde::Serialize;

use crate::state::WebState;

/// `"healthy"` (HTTP 200) or `"unhealthy"` (HTTP 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Every check passed.
    Healthy,
    /// At least one check failed; `problems` says which.
    Unhealthy,
}

impl Status {
    fn of(problems: &[String]) -> Self {
        if problems.is_empty() {
            Status::Healthy
        } else {
            Status::Unhealthy
        }
    }

    fn code(self) -> StatusCode {
        match self {
            Status::Healthy => StatusCode::OK,
            Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The body of `/health/queues`.
#[derive(Debug, Clone, Serialize)]
pub struct QueuesHealth {
    /// Overall verdict.
    pub status: Status,
    /// One sentence per failed check; empty when healthy.
    pub problems: Vec<String>,
    /// Every queue the backend knows, by name (empty when it is unreachable).
    pub queues: Vec<QueueHealth>,
}

/// One queue in `/health/queues`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueHealth {
    /// Its name.
    pub name: String,
    /// Whether it breaks none of its limits.
    pub healthy: bool,
    /// Whether workers are held off it.
    pub paused: bool,
    /// All priorities added up.
    #[serde(flatten)]
    pub counts: Counts,
    /// Per priority (`critical`, `high`, `normal`, `low`), those present only.
    pub by_priority: BTreeMap<&'static str, Counts>,
}

/// The body of `/health/workers`.
#[derive(Debug, Clone, Serialize)]
pub struct WorkersHealth {
    /// Overall verdict.
    pub status: Status,
    /// One sentence per failed check; empty when healthy.
    pub problems: Vec<String>,
    /// Worker slots of all live pools.
    pub workers: usize,
    /// Slots running a job at the pools' last heartbeats.
    pub busy: usize,
    /// The live pools.
    pub pools: Vec<PoolHealth>,
}

/// One live pool in `/health/workers`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolHealth {
    /// Unique per pool instance.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Its worker slots.
    pub workers: usize,
    /// Jobs running at its last heartbeat.
    pub running: usize,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339, UTC).
    pub last_seen: String,
}

impl From<PoolInfo> for PoolHealth {
    fn from(w: PoolInfo) -> Self {
        PoolHealth {
            id: w.id,
            host: w.host,
            pid: w.pid,
            queues: w.queues,
            workers: w.workers,
            running: w.running,
            started_at: rfc3339(w.started_at),
            last_seen: rfc3339(w.last_seen),
        }
    }
}

/// The body of `/health/jobs`: the whole system at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct JobsHealth {
    /// Overall verdict: the backend is reachable, a pool is alive (when
    /// required) and no queue breaks a limit.
    pub status: Status,
    /// One sentence per failed check; empty when healthy.
    pub problems: Vec<String>,
    /// Whether the backend answered.
    pub backend_reachable: bool,
    /// Live pools.
    pub pools: usize,
    /// Worker slots of all live pools.
    pub workers: usize,
    /// Slots running a job.
    pub busy: usize,
    /// Queues the backend knows.
    pub queues: usize,
    /// Every queue and priority added up (zero when the backend is unreachable).
    pub totals: Counts,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Checks every queue against its limits; returns the per-queue view and
/// the problems.
fn judge_queues(state: &WebState, stats: &QueueStats) -> (Vec<QueueHealth>, Vec<String>) {
    let mut problems = Vec::new();
    let mut queues = Vec::new();
    for (name, q) in &stats.queues {
        let c = q.total();
        let limits = state.inner.thresholds.limits(name);
        let before = problems.len();
        let checks = [
            (limits.pending, c.pending, "jobs pending"),
            (limits.size, c.pending + c.scheduled, "jobs waiting (pending + scheduled)"),
            (limits.dead, c.dead, "dead jobs"),
        ];
        for (limit, count, what) in checks {
            if let Some(limit) = limit.filter(|l| count >= *l) {
                problems.push(format!("queue `{name}`: {count} {what}, at or above its limit of {limit}"));
            }
        }
        queues.push(QueueHealth {
            name: name.clone(),
            healthy: problems.len() == before,
            paused: q.paused,
            counts: c,
            by_priority: q.by_priority.iter().map(|(p, c)| (p.as_str(), *c)).collect(),
        });
    }
    (queues, problems)
}

/// Reads the live pools; the problems when none is alive or the call fails.
async fn judge_workers(state: &WebState) -> (Vec<PoolInfo>, Vec<String>) {
    match state.inner.queue.pools().await {
        Ok(pools) => {
            let problems = if pools.is_empty() && state.inner.thresholds.require_pool {
                vec!["no worker pool is alive (none has reported a heartbeat within its lease)".to_owned()]
            } else {
                Vec::new()
            };
            (pools, problems)
        }
        Err(e) => (Vec::new(), vec![format!("cannot list worker pools: {e}")]),
    }
}

/// `GET /health/queues`.
pub(crate) async fn queues(State(state): State<WebState>) -> (StatusCode, Json<QueuesHealth>) {
    let (queues, problems) = match state.stats().await {
        Ok(stats) => judge_queues(&state, &stats),
        Err(e) => (Vec::new(), vec![format!("backend unreachable: {e}")]),
    };
    let status = Status::of(&problems);
    (status.code(), Json(QueuesHealth { status, problems, queues }))
}

/// `GET /health/workers`.
pub(crate) async fn workers(State(state): State<WebState>) -> (StatusCode, Json<WorkersHealth>) {
    let (pools, problems) = judge_workers(&state).await;
    let status = Status::of(&problems);
    let body = WorkersHealth {
        status,
        problems,
        workers: pools.iter().map(|p| p.workers).sum(),
        busy: pools.iter().map(|p| p.running).sum(),
        pools: pools.into_iter().map(PoolHealth::from).collect(),
    };
    (status.code(), Json(body))
}

/// `GET /health/jobs`.
pub(crate) async fn jobs(State(state): State<WebState>) -> (StatusCode, Json<JobsHealth>) {
    let (stats, mut problems) = match state.stats().await {
        Ok(stats) => {
            let (_, problems) = judge_queues(&state, &stats);
            (Some(stats), problems)
        }
        Err(e) => (None, vec![format!("backend unreachable: {e}")]),
    };
    let (pools, worker_problems) = judge_workers(&state).await;
    problems.extend(worker_problems);
    let mut totals = Counts::default();
    for q in stats.iter().flat_map(|s| s.queues.values()) {
        totals.add(&q.total());
    }
    let status = Status::of(&problems);
    let body = JobsHealth {
        status,
        problems,
        backend_reachable: stats.is_some(),
        pools: pools.len(),
        workers: pools.iter().map(|p| p.workers).sum(),
        busy: pools.iter().map(|p| p.running).sum(),
        queues: stats.as_ref().map_or(0, |s| s.queues.len()),
        totals,
    };
    (status.code(), Json(body))
}
