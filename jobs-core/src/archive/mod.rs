//! Archival: the jobs a queue's retention deletes, written to a sink first.
//!
//! A queue whose policy sets [`QueuePolicy::archive`](crate::QueuePolicy::archive)
//! has a backlog in its backend ([`ArchiveBacklog`](crate::ArchiveBacklog)):
//! each job the retention deletes (by age or count, succeeded, cancelled,
//! expired or dead) is appended to it in the step that deletes it, in
//! deletion order. The backlog is bounded
//! ([`ARCHIVE_BACKLOG_MAX`](crate::ARCHIVE_BACKLOG_MAX)): when full, the
//! retention leaves that queue's finished jobs in place until the archiver
//! catches up; jobs keep running.
//!
//! An [`Archiver`] (a task of a worker pool given a sink with
//! [`WorkerPoolBuilder::archive`](crate::WorkerPoolBuilder::archive)) takes
//! the oldest entries of each served queue's backlog, writes them to an
//! [`ArchiveSink`] and only then removes them from the backlog. Every entry
//! carries its position; on taking a queue over, the archiver asks the sink
//! for the last position it holds and skips those entries, so a batch
//! written just before a crash is not written again: each job reaches the
//! sink once, in order. One archiver per queue works at a time (a lease in
//! the backend), however many pools run one.
//!
//! [`JsonLinesSink`] is the default sink; [`read_archive`] reads its files
//! back (the `jobs archive` command).

mod archiver;
mod files;
mod jsonl;
mod read;
mod sink;

pub use archiver::{ArchiveSettings, Archiver};
pub use jsonl::{JsonLinesSink, DEFAULT_ARCHIVE_FILE_SIZE};
pub use read::{read_archive, ArchiveQuery};
pub use sink::{ArchiveError, ArchivePosition, ArchiveSink};
