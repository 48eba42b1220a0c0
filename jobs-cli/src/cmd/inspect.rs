//! `stats`, `queues`, `job` and `workers`: reading the backend's state.

use std::collections::BTreeMap;
use std::time::SystemTime;

use jobs_core::{Counts, Error, JobId, Priority, QueueStats, SharedQueue};
use serde::Serialize;

use super::print_json;
use crate::error::CliError;
use crate::io::Io;
use crate::table::{count, Col, Table, WIDTH};
use crate::view::{ago, job_text, json_time, JobView, Shown};

/// The counts columns shared by `stats` and `queues`.
const COUNT_COLUMNS: [(&str, Col); 8] = [
    ("PENDING", Col::Num),
    ("SCHED", Col::Num),
    ("RUNNING", Col::Num),
    ("RETRY", Col::Num),
    ("DEAD", Col::Num),
    ("DONE", Col::Num),
    ("FAILED", Col::Num),
    ("EXPIRED", Col::Num),
];

fn count_cells(c: &Counts) -> impl Iterator<Item = String> {
    [c.pending, c.scheduled, c.running, c.retrying, c.dead, c.processed, c.failed, c.expired].into_iter().map(count)
}

fn no_queues(io: &mut Io<'_>) -> Result<(), CliError> {
    writeln!(io.out, "no queues: nothing has been enqueued yet")?;
    Ok(())
}

/// `stats --json`.
#[derive(Serialize)]
struct StatsJson<'a> {
    queues: BTreeMap<&'a str, QueueJson>,
    total: Counts,
}

#[derive(Serialize)]
struct QueueJson {
    paused: bool,
    total: Counts,
    priorities: BTreeMap<&'static str, Counts>,
}

/// `stats`: counts per queue and priority (`--json` has every priority;
/// the table leaves out those with nothing).
pub(super) async fn stats(q: &SharedQueue, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let stats = q.stats().await?;
    let mut total = Counts::default();
    stats.queues.values().for_each(|c| total.add(&c.total()));
    if json {
        let queues = stats
            .queues
            .iter()
            .map(|(name, c)| {
                let priorities = c.by_priority.iter().map(|(p, c)| (p.as_str(), *c)).collect();
                (name.as_str(), QueueJson { paused: c.paused, total: c.total(), priorities })
            })
            .collect();
        return print_json(io, &StatsJson { queues, total });
    }
    if stats.queues.is_empty() {
        return no_queues(io);
    }
    let mut columns = vec![("QUEUE", Col::Shrink), ("PRIO", Col::Keep)];
    columns.extend(COUNT_COLUMNS);
    let mut t = Table::new(&columns);
    for (name, c) in &stats.queues {
        // Priorities with nothing at all are left out; a queue with nothing
        // at all keeps one line, under `-`.
        let mut shown = false;
        for p in Priority::ALL {
            if let Some(counts) = c.by_priority.get(&p).filter(|c| **c != Counts::default()) {
                t.row([name.clone(), p.to_string()].into_iter().chain(count_cells(counts)).collect());
                shown = true;
            }
        }
        if !shown {
            t.row([name.clone(), "-".to_owned()].into_iter().chain(count_cells(&Counts::default())).collect());
        }
    }
    t.row(["total".to_owned(), String::new()].into_iter().chain(count_cells(&total)).collect());
    write!(io.out, "{}", t.render(WIDTH))?;
    Ok(())
}

/// `queues --json`: one entry per queue.
#[derive(Serialize)]
struct QueueLine<'a> {
    name: &'a str,
    paused: bool,
    /// Partitions the queue is spread over, when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<u16>,
    #[serde(flatten)]
    counts: Counts,
}

/// A queue's partitions, when it is spread over more than one.
fn partitions(c: &jobs_core::QueueCounts) -> Option<u16> {
    (c.partitions > 1).then_some(c.partitions)
}

/// `queues`: one line per queue.
pub(super) async fn queues(q: &SharedQueue, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let stats: QueueStats = q.stats().await?;
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            queues: Vec<QueueLine<'a>>,
        }
        let queues = stats
            .queues
            .iter()
            .map(|(n, c)| QueueLine { name: n, paused: c.paused, partitions: partitions(c), counts: c.total() })
            .collect();
        return print_json(io, &Doc { queues });
    }
    if stats.queues.is_empty() {
        return no_queues(io);
    }
    // PART (partitions) only when a queue is spread over several.
    let parts = stats.queues.values().any(|c| partitions(c).is_some());
    let mut columns = vec![("QUEUE", Col::Shrink), ("STATE", Col::Keep)];
    if parts {
        columns.push(("PART", Col::Keep));
    }
    columns.extend(COUNT_COLUMNS);
    let mut t = Table::new(&columns);
    for (name, c) in &stats.queues {
        let state = if c.paused { "paused" } else { "active" };
        let shown = parts.then(|| partitions(c).unwrap_or(1).to_string());
        t.row([name.clone(), state.to_owned()].into_iter().chain(shown).chain(count_cells(&c.total())).collect());
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    Ok(())
}

/// `job ID`: everything about one job.
pub(super) async fn job(q: &SharedQueue, id: &JobId, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let job = Shown::new(q.job(id).await?.ok_or_else(|| Error::NotFound(id.clone()))?);
    if json {
        return print_json(io, &JobView::of(&job));
    }
    write!(io.out, "{}", job_text(&job, SystemTime::now()))?;
    Ok(())
}

/// `workers --json`: one entry per pool.
#[derive(Serialize)]
struct WorkerJson<'a> {
    id: &'a str,
    host: &'a str,
    pid: u32,
    queues: &'a [String],
    workers: usize,
    running: usize,
    running_jobs: Vec<String>,
    ahead: usize,
    started_at: String,
    last_seen: String,
}

/// `workers`: the live pools.
pub(super) async fn workers(q: &SharedQueue, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let mut pools = q.pools().await?;
    pools.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.id.cmp(&b.id)));
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            workers: Vec<WorkerJson<'a>>,
        }
        let workers = pools
            .iter()
            .map(|w| WorkerJson {
                id: &w.id,
                host: &w.host,
                pid: w.pid,
                queues: &w.queues,
                workers: w.workers,
                running: w.running,
                running_jobs: w.running_jobs.iter().map(ToString::to_string).collect(),
                ahead: w.ahead,
                started_at: json_time(w.started_at),
                last_seen: json_time(w.last_seen),
            })
            .collect();
        return print_json(io, &Doc { workers });
    }
    if pools.is_empty() {
        writeln!(io.out, "no live worker pools")?;
        return Ok(());
    }
    let now = SystemTime::now();
    let mut t = Table::new(&[
        ("POOL", Col::Keep),
        ("HOST", Col::Shrink),
        ("PID", Col::Num),
        ("QUEUES", Col::Shrink),
        ("BUSY", Col::Num),
        ("AHEAD", Col::Num),
        ("STARTED", Col::Keep),
        ("SEEN", Col::Keep),
    ]);
    for w in &pools {
        t.row(vec![
            w.id.clone(),
            w.host.clone(),
            w.pid.to_string(),
            w.queues.join(","),
            format!("{}/{}", w.running, w.workers),
            w.ahead.to_string(),
            ago(w.started_at, now),
            ago(w.last_seen, now),
        ]);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    Ok(())
}
