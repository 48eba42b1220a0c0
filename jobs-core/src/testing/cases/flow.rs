//! Flow control: how many of a queue's jobs run at once, across pools.

use crate::error::Error;
use crate::queue::{JobQueue, QueueAdmin, QueueInspect, QueuePolicy};
use crate::testing::harness::{probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::JobStatus;

use super::put1;

/// A queue's `max_running` holds across pools: two pools of four workers
/// never run more than two of its jobs at once, yet reach two; the policy
/// reads back as set, a bound of 0 is refused, and removing the bound
/// lets the pools run as many as they have workers.
pub async fn max_running_bounds_the_queue_across_pools<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("maxrunning");
    let bounded = QueuePolicy { max_running: Some(2), ..Default::default() };
    q.set_policy(&queue, bounded.clone()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), bounded);
    let zero = QueuePolicy { max_running: Some(0), ..Default::default() };
    assert!(matches!(q.set_policy(&queue, zero).await, Err(Error::InvalidArgument(_))));
    assert_eq!(q.policy(&queue).await.unwrap(), bounded, "a refused policy changes nothing");

    let mut ids = Vec::new();
    for seq in 0..10 {
        ids.push(put1(&q, &queue, seq, Act::SleepMs(40)).await);
    }
    let a = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    let b = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    for id in &ids {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    let p = probe(&queue);
    assert_eq!(p.start_count(), 10, "each job ran once");
    assert_eq!(p.peak_running(), 2, "at most max_running at once, and the bound was reached");

    // Without the bound, the eight workers run eight at once.
    q.set_policy(&queue, QueuePolicy::default()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), QueuePolicy::default());
    let wide = unique_queue("maxrunning-off");
    let c = test_pool(q.clone(), &[&wide]).workers(8).start().unwrap();
    let mut ids = Vec::new();
    for seq in 0..8 {
        ids.push(put1(&q, &wide, seq, Act::SleepMs(300)).await);
    }
    for id in &ids {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    assert!(probe(&wide).peak_running() > 2, "no bound: more than two at once");
    for pool in [a, b, c] {
        pool.shutdown().await.unwrap();
    }
}
