//! [`MemoryQueue`]'s archive backlogs: per queue, the jobs its retention
//! deleted, oldest first, bounded by [`ARCHIVE_BACKLOG_MAX`].

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::MemoryQueue;
use crate::error::Error;
use crate::parse::validate_queue_name;
use crate::queue::{ArchiveBacklog, ArchiveBatch, ArchivedJob, BoxFuture, JobInfo, ARCHIVE_BACKLOG_MAX};

/// One queue's backlog and the lease of the archiver that drains it.
#[derive(Default)]
pub(super) struct Backlog {
    entries: VecDeque<ArchivedJob>,
    /// The backlog's name ([`ArchivedJob::backlog`]), given at its first
    /// entry.
    name: String,
    /// The last position handed out (positions start at 1).
    last: u64,
    /// The archiver holding the queue, and until when.
    holder: Option<(String, SystemTime)>,
}

impl Backlog {
    /// How many more entries fit.
    pub(super) fn room(&self) -> usize {
        ARCHIVE_BACKLOG_MAX.saturating_sub(self.entries.len())
    }

    /// Appends a deleted job at the next position.
    pub(super) fn push(&mut self, job: JobInfo, now: SystemTime) {
        if self.name.is_empty() {
            self.name = ulid::Ulid::new().to_string();
        }
        self.last += 1;
        self.entries.push_back(ArchivedJob { backlog: self.name.clone(), seq: self.last, archived_at: now, job });
    }
}

impl ArchiveBacklog for MemoryQueue {
    fn take_archive<'a>(
        &'a self,
        queue: &'a str,
        holder: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Option<ArchiveBatch>, Error>> {
        let r = validate_queue_name(queue).map(|()| {
            let now = self.clock();
            let mut st = self.lock();
            // An empty backlog (or none yet) has nothing to hold.
            let Some(b) = st.queues.get_mut(queue).map(|q| &mut q.archive).filter(|b| !b.entries.is_empty()) else {
                return Some(ArchiveBatch::default());
            };
            let live = b.holder.as_ref().filter(|(_, until)| *until > now);
            if live.is_some_and(|(h, _)| h != holder) {
                return None;
            }
            let taken = live.is_none();
            b.holder = Some((holder.to_owned(), now + lease));
            let jobs = b.entries.iter().take(max).cloned().collect();
            Some(ArchiveBatch { jobs, backlog: b.entries.len() as u64, taken })
        });
        Box::pin(async move { r })
    }

    fn ack_archive<'a>(&'a self, queue: &'a str, through: u64) -> BoxFuture<'a, Result<u64, Error>> {
        let mut st = self.lock();
        let left = st.queues.get_mut(queue).map_or(0, |q| {
            let b = &mut q.archive;
            while b.entries.front().is_some_and(|e| e.seq <= through) {
                b.entries.pop_front();
            }
            b.entries.len() as u64
        });
        Box::pin(async move { Ok(left) })
    }

    fn release_archive<'a>(&'a self, queue: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let mut st = self.lock();
        if let Some(q) = st.queues.get_mut(queue) {
            if q.archive.holder.as_ref().is_some_and(|(h, _)| h == holder) {
                q.archive.holder = None;
            }
        }
        Box::pin(async move { Ok(()) })
    }
}
