//! [`MemoryQueue`]'s progress writes: stored on the running job's record
//! under its lease's token, with a `progress` event.

use super::events::emit_progress;
use super::MemoryQueue;
use crate::error::Error;
use crate::queue::{check_progress, Progress, ProgressUpdate, ProgressWrite};
use crate::vocab::JobStatus;

impl MemoryQueue {
    pub(super) fn report_progress_now(&self, update: &ProgressUpdate) -> Result<ProgressWrite, Error> {
        check_progress(update)?;
        let now = self.clock();
        let cap = self.event_history();
        let mut st = self.lock();
        let st = &mut *st;
        let Some(r) = st.jobs.get_mut(&update.id) else { return Ok(ProgressWrite::Stale) };
        if r.status != JobStatus::Running || r.token != update.token {
            return Ok(ProgressWrite::Stale);
        }
        r.progress =
            Some(Progress { fraction: update.fraction, note: update.note.clone(), at: now, attempt: r.attempts });
        emit_progress(&mut st.events, cap, now, &update.id, &r.job.name, r.attempts, update.fraction, &update.note);
        Ok(ProgressWrite::Stored)
    }
}
