//! The job names of events whose entry names none.
//!
//! A finish does not read a job's record for its name (see "Job events" in
//! `common.lua`): Redis is the bottleneck, and the reader saw the name in
//! the job's `started` event moments before. Each handle keeps the names of
//! the jobs its readers saw last; the few it misses (jobs started before
//! the reader came) are read from their records, in one `HMGET` per page.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use jobs_core::{JobEvent, JobId};

use crate::queue::lock;

/// How many job names a handle remembers: more than the jobs a pool runs
/// at once, so that a job's end finds the name its start recorded.
const KEPT: usize = 65_536;

/// The names of jobs a handle's readers saw last, oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    inner: Mutex<Names>,
}

#[derive(Debug, Default)]
struct Names {
    by_job: HashMap<JobId, Arc<str>>,
    order: VecDeque<JobId>,
}

impl NameCache {
    /// Notes the names `events` carry and fills in those they lack from
    /// what was noted; returns the positions still without a name.
    pub(crate) fn fill(&self, events: &mut [JobEvent]) -> Vec<usize> {
        let mut names = lock(&self.inner);
        let mut missing = Vec::new();
        for (i, e) in events.iter_mut().enumerate() {
            if !e.name.is_empty() {
                names.note(&e.job, &e.name);
            } else if let Some(n) = names.by_job.get(&e.job) {
                e.name = n.to_string();
            } else {
                missing.push(i);
            }
        }
        missing
    }

    /// Notes names read from the jobs' records.
    pub(crate) fn note(&self, found: &[(&JobId, &str)]) {
        let mut names = lock(&self.inner);
        for (job, name) in found {
            names.note(job, name);
        }
    }
}

impl Names {
    fn note(&mut self, job: &JobId, name: &str) {
        if self.by_job.contains_key(job) {
            return;
        }
        if self.order.len() >= KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_job.remove(&old);
            }
        }
        self.by_job.insert(job.clone(), Arc::from(name));
        self.order.push_back(job.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use jobs_core::{EventCursor, EventKind};

    use super::*;

    fn event(job: &JobId, name: &str) -> JobEvent {
        JobEvent {
            cursor: EventCursor::start(),
            kind: EventKind::Started,
            job: job.clone(),
            name: name.to_owned(),
            attempt: 1,
            at: SystemTime::UNIX_EPOCH,
            detail: None,
            progress: None,
        }
    }

    #[test]
    fn a_name_seen_once_names_the_later_events_of_its_job() {
        let cache = NameCache::default();
        let (a, b) = (JobId::new("q"), JobId::new("q"));
        let mut page = vec![event(&a, "send"), event(&a, ""), event(&b, "")];
        assert_eq!(cache.fill(&mut page), vec![2], "only b's name is unknown");
        assert_eq!(page[1].name, "send");
        cache.note(&[(&b, "resize")]);
        let mut later = vec![event(&b, ""), event(&a, "")];
        assert!(cache.fill(&mut later).is_empty());
        assert_eq!((later[0].name.as_str(), later[1].name.as_str()), ("resize", "send"));
    }
}
