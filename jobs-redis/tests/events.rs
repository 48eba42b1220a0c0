//! Job events on Redis beyond the conformance suite: the stream's bound and
//! the gap a reader behind it is told about.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::{EventCursor, EventFilter, EventStream};
use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

#[jobs_core::job(queue = "evbound")]
async fn tick(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// With a history of 10 events, 500 enqueues leave about 10 to 110 of them
/// (Redis trims the capped stream by whole nodes of 100 entries), the
/// newest ones, and a reader from before them is told it missed some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_capped_and_gaps_are_reported() {
    let prefix = jobs_core::testing::unique_queue("evbound");
    let q =
        RedisQueue::from_config(&RedisConfig { prefix, event_history: 10, ..RedisConfig::new(shared_server_url()) })
            .await
            .unwrap();
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let ids = Tick::enqueue_all(&q, (0..500).map(|n| Tick { n })).await.unwrap();
    let page = q.read_events("evbound", &l.cursor, 1000).await.unwrap();
    assert!(page.missed, "500 events cannot fit a history of 10");
    let n = page.events.len();
    assert!((10..=110).contains(&n), "{n} events kept");
    let got: Vec<_> = page.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[500 - n..].to_vec(), "the newest are kept, in order");
    // From the start of what is held, nothing is missed.
    let page = q.read_events("evbound", &EventCursor::start(), 1000).await.unwrap();
    assert!(!page.missed);
    let mut s = EventStream::resume(&q, EventFilter::queue("evbound"), l.cursor).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), s.next()).await.unwrap().unwrap();
    assert!(matches!(first, Err(jobs_core::Error::EventsMissed { .. })), "{first:?}");
}
