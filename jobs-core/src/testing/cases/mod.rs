//! The behaviours, one async fn each, generic over the backend.
#![allow(missing_docs)]

mod admin;
mod archive;
mod breaker;
mod enqueue;
mod events;
mod expiry;
mod failure;
mod flow;
mod groups;
mod hooks;
mod idents;
mod lease;
mod limits;
mod prefetch;
mod progress;
mod run;
mod schedule;
mod schedule_rules;
mod snooze;
mod workflows;

pub use admin::*;
pub use archive::*;
pub use breaker::*;
pub use enqueue::*;
pub use events::*;
pub use expiry::*;
pub use failure::*;
pub use flow::*;
pub use groups::*;
pub use hooks::*;
pub use idents::*;
pub use lease::*;
pub use limits::*;
pub use prefetch::*;
pub use progress::*;
pub use run::*;
pub use schedule::*;
pub use schedule_rules::*;
pub use snooze::*;
pub use workflows::*;

use std::time::Duration;

use super::jobs::{Act, ProbeJob};
use crate::job::{JobExt, JobOptions};
use crate::queue::{JobQueue, NewJob};
use crate::vocab::JobId;

pub(crate) fn probe_job(key: &str, seq: u64, act: Act) -> ProbeJob {
    ProbeJob { key: key.to_owned(), seq, act }
}

/// Enqueues a probe job on `queue` with extra options.
pub(crate) async fn put<Q: JobQueue + ?Sized>(q: &Q, queue: &str, seq: u64, act: Act, opts: JobOptions) -> JobId {
    probe_job(queue, seq, act).enqueue_with(q, opts.queue(queue)).await.expect("enqueue works")
}

/// Enqueues a probe job with default options; the probe key is the queue.
pub(crate) async fn put1<Q: JobQueue + ?Sized>(q: &Q, queue: &str, seq: u64, act: Act) -> JobId {
    put(q, queue, seq, act, JobOptions::new()).await
}

/// A fetch of at most `max` jobs of `queue`: a 30 s lease, 3 retries for
/// jobs that carry none, the default crash budget.
pub fn fetch_of(queue: &str, max: usize) -> crate::queue::FetchRequest {
    crate::queue::FetchRequest {
        queues: vec![queue.to_owned()],
        max,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
    }
}

/// A job written around the typed API: any name, any payload bytes.
pub(crate) fn raw_job(queue: &str, name: &str, payload: &[u8]) -> NewJob {
    NewJob { max_retries: Some(0), ..NewJob::new(JobId::new(queue), name, payload.to_vec()) }
}

/// Runs the jobs `ids` of `queue` in two pools of four workers until each
/// succeeded, then shuts the pools down.
pub(crate) async fn run_in_two_pools<Q: JobQueue + crate::queue::QueueInspect + Clone>(
    q: &Q,
    queue: &str,
    ids: &[JobId],
) {
    let a = super::harness::test_pool(q.clone(), &[queue]).workers(4).start().unwrap();
    let b = super::harness::test_pool(q.clone(), &[queue]).workers(4).start().unwrap();
    for id in ids {
        super::harness::wait_status(q, id, crate::vocab::JobStatus::Succeeded).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
