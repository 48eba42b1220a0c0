//! The JSON bodies of the API's reads, built from the port's types: times as
//! RFC 3339 strings (UTC, milliseconds), enums as lowercase names.

use std::collections::BTreeMap;
use std::time::SystemTime;

use jobs_core::{
    AttemptInfo, CatchUp, Counts, JobInfo, JobStatus, MinuteCounts, Overlap, PoolInfo, Priority, QueueStats,
    ScheduleInfo,
};
use serde::Serialize;

/// The longest job error the API shows, in characters (attempt errors,
/// `last_error`, the timeline): errors are stored whole, and a handler's
/// error can be as large as the data it failed on.
pub(crate) const MAX_SHOWN_ERROR: usize = 8 * 1024;

/// The largest payload or result the API shows whole, in bytes of JSON;
/// past it, the first part is shown as a string and `payload_truncated` (or
/// `result_truncated`) is true.
pub(crate) const MAX_SHOWN_JSON: usize = 64 * 1024;

/// `s` cut to `max` characters, saying how long it was when cut.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}… (cut: {} bytes in all)", &s[..at], s.len()),
    }
}

/// A JSON value, or its first [`MAX_SHOWN_JSON`] bytes of text when larger;
/// `true` when cut.
fn bounded_json(v: serde_json::Value) -> (serde_json::Value, bool) {
    let text = v.to_string();
    if text.len() <= MAX_SHOWN_JSON {
        return (v, false);
    }
    (serde_json::Value::String(bounded(&text, MAX_SHOWN_JSON)), true)
}

/// A time as the API writes it.
pub(crate) fn ts(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ts_opt(t: Option<SystemTime>) -> Option<String> {
    t.map(ts)
}

/// `GET /api/auth`.
#[derive(Serialize)]
pub(crate) struct AuthView {
    pub(crate) actions_enabled: bool,
    /// Whether the request's `Authorization` holds the token (absent when
    /// the request sent none or actions are off).
    pub(crate) token_valid: Option<bool>,
}

/// `GET /api/stats`.
#[derive(Serialize)]
pub(crate) struct StatsView {
    pub(crate) queues: Vec<QueueView>,
    pub(crate) totals: Counts,
    pub(crate) generated_at: String,
}

/// One queue in `/api/stats`.
#[derive(Serialize)]
pub(crate) struct QueueView {
    name: String,
    paused: bool,
    /// Partitions the queue is spread over, when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<u16>,
    #[serde(flatten)]
    counts: Counts,
    by_priority: BTreeMap<&'static str, Counts>,
}

impl StatsView {
    pub(crate) fn new(stats: &QueueStats) -> Self {
        let mut totals = Counts::default();
        let queues = stats
            .queues
            .iter()
            .map(|(name, q)| {
                let counts = q.total();
                totals.add(&counts);
                QueueView {
                    name: name.clone(),
                    paused: q.paused,
                    partitions: (q.partitions > 1).then_some(q.partitions),
                    counts,
                    by_priority: q.by_priority.iter().map(|(p, c)| (p.as_str(), *c)).collect(),
                }
            })
            .collect();
        StatsView { queues, totals, generated_at: ts(SystemTime::now()) }
    }
}

/// One job in a list.
#[derive(Serialize)]
pub(crate) struct JobSummary {
    id: String,
    name: String,
    queue: String,
    priority: Priority,
    status: JobStatus,
    attempts: u32,
    max_retries: Option<u32>,
    /// Times it snoozed (not attempts).
    snoozes: u32,
    /// When it expires if not started by then.
    expires_at: Option<String>,
    /// The id its producer chose (`JobOptions::id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_id: Option<String>,
    /// Its key (`JobOptions::key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    enqueued_at: String,
    run_at: Option<String>,
    finished_at: Option<String>,
    last_error: Option<String>,
}

impl From<&JobInfo> for JobSummary {
    fn from(j: &JobInfo) -> Self {
        JobSummary {
            id: j.id.to_string(),
            name: j.name.clone(),
            queue: j.queue.clone(),
            priority: j.priority,
            status: j.status,
            attempts: j.attempts,
            max_retries: j.max_retries,
            snoozes: j.snoozes,
            expires_at: ts_opt(j.expires_at),
            caller_id: j.caller_id.as_deref().map(|c| bounded(c, MAX_SHOWN_ERROR)),
            key: j.key.as_deref().map(|k| bounded(k, MAX_SHOWN_ERROR)),
            enqueued_at: ts(j.enqueued_at),
            run_at: ts_opt(j.run_at),
            finished_at: ts_opt(j.finished_at),
            last_error: j.last_error().map(|e| bounded(e, MAX_SHOWN_ERROR)),
        }
    }
}

/// `GET /api/queues/{queue}/jobs`.
#[derive(Serialize)]
pub(crate) struct JobsPage {
    pub(crate) queue: String,
    pub(crate) status: JobStatus,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    /// Whether a next page exists.
    pub(crate) has_more: bool,
    /// Jobs in this state in all (from the cached stats; absent for
    /// succeeded and cancelled, which the stats do not count).
    pub(crate) total: Option<u64>,
    pub(crate) jobs: Vec<JobSummary>,
}

/// `GET /api/jobs/{id}`.
#[derive(Serialize)]
pub(crate) struct JobView {
    #[serde(flatten)]
    summary: JobSummary,
    /// The payload, or its first part as a string when it is larger than
    /// [`MAX_SHOWN_JSON`].
    payload: serde_json::Value,
    payload_truncated: bool,
    result: Option<serde_json::Value>,
    result_truncated: bool,
    attempt_log: Vec<AttemptView>,
    timeline: Vec<Event>,
    /// The last progress an attempt reported; `null` when none did.
    progress: Option<ProgressView>,
    /// For a running job: whether its handler is known to have started
    /// (`JobInfo::handler_started`); `null` for a job not running.
    handler_started: Option<bool>,
}

/// A job's last reported progress.
#[derive(Serialize)]
struct ProgressView {
    /// From 0 to 1.
    fraction: f32,
    note: String,
    at: String,
    attempt: u32,
}

/// One attempt of a job.
#[derive(Serialize)]
struct AttemptView {
    attempt: u32,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    error: Option<String>,
    /// Set when the run snoozed: how long it asked to wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    snoozed_ms: Option<u64>,
}

impl From<&AttemptInfo> for AttemptView {
    fn from(a: &AttemptInfo) -> Self {
        let duration_ms = a
            .finished_at
            .and_then(|f| f.duration_since(a.started_at).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        AttemptView {
            attempt: a.attempt,
            started_at: ts(a.started_at),
            finished_at: ts_opt(a.finished_at),
            duration_ms,
            error: a.error.as_deref().map(|e| bounded(e, MAX_SHOWN_ERROR)),
            snoozed_ms: a.snoozed_for.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// One step of a job's life, for its timeline.
#[derive(Serialize)]
struct Event {
    at: String,
    /// `enqueued`, `started`, `failed`, `snoozed`, `succeeded`, `retried`, `due`, `dead`, `expired`
    /// or `cancelled`.
    kind: &'static str,
    text: String,
    #[serde(skip)]
    sort: SystemTime,
}

/// The job as the API shows it: its `#[redact]` payload fields are replaced
/// here, where every job detail is built, so no answer carries their values.
impl From<JobInfo> for JobView {
    fn from(j: JobInfo) -> Self {
        let j = j.redacted();
        let mut timeline = Vec::new();
        let mut event = |at: SystemTime, kind: &'static str, text: String| {
            timeline.push(Event { at: ts(at), kind, text, sort: at });
        };
        event(j.enqueued_at, "enqueued", format!("enqueued on `{}` at priority {}", j.queue, j.priority.as_str()));
        let mut previous = 0;
        for a in &j.attempt_log {
            // Attempts count up; only a retry from the dead-letter set resets them.
            if a.attempt <= previous {
                event(a.started_at, "retried", "retried from the dead-letter set: attempts reset".to_owned());
            }
            previous = a.attempt;
            event(a.started_at, "started", format!("attempt {} started", a.attempt));
            if let (Some(end), Some(d)) = (a.finished_at, a.snoozed_for) {
                let why = a.error.as_deref().map(|e| bounded(e, MAX_SHOWN_ERROR)).unwrap_or_default();
                let text = format!("snoozed for {}: {why} (not an attempt)", humantime::format_duration(d));
                event(end, "snoozed", text);
            } else if let Some(end) = a.finished_at {
                match &a.error {
                    Some(e) => {
                        event(end, "failed", format!("attempt {} failed: {}", a.attempt, bounded(e, MAX_SHOWN_ERROR)))
                    }
                    None => event(end, "succeeded", format!("attempt {} succeeded", a.attempt)),
                }
            }
        }
        if let (Some(at), JobStatus::Scheduled | JobStatus::Retrying) = (j.run_at, j.status) {
            event(at, "due", format!("due to run ({})", j.status));
        }
        match (j.finished_at, j.status) {
            (Some(at), JobStatus::Dead) => event(at, "dead", "moved to the dead-letter set".to_owned()),
            (Some(at), JobStatus::Cancelled) => event(at, "cancelled", "cancelled".to_owned()),
            (Some(at), JobStatus::Expired) => {
                event(at, "expired", "expired before it started: it will not run".to_owned())
            }
            _ => {}
        }
        // Stable: events at the same instant keep their order (start before end).
        timeline.sort_by_key(|e| e.sort);
        let summary = JobSummary::from(&j);
        let progress = j.progress.as_ref().map(|p| ProgressView {
            fraction: p.fraction,
            note: p.note.clone(),
            at: ts(p.at),
            attempt: p.attempt,
        });
        let attempt_log = j.attempt_log.iter().map(AttemptView::from).collect();
        let (payload, payload_truncated) = bounded_json(j.payload);
        let (result, result_truncated) = match j.result.map(bounded_json) {
            Some((r, cut)) => (Some(r), cut),
            None => (None, false),
        };
        let handler_started = (j.status == JobStatus::Running).then_some(j.handler_started);
        JobView {
            summary,
            attempt_log,
            payload,
            payload_truncated,
            result,
            result_truncated,
            timeline,
            progress,
            handler_started,
        }
    }
}

/// `GET /api/throughput` and `GET /api/queues/{queue}/throughput`.
#[derive(Serialize)]
pub(crate) struct ThroughputView {
    /// The queue, or absent for every queue added up.
    pub(crate) queue: Option<String>,
    /// Oldest first, the current minute last.
    pub(crate) minutes: Vec<MinuteCounts>,
}

/// `GET /api/workers`.
#[derive(Serialize)]
pub(crate) struct WorkersView {
    pub(crate) pools: Vec<PoolView>,
    pub(crate) workers: usize,
    pub(crate) busy: usize,
}

/// One live pool.
#[derive(Serialize)]
pub(crate) struct PoolView {
    id: String,
    host: String,
    pid: u32,
    queues: Vec<String>,
    workers: usize,
    running: usize,
    running_jobs: Vec<String>,
    ahead: usize,
    started_at: String,
    last_seen: String,
}

impl From<PoolInfo> for PoolView {
    fn from(w: PoolInfo) -> Self {
        PoolView {
            id: w.id,
            host: w.host,
            pid: w.pid,
            queues: w.queues,
            workers: w.workers,
            running: w.running,
            running_jobs: w.running_jobs.iter().map(ToString::to_string).collect(),
            ahead: w.ahead,
            started_at: ts(w.started_at),
            last_seen: ts(w.last_seen),
        }
    }
}

/// `GET /api/schedules`.
#[derive(Serialize)]
pub(crate) struct SchedulesView {
    pub(crate) schedules: Vec<ScheduleView>,
}

/// One schedule.
#[derive(Serialize)]
pub(crate) struct ScheduleView {
    name: String,
    /// Empty for an interval schedule.
    cron: String,
    /// The interval (humantime, e.g. `1m 30s`) of an interval schedule.
    every: Option<String>,
    timezone: String,
    job_name: String,
    queue: String,
    catch_up: CatchUp,
    paused: bool,
    /// Live pools exist and none runs its job: its ticks are skipped until
    /// one does again, or an operator removes it.
    orphaned: bool,
    starts_at: Option<String>,
    ends_at: Option<String>,
    /// Past its end: no tick comes.
    ended: bool,
    /// The most each tick's job is delayed by, at random (humantime).
    jitter: Option<String>,
    /// `allow`, `skip` or `queue`.
    overlap: Overlap,
    /// Dates (`YYYY-MM-DD`) on which no tick fires.
    exclude: Vec<String>,
    /// A tick waiting for the last job to end (overlap `queue`).
    held_tick: Option<String>,
    /// Ticks skipped while the last job had not ended.
    skipped: u64,
    last_skipped: Option<String>,
    next_fire: Option<String>,
    last_run: Option<String>,
    last_job: Option<String>,
}

impl From<ScheduleInfo> for ScheduleView {
    fn from(s: ScheduleInfo) -> Self {
        ScheduleView {
            name: s.name,
            cron: s.cron,
            every: s.every.map(|d| humantime::format_duration(d).to_string()),
            timezone: s.timezone,
            job_name: s.job_name,
            queue: s.queue,
            catch_up: s.catch_up,
            paused: s.paused,
            orphaned: s.orphaned,
            starts_at: ts_opt(s.starts_at),
            ends_at: ts_opt(s.ends_at),
            ended: s.ended,
            jitter: s.jitter.map(|d| humantime::format_duration(d).to_string()),
            overlap: s.overlap,
            exclude: s.exclude,
            held_tick: ts_opt(s.held_tick),
            skipped: s.skipped,
            last_skipped: ts_opt(s.last_skipped),
            next_fire: ts_opt(s.next_fire),
            last_run: ts_opt(s.last_run),
            last_job: s.last_job.map(|j| j.to_string()),
        }
    }
}

/// The answer of an action on one job.
#[derive(Serialize)]
pub(crate) struct JobActionView {
    pub(crate) id: String,
    /// `retried`, `cancelled`, `cancel_requested` or `already_finished`
    /// (`other` for a cancel result newer than this crate).
    pub(crate) outcome: &'static str,
    /// The job's status right after the action.
    pub(crate) status: JobStatus,
}

/// The answer of `POST /api/queues/{queue}/retry-dead`.
#[derive(Serialize)]
pub(crate) struct RetryAllView {
    pub(crate) queue: String,
    pub(crate) retried: u64,
    pub(crate) failed: u64,
    /// The first few failures, one sentence each.
    pub(crate) errors: Vec<String>,
}

/// The answer of `POST /api/queues/{queue}/purge-dead`.
#[derive(Serialize)]
pub(crate) struct PurgeView {
    pub(crate) queue: String,
    pub(crate) purged: u64,
}

/// A queue's busiest groups: `GET /api/queues/{queue}/groups`.
#[derive(Serialize)]
pub(crate) struct GroupsView {
    pub(crate) queue: String,
    pub(crate) groups: Vec<jobs_core::GroupInfo>,
}

/// A queue's limits: `GET` and `POST /api/queues/{queue}/limits`.
#[derive(Serialize)]
pub(crate) struct LimitsView {
    pub(crate) queue: String,
    /// Jobs of the queue running at once, across every pool (`null`: no
    /// bound).
    pub(crate) max_running: Option<u64>,
    /// Pending and scheduled jobs past which enqueues are refused.
    pub(crate) max_jobs: Option<u64>,
    /// Starts per window, across every pool (`"100/1m"`; `null`: none).
    pub(crate) rate: Option<jobs_core::Rate>,
    /// Jobs of one group running at once, for every group (`null`: each
    /// job's own bound).
    pub(crate) group_concurrency: Option<u32>,
    /// Starts of one group per window, for every group (`null`: each job's
    /// own rate).
    pub(crate) group_rate: Option<jobs_core::Rate>,
    /// The priorities it accepts (empty: all).
    pub(crate) priority_levels: Vec<jobs_core::Priority>,
    /// Times jobs that could start waited for a concurrency bound.
    pub(crate) limited: u64,
    /// Times jobs waited for a rate.
    pub(crate) throttled: u64,
    /// Jobs an enqueue leased to an idle pool in its own step.
    pub(crate) handed: u64,
    /// The circuit breaker configured (`"5/1m:30s"`; `null`: none).
    pub(crate) breaker: Option<jobs_core::Breaker>,
    /// Where the breaker stands (`state`: `closed`, `open`, `probing`;
    /// `until`, `job`, `recent_failures`, `opened`), and the groups' open
    /// ones (`groups_open`, `groups_opened`, `groups`).
    pub(crate) breaker_state: jobs_core::BreakerInfo,
    /// The breaker each group has on its own (`null`: none).
    pub(crate) group_breaker: Option<jobs_core::Breaker>,
    /// The queue's own retention (`succeeded`, `succeeded_max`, `dead_age`,
    /// `dead_max`; a key left out: the backend's).
    pub(crate) retention: jobs_core::QueueRetention,
    /// Whether the jobs its retention deletes are archived first.
    pub(crate) archive: bool,
}

impl LimitsView {
    /// The policy, with the held-back counters of `stats` (zero when the
    /// queue is not in them).
    pub(crate) fn of(
        queue: String,
        p: jobs_core::QueuePolicy,
        stats: &jobs_core::QueueStats,
        breaker_state: jobs_core::BreakerInfo,
    ) -> Self {
        let counts = stats.queues.get(&queue).cloned().unwrap_or_default();
        LimitsView {
            breaker: p.breaker,
            group_breaker: p.group_breaker,
            breaker_state,
            limited: counts.limited,
            throttled: counts.throttled,
            handed: counts.handed,
            queue,
            max_running: p.max_running,
            max_jobs: p.max_jobs,
            rate: p.rate,
            group_concurrency: p.group_concurrency,
            group_rate: p.group_rate,
            priority_levels: p.priority_levels,
            retention: p.retention,
            archive: p.archive,
        }
    }
}

/// The answer of pausing or resuming a queue or a schedule.
#[derive(Serialize)]
pub(crate) struct PausedView {
    /// `queue` or `schedule`.
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) paused: bool,
}

/// The answer of `POST /api/schedules/{name}/run`: the job it enqueued.
#[derive(Serialize)]
pub(crate) struct TriggeredView {
    /// Always `schedule`.
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    /// The id of the job enqueued now.
    pub(crate) job: jobs_core::JobId,
}

/// The answer of `POST /api/schedules/{name}/remove`.
#[derive(Serialize)]
pub(crate) struct RemovedView {
    /// Always `schedule` (the shape leaves room for other kinds).
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) removed: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn a_partitioned_queue_shows_its_partitions() {
        let mut stats = QueueStats::default();
        stats.queues.insert("bulk".into(), jobs_core::QueueCounts { partitions: 3, ..Default::default() });
        stats.queues.insert("mail".into(), jobs_core::QueueCounts { partitions: 1, ..Default::default() });
        let view = serde_json::to_value(StatsView::new(&stats)).unwrap();
        assert_eq!(view["queues"][0]["partitions"], 3);
        assert!(view["queues"][1].get("partitions").is_none(), "one partition is not written: {view}");
    }
}
