//! Orphaned schedules: stored schedules whose job no live pool can run (its
//! code was removed or renamed, and the schedule outlived it). They are shown
//! as such and skip their ticks instead of filling queues with jobs that
//! would only end in the dead-letter set; an operator removes them.

use std::collections::HashSet;

use crate::queue::ScheduleStore;

/// The job names the live pools can run, or `None` when that cannot be
/// told (no live pool, presence not kept by this backend, a pool that does
/// not report its jobs): then no schedule is called orphaned.
pub(crate) async fn runnable_jobs(queue: &dyn ScheduleStore) -> Option<HashSet<String>> {
    let presence = queue.presence()?;
    let pools = match presence.pools().await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "pool presence unavailable: orphaned schedules not checked");
            return None;
        }
    };
    if pools.is_empty() || pools.iter().any(|p| p.jobs.is_empty()) {
        return None;
    }
    Some(pools.into_iter().flat_map(|p| p.jobs).collect())
}

/// Whether a schedule of `job_name` is orphaned given [`runnable_jobs`].
pub(crate) fn is_orphaned(runnable: Option<&HashSet<String>>, job_name: &str) -> bool {
    runnable.is_some_and(|r| !r.contains(job_name))
}
