//! `workflows list|show|cancel` and `batches list|show|cancel`: the
//! backend's flow store, read and acted on.

use std::sync::Arc;
use std::time::SystemTime;

use jobs_core::{
    validate_flow_id, Error, FlowError, FlowInfo, FlowKind, FlowStatus, FlowStore, FlowSummary, JobInfo, JobStatus,
    MemberInfo, MemberStatus, OnFailure, SharedQueue,
};
use serde::Serialize;

use super::print_json;
use crate::error::CliError;
use crate::io::Io;
use crate::table::{Col, Table, WIDTH};
use crate::view::{ago, json_time, printable, time};

/// Flows read per call while `list --status` looks for those it keeps.
const SCAN_PAGE: usize = 500;

/// The most members of a batch `batches show` prints as text (`--json`
/// has them all).
pub(crate) const MAX_MEMBERS_SHOWN: usize = 500;

/// The backend's flow store, or the error saying it has none.
fn store(q: &SharedQueue) -> Result<Arc<dyn FlowStore>, CliError> {
    q.flow_store().ok_or_else(|| Error::from(FlowError::Unsupported).into())
}

/// An id from the command line, checked: a malformed one is a usage error.
fn checked_id(id: &str) -> Result<(), CliError> {
    validate_flow_id(id).map_err(|e| CliError::Usage(e.to_string()))
}

/// The flow `id`, which must be of `kind`.
async fn read(store: &dyn FlowStore, kind: FlowKind, id: &str) -> Result<FlowInfo, CliError> {
    checked_id(id)?;
    let info = store.flow(id).await?.ok_or_else(|| Error::from(FlowError::NotFound(id.to_owned())))?;
    if info.summary.kind != kind {
        let other = info.summary.kind;
        return Err(CliError::Failed(format!(
            "`{id}` is a {}, not a {} (`jobs {} show {id}` shows it)",
            other.as_str(),
            kind.as_str(),
            plural(other)
        )));
    }
    Ok(info)
}

/// The command's plural noun: `workflows`, `batches`.
fn plural(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::Workflow => "workflows",
        FlowKind::Batch => "batches",
    }
}

/// A flow as `--json` shows it (times as RFC 3339 strings).
#[derive(Serialize)]
struct SummaryJson<'a> {
    id: &'a str,
    kind: FlowKind,
    status: FlowStatus,
    closed: bool,
    total: u64,
    ended: u64,
    succeeded: u64,
    created_at: String,
    ended_at: Option<String>,
}

impl<'a> SummaryJson<'a> {
    fn of(s: &'a FlowSummary) -> Self {
        SummaryJson {
            id: &s.id,
            kind: s.kind,
            status: s.status,
            closed: s.closed,
            total: s.total,
            ended: s.ended,
            succeeded: s.succeeded,
            created_at: json_time(s.created_at),
            ended_at: s.ended_at.map(json_time),
        }
    }
}

/// One dependency of a member, as `--json` shows it.
#[derive(Serialize)]
struct AfterJson<'a> {
    step: &'a str,
    on_failure: OnFailure,
}

/// A member (or callback), as `--json` shows it.
#[derive(Serialize)]
struct MemberJson<'a> {
    name: &'a str,
    job: String,
    job_name: &'a str,
    status: MemberStatus,
    /// Its dependency level (workflow steps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<usize>,
    after: Vec<AfterJson<'a>>,
    released_at: Option<String>,
    ended_at: Option<String>,
    /// A released callback's job status (callbacks' own status stays
    /// `released`: the flow does not follow their end).
    #[serde(skip_serializing_if = "Option::is_none")]
    job_status: Option<JobStatus>,
}

impl<'a> MemberJson<'a> {
    fn of(m: &'a MemberInfo, level: Option<usize>) -> Self {
        MemberJson {
            name: &m.name,
            job: m.job.to_string(),
            job_name: &m.job_name,
            status: m.status,
            level,
            after: m.after.iter().map(|(step, on_failure)| AfterJson { step, on_failure: *on_failure }).collect(),
            released_at: m.released_at.map(json_time),
            ended_at: m.ended_at.map(json_time),
            job_status: None,
        }
    }
}

/// `workflows list` / `batches list`: newest first, a page at a time.
pub(super) async fn list(
    q: &SharedQueue,
    kind: FlowKind,
    status: Option<FlowStatus>,
    offset: usize,
    limit: usize,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let store = store(q)?;
    let (flows, has_more) = match status {
        None => {
            // One more than asked, to know whether more follow.
            let mut flows = store.flows(Some(kind), offset, limit + 1).await?;
            let more = flows.len() > limit;
            flows.truncate(limit);
            (flows, more)
        }
        Some(status) => scan(&*store, kind, status, offset, limit).await?,
    };
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            kind: FlowKind,
            status: Option<FlowStatus>,
            offset: usize,
            limit: usize,
            has_more: bool,
            flows: Vec<SummaryJson<'a>>,
        }
        let flows = flows.iter().map(SummaryJson::of).collect();
        return print_json(io, &Doc { kind, status, offset, limit, has_more, flows });
    }
    if flows.is_empty() {
        let what = plural(kind);
        match (status, offset) {
            (Some(s), 0) => writeln!(io.out, "no {what} are {}", s.as_str())?,
            (None, 0) => writeln!(io.out, "no {what}")?,
            _ => writeln!(io.out, "no {what} past the first {offset}")?,
        }
        return Ok(());
    }
    let now = SystemTime::now();
    let mut t = Table::new(&[
        ("ID", Col::Shrink),
        ("STATUS", Col::Keep),
        ("ENDED/TOTAL", Col::Num),
        ("OK", Col::Num),
        ("CREATED", Col::Keep),
        ("FINISHED", Col::Keep),
    ]);
    for f in &flows {
        t.row(vec![
            f.id.clone(),
            status_text(f),
            format!("{}/{}", f.ended, f.total),
            f.succeeded.to_string(),
            ago(f.created_at, now),
            f.ended_at.map(|e| ago(e, now)).unwrap_or_else(|| "-".into()),
        ]);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    if has_more {
        writeln!(io.err, "more {} follow: --offset {} shows the next ones", plural(kind), offset + flows.len())?;
    }
    Ok(())
}

/// `running (open)` for a batch that takes more jobs, else the status.
fn status_text(f: &FlowSummary) -> String {
    if f.kind == FlowKind::Batch && !f.closed && !f.status.is_ended() {
        format!("{} (open)", f.status.as_str())
    } else {
        f.status.as_str().to_owned()
    }
}

/// The flows of `kind` in `status`, past the first `offset` of them: the
/// store lists by kind only, so this reads pages until it has `limit` (and
/// one more, to know whether more follow) or the list ends.
async fn scan(
    store: &dyn FlowStore,
    kind: FlowKind,
    status: FlowStatus,
    offset: usize,
    limit: usize,
) -> Result<(Vec<FlowSummary>, bool), CliError> {
    let (mut kept, mut skipped, mut at) = (Vec::new(), 0, 0);
    loop {
        let page = store.flows(Some(kind), at, SCAN_PAGE).await?;
        let read = page.len();
        at += read;
        for f in page.into_iter().filter(|f| f.status == status) {
            if skipped < offset {
                skipped += 1;
            } else if kept.len() == limit {
                return Ok((kept, true));
            } else {
                kept.push(f);
            }
        }
        if read < SCAN_PAGE {
            return Ok((kept, false));
        }
    }
}

/// `workflows show ID` / `batches show ID`.
pub(super) async fn show(
    q: &SharedQueue,
    kind: FlowKind,
    id: &str,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let store = store(q)?;
    let info = read(&*store, kind, id).await?;
    let levels = level_of(&info);
    let callback_jobs = callback_jobs(&*store, &info).await?;
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            #[serde(flatten)]
            summary: SummaryJson<'a>,
            members: Vec<MemberJson<'a>>,
            callbacks: Vec<MemberJson<'a>>,
        }
        let level = |m: &MemberInfo| match kind {
            FlowKind::Workflow => levels.iter().find(|(n, _)| *n == m.name).map(|(_, l)| *l),
            FlowKind::Batch => None,
        };
        let doc = Doc {
            summary: SummaryJson::of(&info.summary),
            members: info.members.iter().map(|m| MemberJson::of(m, level(m))).collect(),
            callbacks: info
                .callbacks
                .iter()
                .zip(&callback_jobs)
                .map(|(m, j)| MemberJson { job_status: j.as_ref().map(|j| j.status), ..MemberJson::of(m, None) })
                .collect(),
        };
        return print_json(io, &doc);
    }
    let now = SystemTime::now();
    let s = &info.summary;
    let mut text = String::new();
    let mut field = |label: &str, value: &str| text.push_str(&format!("{label:<10}{value}\n"));
    field(kind.as_str(), &printable(&s.id, 200));
    let status = match (kind, s.closed) {
        (FlowKind::Batch, false) if !s.status.is_ended() => format!("{} (open: it takes more jobs)", s.status.as_str()),
        _ => s.status.as_str().to_owned(),
    };
    field("status", &status);
    let unit = match kind {
        FlowKind::Workflow => "steps",
        FlowKind::Batch => "jobs",
    };
    let percent = (s.ended * 100).checked_div(s.total).map(|p| format!(" ({p}%)")).unwrap_or_default();
    field("progress", &format!("{} of {} {unit} ended{percent}, {} succeeded", s.ended, s.total, s.succeeded));
    field("created", &format!("{} ({})", time(s.created_at), ago(s.created_at, now)));
    if let Some(t) = s.ended_at {
        field("ended", &format!("{} ({})", time(t), ago(t, now)));
    }
    write!(io.out, "{text}")?;
    match kind {
        FlowKind::Workflow => show_steps(&info, io, now)?,
        FlowKind::Batch => show_batch(&info, &callback_jobs, io, now)?,
    }
    Ok(())
}

/// The job of each released callback (`None` for one not
/// released, or whose job is gone).
async fn callback_jobs(store: &dyn FlowStore, info: &FlowInfo) -> Result<Vec<Option<JobInfo>>, CliError> {
    let mut out = Vec::with_capacity(info.callbacks.len());
    for c in &info.callbacks {
        out.push(match c.status {
            MemberStatus::Released => store.job(&c.job).await?,
            _ => None,
        });
    }
    Ok(out)
}

/// Each member's dependency level (workflows), by name.
fn level_of(info: &FlowInfo) -> Vec<(String, usize)> {
    info.levels().iter().enumerate().flat_map(|(l, ms)| ms.iter().map(move |m| (m.name.clone(), l))).collect()
}

/// `a, b (any end)`: a step's dependencies.
fn after_text(m: &MemberInfo) -> String {
    if m.after.is_empty() {
        return "-".into();
    }
    let names: Vec<String> = m
        .after
        .iter()
        .map(|(d, p)| match p {
            OnFailure::Continue => format!("{d} (any end)"),
            _ => d.clone(),
        })
        .collect();
    names.join(", ")
}

/// `3m ago`, or `-`.
fn when(t: Option<SystemTime>, now: SystemTime) -> String {
    t.map(|t| ago(t, now)).unwrap_or_else(|| "-".into())
}

/// A table of members with each one's job id on an indented line under
/// its row.
fn rows_with_ids(io: &mut Io<'_>, t: &Table, members: &[&MemberInfo]) -> Result<(), CliError> {
    let table = t.render(WIDTH);
    let mut lines = table.lines();
    writeln!(io.out, "{}", lines.next().unwrap_or_default())?;
    for (line, m) in lines.zip(members) {
        writeln!(io.out, "{line}\n    job {}", m.job)?;
    }
    Ok(())
}

/// A workflow's steps, level by level.
fn show_steps(info: &FlowInfo, io: &mut Io<'_>, now: SystemTime) -> Result<(), CliError> {
    writeln!(io.out, "\nsteps by dependency level (each runs once those it is after succeeded):")?;
    let mut t = Table::new(&[
        ("LVL", Col::Num),
        ("STEP", Col::Shrink),
        ("JOB", Col::Shrink),
        ("STATUS", Col::Keep),
        ("AFTER", Col::Shrink),
        ("RELEASED", Col::Keep),
        ("ENDED", Col::Keep),
    ]);
    let mut ordered = Vec::new();
    for (level, members) in info.levels().into_iter().enumerate() {
        for m in members {
            t.row(vec![
                level.to_string(),
                m.name.clone(),
                m.job_name.clone(),
                m.status.as_str().to_owned(),
                after_text(m),
                when(m.released_at, now),
                when(m.ended_at, now),
            ]);
            ordered.push(m);
        }
    }
    rows_with_ids(io, &t, &ordered)
}

/// A batch's callbacks, then its jobs (the first [`MAX_MEMBERS_SHOWN`]).
fn show_batch(
    info: &FlowInfo,
    callback_jobs: &[Option<JobInfo>],
    io: &mut Io<'_>,
    now: SystemTime,
) -> Result<(), CliError> {
    if info.callbacks.is_empty() {
        writeln!(io.out, "\ncallbacks: none")?;
    } else {
        writeln!(io.out, "\ncallbacks (enqueued once the batch has ended):")?;
        let mut t =
            Table::new(&[("CALLBACK", Col::Keep), ("JOB", Col::Shrink), ("STATUS", Col::Keep), ("ENDED", Col::Keep)]);
        for (c, job) in info.callbacks.iter().zip(callback_jobs) {
            // Released: its job's own status says more.
            let (status, ended) = match job {
                Some(j) => (format!("job {}", j.status.as_str()), when(j.finished_at, now)),
                None => (c.status.as_str().to_owned(), when(c.ended_at, now)),
            };
            t.row(vec![c.name.clone(), c.job_name.clone(), status, ended]);
        }
        let callbacks: Vec<&MemberInfo> = info.callbacks.iter().collect();
        rows_with_ids(io, &t, &callbacks)?;
    }
    let n = info.members.len();
    if n == 0 {
        writeln!(io.out, "\njobs: none yet")?;
        return Ok(());
    }
    writeln!(io.out, "\njobs ({n}):")?;
    let mut t = Table::new(&[("JOB ID", Col::Keep), ("JOB", Col::Shrink), ("STATUS", Col::Keep), ("ENDED", Col::Keep)]);
    for m in info.members.iter().take(MAX_MEMBERS_SHOWN) {
        t.row(vec![m.job.to_string(), m.job_name.clone(), m.status.as_str().to_owned(), when(m.ended_at, now)]);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    if n > MAX_MEMBERS_SHOWN {
        writeln!(io.err, "showing the first {MAX_MEMBERS_SHOWN} of {n} jobs (--json shows them all)")?;
    }
    Ok(())
}

/// `workflows cancel ID` / `batches cancel ID`. The flow ends (cancelled)
/// once its running jobs have stopped. Cancelling a cancelled one again
/// succeeds (nothing changes); cancelling one that ended otherwise fails.
pub(super) async fn cancel(
    q: &SharedQueue,
    kind: FlowKind,
    id: &str,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        id: &'a str,
        kind: FlowKind,
        outcome: &'static str,
    }
    let store = store(q)?;
    read(&*store, kind, id).await?;
    let what = kind.as_str();
    let (outcome, text) = if store.cancel_flow(id).await? {
        (
            "cancelled",
            format!("cancelled {what} `{id}`: what was not enqueued yet never runs; running jobs are told to stop"),
        )
    } else {
        // Ended meanwhile (or before): say how.
        let info = read(&*store, kind, id).await?;
        match info.summary.status {
            FlowStatus::Cancelled => ("already_cancelled", format!("{what} `{id}` was cancelled already")),
            status => {
                return Err(CliError::Failed(format!(
                    "{what} `{id}` has ended ({}): nothing to cancel",
                    status.as_str()
                )))
            }
        }
    };
    if json {
        return print_json(io, &Doc { id, kind, outcome });
    }
    writeln!(io.out, "{text}")?;
    Ok(())
}
