//! The archive backlogs: each queue's `archive` stream, which the retention
//! scripts append to while the queue archives, read and trimmed by an
//! archiver (`jobs_core::archive`).

use std::time::Duration;

use jobs_core::{validate_queue_name, ArchiveBatch, ArchivedJob, Error};

use crate::decode::from_ms;
use crate::keys::QueueKeys;
use crate::list::stored_info;
use crate::partitions::at_once;
use crate::queue::RedisQueue;
use crate::scripts::archive_ack::Ack;
use crate::scripts::archive_release::Release;
use crate::scripts::archive_take::Take;

/// Where a partition's sequence numbers go in a partitioned queue's
/// archive entries: above the 2^48 a backlog's own numbers stay under.
const PARTITION_SHIFT: u32 = 48;

impl RedisQueue {
    /// One `archive_take.lua` call; entries whose record cannot be read are
    /// reported as errors (they stay in the backlog).
    ///
    /// A partitioned queue has a backlog per partition: the first one, in
    /// partition order, that has entries for this holder is taken, its
    /// entries' sequence numbers carrying the partition (so that
    /// [`ack_archive`](Self::ack_archive) finds it) and their backlog name
    /// too (so that an archiver's position in one partition never hides
    /// another's entries).
    pub(crate) async fn take_archive(
        &self,
        queue: &str,
        holder: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Option<ArchiveBatch>, Error> {
        validate_queue_name(queue)?;
        let mut last = None;
        for keys in self.all_partitions(queue) {
            let Some(taken) = self.invoke(Take { keys: &keys, holder, lease, max }).await? else {
                continue;
            };
            let p = keys.partition();
            let mut jobs = Vec::with_capacity(taken.entries.len());
            for e in taken.entries {
                // archive() writes an entry only for a job with a record.
                let Some(job) = stored_info(&keys, &e.ulid, &e.job)? else { continue };
                let (seq, backlog) = match p {
                    0 => (e.seq, e.backlog),
                    p => ((u64::from(p) << PARTITION_SHIFT) | e.seq, format!("~{p}:{}", e.backlog)),
                };
                jobs.push(ArchivedJob { backlog, seq, archived_at: from_ms(e.at), job });
            }
            let batch = ArchiveBatch { jobs, backlog: taken.backlog, taken: taken.taken || p > 0 };
            if !batch.jobs.is_empty() {
                return Ok(Some(batch));
            }
            last = Some(batch);
        }
        Ok(last)
    }

    /// One `archive_ack.lua` call, in the partition `through` names (see
    /// [`take_archive`](Self::take_archive)).
    pub(crate) async fn ack_archive(&self, queue: &str, through: u64) -> Result<u64, Error> {
        validate_queue_name(queue)?;
        // Below 2^16 after the shift.
        let p = (through >> PARTITION_SHIFT) as u16;
        let through = through & ((1 << PARTITION_SHIFT) - 1);
        let keys = QueueKeys::of_partition(&self.inner.prefix, queue, p);
        self.invoke(Ack { keys: &keys, through }).await
    }

    /// One `archive_release.lua` call per partition.
    pub(crate) async fn release_archive(&self, queue: &str, holder: &str) -> Result<(), Error> {
        validate_queue_name(queue)?;
        let parts = self.all_partitions(queue);
        at_once(&parts, |keys| self.invoke(Release { keys, holder })).await?;
        Ok(())
    }
}
