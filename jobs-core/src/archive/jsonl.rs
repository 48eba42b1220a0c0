//! [`JsonLinesSink`]: the default archive sink, JSON lines in files
//! rotated by day and size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::files::{self, day_of, file_path};
use super::sink::{ArchiveError, ArchivePosition, ArchiveSink};
use crate::queue::{ArchivedJob, BoxFuture};

/// The default size at which a day's file is closed and the next begun.
pub const DEFAULT_ARCHIVE_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Writes archived jobs as JSON lines (one [`ArchivedJob`] a line) to
/// `DIR/QUEUE/YYYY-MM-DD.N.jsonl`: a file per queue and UTC day of
/// archiving, and a new number `N` when the day's file would pass its size.
///
/// Each batch is appended and fsynced before [`ArchiveSink::write`]
/// returns (new files' folders too). [`ArchiveSink::last`] reads the last
/// line of the queue's newest file; a line a crash left half written is cut
/// off first (its entries are still in the backlog and are written again).
/// One folder per backend: two backends archiving a queue of the same name
/// into one folder would interleave their backlogs.
#[derive(Debug, Clone)]
pub struct JsonLinesSink {
    dir: PathBuf,
    max_file_size: u64,
    open: Arc<Mutex<HashMap<String, Current>>>,
}

/// The file a queue's next entries go to.
#[derive(Debug, Clone)]
struct Current {
    day: String,
    n: u32,
    size: u64,
}

impl JsonLinesSink {
    /// A sink writing under `dir` (created when needed), files of at most
    /// [`DEFAULT_ARCHIVE_FILE_SIZE`] bytes.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JsonLinesSink { dir: dir.into(), max_file_size: DEFAULT_ARCHIVE_FILE_SIZE, open: Arc::default() }
    }

    /// Closes a day's file once it would pass `bytes` (at least one entry
    /// goes to each file, whatever its size).
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes.max(1);
        self
    }

    /// The folder it writes under.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn queue_dir(&self, queue: &str) -> PathBuf {
        self.dir.join(queue)
    }

    /// Finds the queue's newest entry on disk, repairing a torn last line,
    /// and remembers where the next entries go.
    fn load(&self, queue: &str) -> Result<Option<ArchivePosition>, ArchiveError> {
        let mut newest = None;
        let mut current = None;
        for f in files::list(&self.queue_dir(queue))?.into_iter().rev() {
            let (size, last) = last_line(&f.path)?;
            if current.is_none() {
                current = Some(Current { day: f.day.clone(), n: f.n, size });
            }
            if let Some(job) = last {
                newest = Some(ArchivePosition { backlog: job.backlog, seq: job.seq });
                break;
            }
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match current {
            Some(c) => open.insert(queue.to_owned(), c),
            None => open.remove(queue),
        };
        Ok(newest)
    }

    /// Appends `lines` (each entry's day and text), fsynced.
    fn append(&self, queue: &str, lines: Vec<(String, Vec<u8>)>) -> Result<(), ArchiveError> {
        let known = self.open.lock().unwrap_or_else(|p| p.into_inner()).contains_key(queue);
        if !known {
            self.load(queue)?;
        }
        let dir = self.queue_dir(queue);
        std::fs::create_dir_all(&dir).map_err(ArchiveError::io(&dir))?;
        let mut cur = self.open.lock().unwrap_or_else(|p| p.into_inner()).get(queue).cloned();
        let mut file: Option<(File, PathBuf)> = None;
        let mut created = false;
        for (day, line) in lines {
            // Days only move forward, whatever the clock did: the newest
            // file must hold the newest entry (see `load`).
            let day = match &cur {
                Some(c) if day < c.day => c.day.clone(),
                _ => day,
            };
            let len = line.len() as u64;
            let next = match &cur {
                Some(c) if c.day == day && (c.size == 0 || c.size + len <= self.max_file_size) => None,
                Some(c) if c.day == day => Some(Current { day, n: c.n + 1, size: 0 }),
                _ => Some(Current { day, n: 0, size: 0 }),
            };
            if let Some(n) = next {
                if let Some((f, path)) = file.take() {
                    f.sync_data().map_err(ArchiveError::io(&path))?;
                }
                cur = Some(n);
            }
            // Set just above whenever it was `None`.
            let Some(c) = cur.as_mut() else { continue };
            if file.is_none() {
                let path = file_path(&dir, &c.day, c.n);
                created |= !path.exists();
                let f = OpenOptions::new().create(true).append(true).open(&path).map_err(ArchiveError::io(&path))?;
                file = Some((f, path));
            }
            if let Some((f, path)) = file.as_mut() {
                f.write_all(&line).map_err(ArchiveError::io(&*path))?;
            }
            c.size += len;
        }
        if let Some((f, path)) = file {
            f.sync_data().map_err(ArchiveError::io(&path))?;
        }
        if created {
            // A new file's name must survive a crash as its lines do.
            File::open(&dir).and_then(|d| d.sync_all()).map_err(ArchiveError::io(&dir))?;
        }
        if let Some(c) = cur {
            self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(queue.to_owned(), c);
        }
        Ok(())
    }
}

/// A file's size after repair, and its last entry. A last line without
/// its newline (a write a crash cut short) is cut off.
fn last_line(path: &Path) -> Result<(u64, Option<ArchivedJob>), ArchiveError> {
    let io = ArchiveError::io;
    let mut f = OpenOptions::new().read(true).write(true).open(path).map_err(io(path))?;
    let size = f.seek(SeekFrom::End(0)).map_err(io(path))?;
    // Read backwards in steps until the last full line is in view.
    let mut step = 64 * 1024u64;
    loop {
        let from = size.saturating_sub(step);
        f.seek(SeekFrom::Start(from)).map_err(io(path))?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).map_err(io(path))?;
        let end = match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => i,
            None if from == 0 => {
                if size > 0 {
                    f.set_len(0).and_then(|()| f.sync_data()).map_err(io(path))?;
                }
                return Ok((0, None));
            }
            None => {
                step *= 2;
                continue;
            }
        };
        let kept = from + end as u64 + 1;
        let start = match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if from == 0 => 0,
            None => {
                step *= 2;
                continue;
            }
        };
        if kept < size {
            f.set_len(kept).and_then(|()| f.sync_data()).map_err(io(path))?;
        }
        let job = serde_json::from_slice(&tail[start..end]).map_err(|source| ArchiveError::Decode {
            path: path.to_owned(),
            line: 0,
            source,
        })?;
        return Ok((kept, Some(job)));
    }
}

impl ArchiveSink for JsonLinesSink {
    fn write<'a>(&'a self, queue: &'a str, jobs: &'a [ArchivedJob]) -> BoxFuture<'a, Result<(), ArchiveError>> {
        Box::pin(async move {
            let mut lines = Vec::with_capacity(jobs.len());
            for j in jobs {
                let mut line = serde_json::to_vec(j).map_err(ArchiveError::Encode)?;
                line.push(b'\n');
                lines.push((day_of(j.archived_at), line));
            }
            let (sink, queue) = (self.clone(), queue.to_owned());
            blocking(move || sink.append(&queue, lines)).await
        })
    }

    fn last<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<Option<ArchivePosition>, ArchiveError>> {
        Box::pin(async move {
            let (sink, queue) = (self.clone(), queue.to_owned());
            blocking(move || sink.load(&queue)).await
        })
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ArchiveError::Sink(format!("the archive writer stopped: {e}").into()))?
}
