//! The [`ArchiveSink`] trait: where an archiver writes deleted jobs.

use std::path::PathBuf;

use crate::error::Error;
use crate::queue::{ArchivedJob, BoxFuture};

/// The last entry of a queue a sink durably holds: its backlog and
/// position (see [`ArchivedJob::backlog`] and [`ArchivedJob::seq`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePosition {
    /// The backlog the entry came from.
    pub backlog: String,
    /// Its position in that backlog.
    pub seq: u64,
}

impl ArchivePosition {
    /// Whether the sink holds `job` already: an entry of the same backlog at
    /// or before this position.
    pub fn holds(&self, job: &ArchivedJob) -> bool {
        job.backlog == self.backlog && job.seq <= self.seq
    }
}

/// Why archiving or reading an archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file or folder of the archive could not be read or written.
    #[error("archive file {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A line of an archive file is not an archived job.
    #[error("archive file {path}, line {line}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The line number (1-based; 0: the file's last line, read from its
        /// end).
        line: usize,
        /// What was wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// An archived job could not be encoded.
    #[error("cannot encode an archived job: {0}")]
    Encode(#[source] serde_json::Error),
    /// The backend's backlog could not be read or trimmed.
    #[error(transparent)]
    Backend(#[from] Error),
    /// An application's own sink failed.
    #[error("archive sink: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ArchiveError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let path = path.into();
        move |source| ArchiveError::Io { path, source }
    }
}

/// Where an archiver writes the jobs the retention deleted: the default
/// [`JsonLinesSink`](super::JsonLinesSink), or an application's own
/// (object storage, a database table, ...).
///
/// An archiver writes each entry exactly once: it asks [`ArchiveSink::last`]
/// whenever it takes a queue over, skips the entries the sink holds, calls
/// [`ArchiveSink::write`] with the rest in order, and removes them from the
/// backend's backlog only after `write` returned. So `write` must return
/// only once the entries are durable, and `last` must answer the last entry
/// that is.
pub trait ArchiveSink: Send + Sync + 'static {
    /// Writes entries of `queue`, in backlog order, durably.
    fn write<'a>(&'a self, queue: &'a str, jobs: &'a [ArchivedJob]) -> BoxFuture<'a, Result<(), ArchiveError>>;

    /// The last entry of `queue` the sink durably holds (`None`: none).
    fn last<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<Option<ArchivePosition>, ArchiveError>>;
}
