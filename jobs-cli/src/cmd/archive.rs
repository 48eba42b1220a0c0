//! `archive`: archived jobs read back from the JSON-lines files.

use std::time::SystemTime;

use jobs_core::archive::{read_archive, ArchiveQuery};
use jobs_core::config::Config;
use jobs_core::validate_queue_name;
use serde::Serialize;

use super::print_json;
use crate::args::ArchiveArgs;
use crate::error::CliError;
use crate::io::Io;
use crate::table::{Col, Table, WIDTH};
use crate::view::{ago, job_text, json_time, time, JobView, Shown};

/// One archived job, as `--json` shows it.
#[derive(Serialize)]
struct EntryJson<'a> {
    backlog: &'a str,
    seq: u64,
    archived_at: String,
    job: JobView<'a>,
}

/// `archive [--dir DIR] [--queue Q] [--id ID] [--since T] [--until T]
/// [--limit N]`: a table (one job: all of it), or `--json`. Reads files
/// only: no backend is opened.
pub(crate) fn run(args: &ArchiveArgs, config: &Config, io: &mut Io<'_>) -> Result<(), CliError> {
    let dir = args.dir.clone().or_else(|| config.jobs.archive.dir.clone()).ok_or_else(|| {
        CliError::Usage("no archive folder: pass --dir DIR or set jobs.archive.dir in the configuration".into())
    })?;
    if let Some(q) = &args.queue {
        validate_queue_name(q)?;
    }
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let query = ArchiveQuery {
        queue: args.queue.clone(),
        id: args.id.clone(),
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
    };
    let found = read_archive(&dir, &query)?;
    let shown: Vec<Shown> = found.iter().map(|e| Shown::new(e.job.clone())).collect();
    if args.output.json {
        #[derive(Serialize)]
        struct Doc<'a> {
            jobs: Vec<EntryJson<'a>>,
        }
        let jobs = found
            .iter()
            .zip(&shown)
            .map(|(e, s)| EntryJson {
                backlog: &e.backlog,
                seq: e.seq,
                archived_at: json_time(e.archived_at),
                job: JobView::of(s),
            })
            .collect();
        return print_json(io, &Doc { jobs });
    }
    if let (Some(_), Some(entry), Some(job)) = (&args.id, found.first(), shown.first()) {
        write!(io.out, "{}", job_text(job, SystemTime::now()))?;
        let at = time(entry.archived_at);
        writeln!(io.out, "{:<10}{at} (position {} of backlog {})", "archived", entry.seq, entry.backlog)?;
        return Ok(());
    }
    if found.is_empty() {
        match &args.id {
            Some(id) => writeln!(io.out, "job `{id}` is not in the archive at {}", dir.display())?,
            None => writeln!(io.out, "no archived jobs match at {}", dir.display())?,
        }
        return Ok(());
    }
    let mut t = Table::new(&[
        ("ID", Col::Keep),
        ("JOB", Col::Shrink),
        ("STATUS", Col::Keep),
        ("TRIES", Col::Num),
        ("FINISHED", Col::Keep),
    ]);
    let now = SystemTime::now();
    for j in &shown {
        t.row(vec![
            j.id.to_string(),
            j.name.clone(),
            j.status.as_str().to_owned(),
            j.attempts.to_string(),
            j.finished_at.map(|f| ago(f, now)).unwrap_or_else(|| "-".into()),
        ]);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    if found.len() >= args.limit {
        writeln!(io.err, "showing the first {} (--limit N shows more)", found.len())?;
    }
    Ok(())
}
