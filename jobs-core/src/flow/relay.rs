//! The relay: applies ended members to their flows and enqueues what they
//! released. Every worker pool whose backend stores flows runs one over its
//! queues; producers use [`release`] for the members a call released at
//! once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::queue::JobQueue;
use crate::queue::{FlowStore, Release};

/// Ended members taken per call.
const TAKE: usize = 256;
/// How long taken ends stay hidden from other relays: a relay that died
/// holding them leaves them to the next one after this, so it bounds how
/// long a kill can hold a workflow up. A pass takes milliseconds; one that
/// outlasts it under load is only repeated by another relay, which changes
/// nothing (every step is idempotent).
const CLAIM: Duration = Duration::from_secs(5);
/// A release not reported within this is enqueued again (its relay died).
const STALE_AFTER: Duration = Duration::from_secs(5);
/// How often an idle relay looks for ends nothing in its pool announced
/// (cancels from outside, ends in other processes whose relay died) and for
/// stale releases: a relay is woken by its pool's acknowledgements and
/// fetches, so this bounds only recovery, at one call per queue per sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Releases enqueued and reported per call, at most. Redis runs one script
/// at a time, so one call for all of a wide fan-out's releases would hold
/// every other client of the server for as long as they all take.
const RELEASE_CHUNK: usize = 500;

/// Enqueues released members and reports them, a part at a time; cancels
/// those whose flow was cancelled meanwhile. A failure leaves the releases
/// (those of its part and after) to the stale sweep: enqueueing one again
/// stores nothing new (its caller id).
pub(crate) async fn release<Q: JobQueue + ?Sized>(
    queue: &Q,
    store: &dyn FlowStore,
    releases: Vec<Release>,
) -> Result<(), Error> {
    for part in releases.chunks(RELEASE_CHUNK) {
        queue.enqueue_many(part.iter().map(|r| r.job.clone()).collect()).await?;
        let cancel = store.members_released(part).await?;
        if !cancel.is_empty() {
            store.cancel_jobs(&cancel).await?;
        }
    }
    Ok(())
}

/// One pass: applies up to [`TAKE`] ended members of `queues`. Returns how
/// many it took.
pub(crate) async fn relay_once(queue: &dyn JobQueue, store: &dyn FlowStore, queues: &[String]) -> Result<usize, Error> {
    let ends = store.take_ended(queues, TAKE, CLAIM).await?;
    if ends.is_empty() {
        return Ok(0);
    }
    let releases = store.members_ended(&ends).await?;
    release(queue, store, releases).await?;
    store.ack_ended(&ends).await?;
    Ok(ends.len())
}

/// Enqueues releases whose relay died before reporting them.
pub(crate) async fn sweep_stale(queue: &dyn JobQueue, store: &dyn FlowStore) -> Result<(), Error> {
    let stale = store.stale_releases(STALE_AFTER, TAKE).await?;
    release(queue, store, stale).await
}

/// The pool's relay task: runs until `done`, woken by `wake` (a local
/// finish of a flow member) or every [`SWEEP_EVERY`].
pub(crate) async fn run(
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn FlowStore>,
    queues: Vec<String>,
    wake: Arc<Notify>,
    done: CancellationToken,
) {
    let mut err_delay = Duration::from_millis(100);
    let mut last_sweep = tokio::time::Instant::now();
    let mut stopping = false;
    loop {
        let pass = async {
            let mut n = relay_once(&*queue, &*store, &queues).await?;
            while n == TAKE {
                n = relay_once(&*queue, &*store, &queues).await?;
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                sweep_stale(&*queue, &*store).await?;
                last_sweep = tokio::time::Instant::now();
            }
            Ok::<(), Error>(())
        };
        let wait = match pass.await {
            Ok(()) => {
                err_delay = Duration::from_millis(100);
                SWEEP_EVERY
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?err_delay, "workflow relay: could not apply ended steps");
                let d = err_delay;
                err_delay = (err_delay * 2).min(Duration::from_secs(5));
                d
            }
        };
        if stopping {
            return;
        }
        // Stopping: one more pass for what the pool's last acks ended.
        tokio::select! {
            _ = done.cancelled() => stopping = true,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::memory::MemoryQueue;
    use crate::queue::{forward_fns, BoxFuture, NewJob, QueueInspect};
    use crate::vocab::JobId;
    use crate::Workflow;

    // Only its payload type is used: the steps are enqueued, not run.
    #[allow(dead_code)]
    #[crate::job(crate = crate, register = false, name = "flow.relay.test.step")]
    async fn relay_step(seq: u64) -> Result<u64, crate::JobError> {
        Ok(seq)
    }

    /// A `MemoryQueue` that records the size of each `enqueue_many`.
    struct Recording {
        inner: MemoryQueue,
        calls: Mutex<Vec<usize>>,
    }

    impl JobQueue for Recording {
        forward_fns!(s => &s.inner; fetch, finish, extend_leases, report_progress, waiter, now, payload_format,
            schedule_store, presence, flow_store);

        fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
            self.calls.lock().unwrap().push(jobs.len());
            self.inner.enqueue_many(jobs)
        }
    }

    #[tokio::test]
    async fn a_wide_release_is_enqueued_and_reported_a_part_at_a_time() {
        let q = Recording { inner: MemoryQueue::new(), calls: Mutex::new(Vec::new()) };
        let width = 2 * RELEASE_CHUNK as u64 + 7;
        let flow = (0..width).fold(Workflow::new("wide"), |f, i| f.step(format!("s{i}"), RelayStep { seq: i }));
        flow.enqueue(&q).await.unwrap();
        assert_eq!(*q.calls.lock().unwrap(), [RELEASE_CHUNK, RELEASE_CHUNK, 7]);
        // Every step is pending in its queue, and reported released.
        assert_eq!(q.inner.stats().await.unwrap().queue("default").pending, width);
        let info = q.inner.flow_store().unwrap().flow("wide").await.unwrap().unwrap();
        assert_eq!(info.members.len() as u64, width);
        assert!(info.members.iter().all(|m| m.status == crate::MemberStatus::Released), "{:?}", info.members);
    }
}
