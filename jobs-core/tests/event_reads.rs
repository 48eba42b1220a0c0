//! How often an `EventStream` reads its backend: while events keep coming,
//! at most once a millisecond; after a quiet spell, at once. On tokio's
//! paused clock, so the times compared are exact and nothing really waits.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::{EventFilter, EventStream, JobEvent};
use tokio::time::Instant;

const QUEUE: &str = "event_reads";

#[job(queue = "event_reads")]
async fn note(n: u32) -> Result<(), JobError> {
    let _ = n;
    Ok(())
}

async fn next(stream: &mut EventStream) -> JobEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_busy_stream_reads_once_a_millisecond_and_a_quiet_one_at_once() {
    let q = MemoryQueue::new();
    let mut stream = EventStream::open(&q, EventFilter::queue(QUEUE)).await.unwrap();

    // The first event after a quiet spell: read as soon as it is recorded.
    Note { n: 1 }.enqueue(&q).await.unwrap();
    let sent = Instant::now();
    next(&mut stream).await;
    let first = Instant::now();
    assert_eq!(first - sent, Duration::ZERO, "read at once");

    // The next, right after a read that found one: read a millisecond
    // after that read, with the one recorded meanwhile.
    Note { n: 2 }.enqueue(&q).await.unwrap();
    Note { n: 3 }.enqueue(&q).await.unwrap();
    let (two, three) = (next(&mut stream).await, next(&mut stream).await);
    assert!(Instant::now() - first >= Duration::from_millis(1), "held back while busy");
    assert_ne!(two.job, three.job);

    // Quiet again: the next event is read at once.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Note { n: 4 }.enqueue(&q).await.unwrap();
    let sent = Instant::now();
    next(&mut stream).await;
    assert_eq!(Instant::now() - sent, Duration::ZERO, "read at once after a quiet spell");
}
