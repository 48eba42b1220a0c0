//! The archive backlogs: each queue's `archive` stream, which the retention
//! scripts append to while the queue archives, read and trimmed by an
//! archiver (`jobs_core::archive`).

use std::time::Duration;

use jobs_core::{validate_queue_name, ArchiveBatch, ArchivedJob, Error};

use crate::decode::from_ms;
use crate::list::stored_info;
use crate::queue::RedisQueue;
use crate::scripts::archive_ack::Ack;
use crate::scripts::archive_release::Release;
use crate::scripts::archive_take::Take;

impl RedisQueue {
    /// One `archive_take.lua` call; entries whose record cannot be read are
    /// reported as errors (they stay in the backlog).
    pub(crate) async fn take_archive(
        &self,
        queue: &str,
        holder: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Option<ArchiveBatch>, Error> {
        validate_queue_name(queue)?;
        let keys = self.keys(queue);
        let Some(taken) = self.invoke(Take { keys: &keys, holder, lease, max }).await? else {
            return Ok(None);
        };
        let mut jobs = Vec::with_capacity(taken.entries.len());
        for e in taken.entries {
            // archive() writes an entry only for a job with a record.
            let Some(job) = stored_info(queue, &e.ulid, &e.job)? else { continue };
            jobs.push(ArchivedJob { backlog: e.backlog, seq: e.seq, archived_at: from_ms(e.at), job });
        }
        Ok(Some(ArchiveBatch { jobs, backlog: taken.backlog, taken: taken.taken }))
    }

    /// One `archive_ack.lua` call.
    pub(crate) async fn ack_archive(&self, queue: &str, through: u64) -> Result<u64, Error> {
        validate_queue_name(queue)?;
        self.invoke(Ack { keys: &self.keys(queue), through }).await
    }

    /// One `archive_release.lua` call.
    pub(crate) async fn release_archive(&self, queue: &str, holder: &str) -> Result<(), Error> {
        validate_queue_name(queue)?;
        self.invoke(Release { keys: &self.keys(queue), holder }).await
    }
}
