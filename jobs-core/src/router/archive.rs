//! Archive backlogs over a router: each queue's backlog lives on the
//! backend of the queue.

use std::time::Duration;

use crate::error::Error;
use crate::queue::{ArchiveBacklog, ArchiveBatch, BoxFuture};

use super::QueueRouter;

impl<B: ArchiveBacklog> ArchiveBacklog for QueueRouter<B> {
    fn take_archive<'a>(
        &'a self,
        queue: &'a str,
        holder: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Option<ArchiveBatch>, Error>> {
        match self.index(queue) {
            Ok(i) => self.at(i).take_archive(queue, holder, lease, max),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn ack_archive<'a>(&'a self, queue: &'a str, through: u64) -> BoxFuture<'a, Result<u64, Error>> {
        match self.index(queue) {
            Ok(i) => self.at(i).ack_archive(queue, through),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn release_archive<'a>(&'a self, queue: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        match self.index(queue) {
            Ok(i) => self.at(i).release_archive(queue, holder),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}
