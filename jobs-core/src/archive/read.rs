//! Reading a JSON-lines archive back ([`read_archive`]).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::SystemTime;

use super::files::{self, day_of};
use super::sink::ArchiveError;
use crate::queue::ArchivedJob;
use crate::vocab::JobId;

/// Which archived jobs [`read_archive`] returns: all of these that are set
/// must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Jobs of this queue (else every queue folder is read).
    pub queue: Option<String>,
    /// This one job (only its queue's folder is read).
    pub id: Option<JobId>,
    /// Jobs that finished at or after this time.
    pub since: Option<SystemTime>,
    /// Jobs that finished before this time.
    pub until: Option<SystemTime>,
    /// At most this many, the oldest first (`None`: all).
    pub limit: Option<usize>,
}

impl ArchiveQuery {
    /// When a job counts as finished for `since` and `until`: its end, or
    /// when it was archived if it carries none.
    fn time_of(job: &ArchivedJob) -> SystemTime {
        job.job.finished_at.unwrap_or(job.archived_at)
    }

    fn matches(&self, job: &ArchivedJob) -> bool {
        let t = Self::time_of(job);
        self.id.as_ref().is_none_or(|id| *id == job.job.id)
            && self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
    }
}

/// The archived jobs under `dir` (a [`JsonLinesSink`](super::JsonLinesSink)'s
/// folder) that `query` selects, queue by queue in name order, each
/// queue's oldest first.
///
/// Files of days before `since` are not opened: a job is archived after it
/// finished. A last line still being written (no newline yet) is left out.
pub fn read_archive(dir: &Path, query: &ArchiveQuery) -> Result<Vec<ArchivedJob>, ArchiveError> {
    let queues = match (&query.id, &query.queue) {
        (Some(id), Some(q)) if id.queue() != q => return Ok(Vec::new()),
        (Some(id), _) => vec![id.queue().to_owned()],
        (None, Some(q)) => vec![q.clone()],
        (None, None) => files::queues(dir)?,
    };
    let first_day = query.since.map(day_of);
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for q in queues {
        for f in files::list(&dir.join(&q))? {
            if first_day.as_ref().is_some_and(|d| f.day < *d) {
                continue;
            }
            read_file(&f.path, query, limit, &mut out)?;
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn read_file(path: &Path, query: &ArchiveQuery, limit: usize, out: &mut Vec<ArchivedJob>) -> Result<(), ArchiveError> {
    let file = std::fs::File::open(path).map_err(ArchiveError::io(path))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(ArchiveError::io(path))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        number += 1;
        let job: ArchivedJob = serde_json::from_slice(&line).map_err(|source| ArchiveError::Decode {
            path: path.to_owned(),
            line: number,
            source,
        })?;
        if query.matches(&job) {
            out.push(job);
            if out.len() >= limit {
                return Ok(());
            }
        }
    }
}
