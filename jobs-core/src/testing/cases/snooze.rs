//! Snoozes (`JobError::retry_in`): back later, no attempt spent, bounded.

use crate::job::JobOptions;
use crate::queue::{JobQueue, QueueAdmin, QueueInspect};
use crate::testing::harness::{probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::JobStatus;

use super::{ms, put};

/// A job that snoozes once runs again after the snooze, as the same
/// attempt: its attempt count and retries are untouched (it has none to
/// spare here), the snooze is in its attempt log with its reason and
/// duration, and no failure is counted.
pub async fn snooze_spends_no_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("snooze");
    // No retries at all: a snooze that cost an attempt would end it dead.
    let id = put(&q, &queue, 1, Act::SnoozeFirstRunMs(400), JobOptions::new().max_retries(0)).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1, "{info:?}");
    assert_eq!(info.snoozes, 1);
    let starts = probe(&queue).starts();
    assert_eq!(starts.iter().map(|s| s.attempt).collect::<Vec<_>>(), vec![1, 1], "both runs are attempt 1");
    let log = &info.attempt_log;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].attempt, log[0].snoozed_for, log[0].error.as_deref()),
        (1, Some(ms(400)), Some("not ready yet"))
    );
    assert_eq!((log[1].attempt, log[1].snoozed_for, log[1].error.as_deref()), (1, None, None));
    assert_eq!(info.last_error(), None, "a snooze is not an error");
    let stats = q.stats().await.unwrap().queue(&queue);
    assert_eq!((stats.processed, stats.failed), (1, 0));
}

/// A snoozed job waits until its due time on the backend's clock: it is
/// scheduled meanwhile, and its next run starts no earlier.
pub async fn snooze_due_time_is_honoured<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("snoozedue");
    let id = put(&q, &queue, 1, Act::SnoozeFirstRunMs(600), JobOptions::new()).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let snoozed = wait_status(&q, &id, JobStatus::Scheduled).await;
    let now = q.now().await.unwrap();
    let due = snoozed.run_at.expect("a snoozed job shows when it is due");
    assert!(due > now, "due {due:?} is not after now {now:?}");
    wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let starts = probe(&queue).starts();
    assert_eq!(starts.len(), 2);
    let gap = starts[1].at.duration_since(starts[0].at);
    assert!(gap >= ms(590), "ran again after {gap:?}, before its snooze of 600 ms was over");
}

/// Snoozes are bounded: the snooze past the pool's `max_snoozes` ends the
/// job dead with an error that says why, and it runs no more.
pub async fn snooze_past_the_limit_ends_dead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("snoozecap");
    let id = put(&q, &queue, 1, Act::SnoozeAlwaysMs(5), JobOptions::new()).await;
    let pool = test_pool(q.clone(), &[&queue]).max_snoozes(3).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Dead).await;
    pool.shutdown().await.unwrap();
    // Three snoozes allowed, the fourth ends it.
    assert_eq!(probe(&queue).start_count(), 4);
    assert_eq!((info.attempts, info.snoozes), (1, 4), "{info:?}");
    let error = info.last_error().expect("the dead job says why");
    assert!(error.contains("snoozed more than 3 times"), "{error}");
    assert!(error.contains("snoozed for 5ms"), "the last reason is kept: {error}");
    assert_eq!(info.attempt_log.iter().filter(|a| a.snoozed_for.is_some()).count(), 3);
    assert_eq!(q.dead_jobs(&queue, 10).await.unwrap()[0].id, id);
}
