//! The job names of events whose entry names none.
//!
//! A finish does not read a job's record for its name (see "Job events" in
//! `common.lua`): Redis is the bottleneck, and the reader saw the name in
//! the job's `started` event moments before. Each handle keeps the names of
//! the jobs its readers saw start last; the few it misses (jobs started
//! before the reader came, a waiting job cancelled) are read from their
//! records, in one `HMGET` per page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jobs_core::{EventKind, JobEvent};

use crate::queue::lock;

/// Slots per queue (a power of two): many more than the jobs a pool runs
/// at once, so that a job's end mostly finds the name its start noted.
const SLOTS: usize = 1 << 15;

/// The names of jobs a handle's readers saw start last, per queue.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    inner: Mutex<HashMap<String, Names>>,
}

/// One queue's, by ulid (a queue's ids differ by their ulid alone), in a
/// table with one place per ulid: a job noted later takes the place of an
/// earlier one that maps to the same place, and the earlier one's name is
/// then read from its record if it is asked for. Noting and finding a name
/// cost one look at one slot, with nothing to keep in order.
#[derive(Debug)]
struct Names {
    slots: Vec<Option<(u128, Arc<str>)>>,
    /// The name noted last: jobs seen in a row mostly share it, and then
    /// share its allocation.
    last: Option<Arc<str>>,
}

impl Default for Names {
    fn default() -> Self {
        Names { slots: vec![None; SLOTS], last: None }
    }
}

impl NameCache {
    /// Notes the names `events` (all of `queue`) carry and fills in those
    /// they lack from what was noted; returns the positions still without
    /// a name.
    pub(crate) fn fill(&self, queue: &str, events: &mut [JobEvent]) -> Vec<usize> {
        let mut all = lock(&self.inner);
        let names = match all.get_mut(queue) {
            Some(n) => n,
            None => all.entry(queue.to_owned()).or_default(),
        };
        let mut missing = Vec::new();
        for (i, e) in events.iter_mut().enumerate() {
            let ulid = u128::from(e.job.ulid());
            if !e.name.is_empty() {
                // A job's later unnamed events follow its start; its name
                // at enqueue would mostly sit in the table through its wait
                // (and take the places of the jobs running meanwhile).
                if e.kind != EventKind::Enqueued {
                    names.note(ulid, &e.name);
                }
            } else if let Some(n) = names.find(ulid) {
                e.name = n.to_owned();
            } else {
                missing.push(i);
            }
        }
        missing
    }

    /// Notes names of `queue`'s jobs read from their records.
    pub(crate) fn note(&self, queue: &str, found: &[(u128, &str)]) {
        let mut all = lock(&self.inner);
        let names = all.entry(queue.to_owned()).or_default();
        for (ulid, name) in found {
            names.note(*ulid, name);
        }
    }
}

impl Names {
    fn note(&mut self, ulid: u128, name: &str) {
        let shared = match &self.last {
            Some(last) if &**last == name => last.clone(),
            _ => {
                let new: Arc<str> = Arc::from(name);
                self.last = Some(new.clone());
                new
            }
        };
        self.slots[place(ulid)] = Some((ulid, shared));
    }

    fn find(&self, ulid: u128) -> Option<&str> {
        match &self.slots[place(ulid)] {
            Some((u, name)) if *u == ulid => Some(name),
            _ => None,
        }
    }
}

/// A ulid's place: Fibonacci hashing of its low 64 bits (random, or
/// counting up within a millisecond), top bits kept.
fn place(ulid: u128) -> usize {
    // Truncation intended: the low 64 bits, then the top 16 of their hash.
    let low = ulid as u64;
    (low.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use jobs_core::{EventCursor, EventKind, JobId};

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
        assert_eq!(cache.fill("q", &mut page), vec![2], "only b's name is unknown");
        assert_eq!(page[1].name, "send");
        cache.note("q", &[(u128::from(b.ulid()), "resize")]);
        let mut later = vec![event(&b, ""), event(&a, "")];
        assert!(cache.fill("q", &mut later).is_empty());
        assert_eq!((later[0].name.as_str(), later[1].name.as_str()), ("resize", "send"));
        // Another queue's cache is its own.
        let mut other = vec![event(&JobId::from_parts("r", a.ulid()), "")];
        assert_eq!(cache.fill("r", &mut other), vec![0]);
    }

    /// A name seen at enqueue is not kept: the job's later events follow
    /// its start, which names it again; one that never started (cancelled
    /// while waiting) is named from its record.
    #[test]
    fn names_are_kept_from_starts_not_from_enqueues() {
        let cache = NameCache::default();
        let (a, b) = (JobId::new("q"), JobId::new("q"));
        let enqueued = |job: &JobId| JobEvent { kind: EventKind::Enqueued, ..event(job, "send") };
        let mut page = vec![enqueued(&a), enqueued(&b), event(&a, "send")];
        assert!(cache.fill("q", &mut page).is_empty());
        let mut later = vec![event(&a, ""), JobEvent { kind: EventKind::Cancelled, ..event(&b, "") }];
        assert_eq!(cache.fill("q", &mut later), vec![1], "b never started: its name is read from its record");
        assert_eq!(later[0].name, "send");
    }
}
