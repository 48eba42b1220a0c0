//! [`MemoryQueue`](super::MemoryQueue)'s retention: finished records
//! deleted by age and by count, with each queue's own bounds over the
//! store's, and archived first when the queue archives.

use std::time::SystemTime;

use super::hot::forget;
use super::{info, QueueState, State, SWEEP_BATCH};
use crate::queue::Retention;
use crate::vocab::{JobId, JobStatus};

/// The bounds of a queue and how many of its records may go now: all of
/// them, unless it archives, then as many as its backlog has room for.
fn bounds(q: Option<&QueueState>, base: &Retention) -> (Retention, usize) {
    match q {
        Some(q) => {
            let room = if q.policy.archive { q.archive.room() } else { usize::MAX };
            (q.policy.retention.over(base), room)
        }
        None => (*base, usize::MAX),
    }
}

/// Deletes a record, archiving it first when its queue archives; adds the
/// queue to `archived` then.
fn drop_record(st: &mut State, id: &JobId, now: SystemTime, archived: &mut Vec<String>) {
    if let (Some(r), Some(q)) = (st.jobs.get(id), st.queues.get_mut(id.queue())) {
        if q.policy.archive {
            q.archive.push(info(r), now);
            if !archived.iter().any(|a| a == id.queue()) {
                archived.push(id.queue().to_owned());
            }
        }
    }
    forget(st, id);
}

/// Drops the oldest dead jobs of a queue past its count bound, with their
/// deduplication entries; adds the queue to `archived` when it archived
/// them.
pub(super) fn trim_dead(st: &mut State, queue: &str, base: &Retention, now: SystemTime, archived: &mut Vec<String>) {
    let (retention, room) = bounds(st.queues.get(queue), base);
    let Some(q) = st.queues.get_mut(queue) else { return };
    let mut gone = Vec::new();
    while q.dead.len() > retention.dead_max && gone.len() < room {
        match q.dead.pop_first() {
            Some((_, id)) => gone.push(id),
            None => break,
        }
    }
    for id in gone {
        drop_record(st, &id, now, archived);
    }
}

/// Deletes succeeded, cancelled and expired records past their queue's
/// retention by age or count, and dead ones past their age, oldest first,
/// at most [`SWEEP_BATCH`] of each kind per queue and call (fewer when an
/// archiving queue's backlog is nearly full); adds the queues whose
/// backlogs it added to to `archived`.
pub(super) fn sweep(st: &mut State, now: SystemTime, base: &Retention, archived: &mut Vec<String>) {
    let mut gone = Vec::new();
    let State { finished, queues, .. } = st;
    finished.by_queue.retain(|name, q| {
        let (retention, room) = bounds(queues.get(name), base);
        for _ in 0..SWEEP_BATCH.min(room) {
            let Some((t, _)) = q.front() else { break };
            let old = now.duration_since(*t).unwrap_or_default() >= retention.succeeded;
            if !old && q.len() <= retention.succeeded_max {
                break;
            }
            if let Some((_, id)) = q.pop_front() {
                gone.push(id);
            }
        }
        !q.is_empty()
    });
    for id in gone {
        // The record may have been retried or purged since.
        if st
            .jobs
            .get(&id)
            .is_some_and(|r| matches!(r.status, JobStatus::Succeeded | JobStatus::Cancelled | JobStatus::Expired))
        {
            drop_record(st, &id, now, archived);
        }
    }
    let mut expired = Vec::new();
    for q in st.queues.values_mut() {
        let (retention, room) = bounds(Some(q), base);
        let Some(horizon) = now.checked_sub(retention.dead_age) else { continue };
        let mut taken = 0;
        while let Some((t, _)) = q.dead.first() {
            if *t > horizon || expired.len() >= SWEEP_BATCH || taken >= room {
                break;
            }
            if let Some((_, id)) = q.dead.pop_first() {
                expired.push(id);
                taken += 1;
            }
        }
    }
    for id in expired {
        drop_record(st, &id, now, archived);
    }
}
