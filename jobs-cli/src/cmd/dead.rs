//! `dead list|show|retry|purge`: the dead-letter sets.

use std::cmp::Reverse;
use std::time::SystemTime;

use jobs_core::{validate_queue_name, Error, JobId, JobStatus, SharedQueue};
use serde::Serialize;

use super::print_json;
use crate::args::BulkFlags;
use crate::error::CliError;
use crate::io::Io;
use crate::table::{cut, Col, Table, WIDTH};
use crate::view::{ago, job_text, JobView, Shown};

/// `dead list`: newest first, across queues unless one is named.
pub(super) async fn list(
    q: &SharedQueue,
    queue: Option<&str>,
    limit: usize,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let stats = q.stats().await?;
    let queues: Vec<String> = match queue {
        Some(name) => {
            validate_queue_name(name)?;
            vec![name.to_owned()]
        }
        None => stats.queues.iter().filter(|(_, c)| c.total().dead > 0).map(|(n, _)| n.clone()).collect(),
    };
    let total: u64 = queues.iter().map(|n| stats.queue(n).dead).sum();
    let mut jobs: Vec<Shown> = Vec::new();
    for name in &queues {
        jobs.extend(q.dead_jobs(name, limit).await?.into_iter().map(Shown::new));
    }
    // Stable: jobs that died in the same instant keep the backend's order.
    jobs.sort_by_key(|j| Reverse(j.finished_at));
    jobs.truncate(limit);
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            total: u64,
            jobs: Vec<JobView<'a>>,
        }
        return print_json(
            io,
            &Doc { total: total.max(jobs.len() as u64), jobs: jobs.iter().map(JobView::of).collect() },
        );
    }
    if jobs.is_empty() {
        match queue {
            Some(name) => writeln!(io.out, "no dead jobs in queue `{name}`")?,
            None => writeln!(io.out, "no dead jobs")?,
        }
        return Ok(());
    }
    // A table row per job, and its last error whole (up to the width) on an
    // indented line under it: the error is what an operator looks for.
    let now = SystemTime::now();
    let mut t = Table::new(&[("ID", Col::Keep), ("JOB", Col::Shrink), ("TRIES", Col::Num), ("DIED", Col::Keep)]);
    for j in &jobs {
        t.row(vec![
            j.id.to_string(),
            j.name.clone(),
            j.attempts.to_string(),
            j.finished_at.map(|f| ago(f, now)).unwrap_or_else(|| "-".into()),
        ]);
    }
    let table = t.render(WIDTH);
    let mut lines = table.lines();
    writeln!(io.out, "{}", lines.next().unwrap_or_default())?;
    for (line, j) in lines.zip(&jobs) {
        let error = j.last_error().unwrap_or("(no error recorded)").replace(char::is_control, " ");
        writeln!(io.out, "{line}\n  {}", cut(&error, WIDTH - 2))?;
    }
    if total > jobs.len() as u64 {
        writeln!(io.err, "showing {} of {total} dead jobs (--limit N shows more)", jobs.len())?;
    }
    Ok(())
}

/// `dead show ID`: one dead job with every attempt's error.
pub(super) async fn show(q: &SharedQueue, id: &JobId, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let job = Shown::new(q.job(id).await?.ok_or_else(|| Error::NotFound(id.clone()))?);
    if job.status != JobStatus::Dead {
        return Err(CliError::Failed(format!("job `{id}` is {}, not dead (`job {id}` shows it)", job.status)));
    }
    if json {
        return print_json(io, &JobView::of(&job));
    }
    write!(io.out, "{}", job_text(&job, SystemTime::now()))?;
    Ok(())
}

/// `dead retry --json`.
#[derive(Serialize)]
struct RetryJson<'a> {
    queue: &'a str,
    retried: Vec<String>,
    skipped: Vec<Skipped>,
}

/// A job that left the dead-letter set between the listing and its retry.
#[derive(Serialize)]
struct Skipped {
    id: String,
    reason: String,
}

/// `dead retry ID`.
pub(super) async fn retry_one(q: &SharedQueue, id: &JobId, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    q.retry_dead(id).await?;
    if json {
        return print_json(io, &RetryJson { queue: id.queue(), retried: vec![id.to_string()], skipped: vec![] });
    }
    writeln!(io.out, "retried {id}: pending again, attempts reset")?;
    Ok(())
}

/// `dead retry --all --queue Q`: every job dead when the operator confirmed,
/// one by one with progress. Jobs that died after the listing are left.
pub(super) async fn retry_all(q: &SharedQueue, queue: &str, flags: BulkFlags, io: &mut Io<'_>) -> Result<(), CliError> {
    validate_queue_name(queue)?;
    let ids: Vec<JobId> = q.dead_jobs(queue, usize::MAX).await?.into_iter().map(|j| j.id).collect();
    let n = ids.len();
    if n == 0 {
        return nothing_dead(queue, flags.json, io, |queue| RetryJson { queue, retried: vec![], skipped: vec![] });
    }
    let what = format!("{n} dead job{} of queue `{queue}`", plural(n));
    io.confirm(flags.yes, &format!("Retry {what}?"), &format!("retry {what}"))?;
    let mut progress = io.progress("retried", n);
    let (mut retried, mut skipped) = (Vec::new(), Vec::new());
    for id in ids {
        match q.retry_dead(&id).await {
            Ok(()) => retried.push(id.to_string()),
            Err(e @ (Error::NotFound(_) | Error::InvalidState { .. })) => {
                skipped.push(Skipped { id: id.to_string(), reason: e.to_string() })
            }
            Err(e) => {
                writeln!(io.err, "stopped after retrying {} of {n}", retried.len())?;
                return Err(e.into());
            }
        }
        progress.step(&mut *io.err)?;
    }
    if flags.json {
        return print_json(io, &RetryJson { queue, retried, skipped });
    }
    write!(io.out, "retried {} dead job{} of queue `{queue}`", retried.len(), plural(retried.len()))?;
    match skipped.len() {
        0 => writeln!(io.out)?,
        k => writeln!(io.out, "; skipped {k} that left the dead-letter set meanwhile")?,
    }
    Ok(())
}

/// `dead purge --queue Q`.
pub(super) async fn purge(q: &SharedQueue, queue: &str, flags: BulkFlags, io: &mut Io<'_>) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct PurgeJson<'a> {
        queue: &'a str,
        purged: u64,
    }
    validate_queue_name(queue)?;
    let n = q.stats().await?.queue(queue).dead;
    if n == 0 {
        return nothing_dead(queue, flags.json, io, |queue| PurgeJson { queue, purged: 0 });
    }
    let what = format!("{n} dead job{} of queue `{queue}`", plural(n as usize));
    io.confirm(flags.yes, &format!("Delete {what}? This cannot be undone."), &format!("purge {what}"))?;
    writeln!(io.err, "purging {what}…")?;
    let purged = q.purge_dead(queue).await?;
    if flags.json {
        return print_json(io, &PurgeJson { queue, purged });
    }
    writeln!(io.out, "purged {purged} dead job{} of queue `{queue}`", plural(purged as usize))?;
    Ok(())
}

fn nothing_dead<'q, T: Serialize>(
    queue: &'q str,
    json: bool,
    io: &mut Io<'_>,
    doc: impl FnOnce(&'q str) -> T,
) -> Result<(), CliError> {
    if json {
        return print_json(io, &doc(queue));
    }
    writeln!(io.out, "no dead jobs in queue `{queue}`: nothing to do")?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
