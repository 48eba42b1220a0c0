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

/// The held-back counters: a fetch that a queue's `max_running` cuts short
/// while jobs wait counts once in `limited`, one its `rate` cuts short once
/// in `throttled`; a fetch with room for every waiting job counts nothing,
/// and a group reaching its `concurrency` with jobs left counts in
/// `limited`.
pub async fn held_back_fetches_are_counted<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    use crate::job::{JobExt, JobOptions};

    let fetch = super::fetch_of;
    let held = |q: Q, queue: String| async move {
        let s = q.stats().await.unwrap();
        let c = s.queues.get(&queue).cloned().unwrap_or_default();
        (c.limited, c.throttled)
    };

    let bounded = unique_queue("limited");
    q.set_policy(&bounded, QueuePolicy { max_running: Some(1), ..Default::default() }).await.unwrap();
    for seq in 0..3 {
        put1(&q, &bounded, seq, Act::Succeed).await;
    }
    assert_eq!(q.fetch(&fetch(&bounded, 3)).await.unwrap().jobs.len(), 1, "one slot");
    assert_eq!(held(q.clone(), bounded.clone()).await, (1, 0), "the bound held two jobs back");

    let rated = unique_queue("throttled");
    let rate = "1/1h".parse().unwrap();
    q.set_policy(&rated, QueuePolicy { rate: Some(rate), ..Default::default() }).await.unwrap();
    for seq in 0..2 {
        put1(&q, &rated, seq, Act::Succeed).await;
    }
    assert_eq!(q.fetch(&fetch(&rated, 2)).await.unwrap().jobs.len(), 1, "one start in the window");
    assert_eq!(held(q.clone(), rated.clone()).await, (0, 1), "the rate held a job back");

    let free = unique_queue("unheld");
    q.set_policy(&free, QueuePolicy { max_running: Some(5), ..Default::default() }).await.unwrap();
    put1(&q, &free, 0, Act::Succeed).await;
    assert_eq!(q.fetch(&fetch(&free, 8)).await.unwrap().jobs.len(), 1);
    assert_eq!(held(q.clone(), free.clone()).await, (0, 0), "nothing waited");

    let grouped = unique_queue("glimited");
    for seq in 0..3 {
        let job = crate::testing::jobs::GroupedJob { key: grouped.clone(), group: "a".into(), seq, sleep_ms: 0 };
        job.enqueue_with(&q, JobOptions::new().queue(&grouped)).await.unwrap();
    }
    assert_eq!(q.fetch(&fetch(&grouped, 3)).await.unwrap().jobs.len(), 2, "the group's concurrency");
    assert_eq!(held(q.clone(), grouped.clone()).await, (1, 0), "the group's bound held a job back");
}
