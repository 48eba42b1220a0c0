//! The archive backlog: finished jobs the retention deleted, kept in order
//! until an archiver has written them to a sink.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{BoxFuture, JobInfo};
use crate::error::Error;

/// The most entries one queue's archive backlog holds. When it is full the
/// retention stops deleting that queue's finished jobs (they stay, and jobs
/// keep running) until an archiver has taken entries off.
pub const ARCHIVE_BACKLOG_MAX: usize = 10_000;

/// One deleted job as its queue's archive backlog holds it, and as an
/// [`ArchiveSink`](crate::archive::ArchiveSink) writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedJob {
    /// The backlog it came from: a name its backend gives each backlog when
    /// the backlog's positions start at 1 (a new `MemoryQueue`, a Redis
    /// queue whose backlog counter was lost). A sink compares positions
    /// only within one backlog.
    pub backlog: String,
    /// Its place in its queue's backlog: 1, 2, 3, ... in deletion order,
    /// never reused. A sink tells by it which entries it already holds.
    pub seq: u64,
    /// When the retention deleted it, on the backend's clock (RFC 3339).
    #[serde(with = "crate::queue::breaker::rfc3339")]
    pub archived_at: SystemTime,
    /// The whole record as it was deleted: payload, state, attempts with
    /// their errors, result and timestamps.
    pub job: JobInfo,
}

/// What [`ArchiveBacklog::take_archive`] answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchiveBatch {
    /// The oldest entries of the backlog, in order.
    pub jobs: Vec<ArchivedJob>,
    /// How many entries the backlog holds (the ones returned included).
    pub backlog: u64,
    /// Whether the call took the lease (the holder did not hold it just
    /// before): another archiver may have written since, so the holder asks
    /// its sink where it stands again. False for an empty backlog.
    pub taken: bool,
}

/// The archive backlogs of a backend's queues (queues whose policy has
/// [`QueuePolicy::archive`](super::QueuePolicy::archive) set). The
/// retention appends each job it deletes in the same atomic step as the
/// deletion; an archiver reads the oldest entries, writes them to its sink
/// and only then removes them ([`ArchiveBacklog::ack_archive`]).
pub trait ArchiveBacklog: Send + Sync {
    /// Reads up to `max` of the oldest entries of `queue`'s backlog for
    /// `holder`, which then holds the queue's archiver lease for `lease`
    /// (taken, or renewed when it is `holder`'s already). `None`: another
    /// holder's lease is live, nothing is read. One archiver per queue
    /// writes at a time, whatever the number of pools. An empty backlog
    /// answers an empty batch and leaves the lease as it is (nothing to
    /// hold).
    fn take_archive<'a>(
        &'a self,
        queue: &'a str,
        holder: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Option<ArchiveBatch>, Error>>;

    /// Removes the entries of `queue`'s backlog up to and including `through`
    /// (their sink holds them); returns how many entries are left.
    fn ack_archive<'a>(&'a self, queue: &'a str, through: u64) -> BoxFuture<'a, Result<u64, Error>>;

    /// Gives up `holder`'s archiver lease on `queue`, if it holds it, so
    /// another pool's archiver takes over at once.
    fn release_archive<'a>(&'a self, queue: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>>;
}
