//! Caller ids and job keys in `MemoryQueue` (`JobOptions::id`, `key`): the
//! indexes from an id or key to the job that holds it, and the replacement
//! of a waiting job by a keyed enqueue.

use std::collections::HashMap;
use std::time::SystemTime;

use super::events::emit;
use super::{QueueState, Record, State};
use crate::error::Error;
use crate::events::EventKind;
use crate::queue::{IfExists, KeyMode, NewJob};
use crate::vocab::{JobId, JobStatus};

/// Who holds each caller id and key.
#[derive(Default)]
pub(super) struct Idents {
    /// (queue, caller id) → the stored job with it.
    ids: HashMap<(String, String), JobId>,
    /// (queue, job name, key) → the job that took the key last (it holds
    /// it while it waits).
    keys: HashMap<(String, String, String), JobId>,
}

/// What an enqueue does with a job whose id or key is held.
pub(super) enum Held {
    /// Nothing: return this stored job's id.
    Existing(JobId),
    /// Replace this waiting job with the new one, and return its id.
    Replace(JobId),
}

fn id_key(j: &NewJob) -> Option<(String, String)> {
    j.caller_id.as_ref().map(|c| (j.queue().to_owned(), c.id.clone()))
}

fn key_key(j: &NewJob) -> Option<(String, String, String)> {
    j.key.as_ref().map(|k| (j.queue().to_owned(), j.name.clone(), k.key.clone()))
}

/// A job that has not started yet: pending or scheduled with no attempt
/// counted.
fn waiting(r: &Record) -> bool {
    matches!(r.status, JobStatus::Pending | JobStatus::Scheduled) && r.attempts == 0
}

impl Idents {
    /// The first job of a batch whose caller id is held and that asked to
    /// fail then, as the error; checked before anything is written.
    pub(super) fn conflict(&self, jobs: &HashMap<JobId, Record>, batch: &[NewJob]) -> Result<(), Error> {
        for j in batch {
            let (Some(c), Some(k)) = (&j.caller_id, id_key(j)) else { continue };
            if c.if_exists != IfExists::Fail {
                continue;
            }
            if let Some(held) = self.ids.get(&k).filter(|id| jobs.contains_key(id)) {
                return Err(Error::IdExists { caller_id: c.id.clone(), existing: held.clone() });
            }
        }
        Ok(())
    }

    /// Whether job `j`'s id or key is held, and what to do then.
    pub(super) fn held(&self, jobs: &HashMap<JobId, Record>, j: &NewJob) -> Option<Held> {
        if let Some(held) = id_key(j).and_then(|k| self.ids.get(&k)).filter(|id| jobs.contains_key(id)) {
            return Some(Held::Existing(held.clone()));
        }
        let mode = j.key.as_ref()?.mode;
        let held = key_key(j).and_then(|k| self.keys.get(&k)).filter(|id| jobs.get(id).is_some_and(waiting))?;
        Some(match mode {
            KeyMode::Keep => Held::Existing(held.clone()),
            KeyMode::Replace => Held::Replace(held.clone()),
        })
    }

    /// Records that the newly stored job `j` holds its id and key.
    pub(super) fn register(&mut self, j: &NewJob) {
        if let Some(k) = id_key(j) {
            self.ids.insert(k, j.id.clone());
        }
        if let Some(k) = key_key(j) {
            self.keys.insert(k, j.id.clone());
        }
    }

    /// Lets go of the id and key of job `j`, which is being deleted.
    pub(super) fn forget(&mut self, j: &NewJob) {
        if let Some(k) = id_key(j) {
            if self.ids.get(&k) == Some(&j.id) {
                self.ids.remove(&k);
            }
        }
        if let Some(k) = key_key(j) {
            if self.keys.get(&k) == Some(&j.id) {
                self.keys.remove(&k);
            }
        }
    }
}

/// Replaces waiting job `id` by `new`: its payload, headers, priority,
/// retries, timeout, due time and expiry become `new`'s; its id, enqueue
/// time and caller id stay. A pending job whose priority stays keeps its
/// place in line.
pub(super) fn replace(st: &mut State, id: &JobId, mut new: NewJob, now: SystemTime, event_history: usize) {
    let Some(r) = st.jobs.get_mut(id) else { return };
    let q: &mut QueueState = st.queues.entry(id.queue().to_owned()).or_default();
    new.id = id.clone();
    new.enqueued_at = r.job.enqueued_at;
    new.caller_id = r.job.caller_id.take();
    let due = new.run_at.map(|w| w.resolve(now)).filter(|t| *t > now);
    let same_place = r.status == JobStatus::Pending
        && due.is_none()
        && r.job.priority == new.priority
        && r.job.group.as_ref().map(|g| &g.key) == new.group.as_ref().map(|g| &g.key);
    if !same_place {
        match (r.status, r.run_at) {
            (JobStatus::Scheduled, Some(t)) => {
                q.scheduled.remove(&(t, id.clone()));
            }
            // Linear in the list's length: only when the replacement moves
            // a pending job to another list.
            _ => q.ready.remove(id, r.job.priority.rank(), r.job.group.as_ref(), now),
        }
        match due {
            Some(t) => {
                q.scheduled.insert((t, id.clone()));
                r.status = JobStatus::Scheduled;
            }
            None => {
                q.ready.push(id.clone(), new.priority.rank(), new.group.as_ref(), false);
                r.status = JobStatus::Pending;
            }
        }
        r.run_at = due;
    }
    r.expires_at = new.expires.map(|w| w.resolve(now));
    emit(&mut st.events, event_history, now, EventKind::Enqueued, id, &new.name, 0, Some("replaced"));
    r.job = new;
}
