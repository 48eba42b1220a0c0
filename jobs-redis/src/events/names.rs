//! The job names of events whose entry names none.
//!
//! A finish does not read a job's record for its name (see "Job events" in
//! `common.lua`): Redis is the bottleneck, and the reader saw the name in
//! the job's `started` event moments before. Each handle keeps the names of
//! the jobs its readers saw start last; the few it misses (jobs started
//! before the reader came, a waiting job cancelled) are read from their
//! records, in one `HMGET` per page.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use jobs_core::{EventKind, JobEvent};

use crate::queue::lock;

/// How many job names a handle remembers per queue: more than the jobs a
/// pool runs at once, so that a job's end finds the name its start
/// recorded.
const KEPT: usize = 65_536;

/// The names of jobs a handle's readers saw last, per queue, oldest
/// dropped first.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    inner: Mutex<HashMap<String, Names>>,
}

/// One queue's: by ulid (a queue's ids differ by their ulid alone).
#[derive(Debug, Default)]
struct Names {
    by_ulid: HashMap<u128, Arc<str>, BuildHasherDefault<UlidHasher>>,
    order: VecDeque<u128>,
    /// The name noted last: jobs seen in a row mostly share it, and then
    /// share its allocation.
    last: Option<Arc<str>>,
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
                // at enqueue would mostly sit in the cache through its wait
                // (and crowd out the names of the jobs running meanwhile).
                if e.kind != EventKind::Enqueued {
                    names.note(ulid, &e.name);
                }
            } else if let Some(n) = names.by_ulid.get(&ulid) {
                e.name = n.to_string();
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
        let Entry::Vacant(slot) = self.by_ulid.entry(ulid) else { return };
        let shared = match &self.last {
            Some(last) if &**last == name => last.clone(),
            _ => {
                let new: Arc<str> = Arc::from(name);
                self.last = Some(new.clone());
                new
            }
        };
        slot.insert(shared);
        self.order.push_back(ulid);
        if self.order.len() > KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_ulid.remove(&old);
            }
        }
    }
}

/// Hashes a ulid with one multiplication (Fibonacci hashing of its low 64
/// bits, random or counting up within a millisecond): a reader notes two
/// names per job, and SipHash over 16 bytes cost more than the rest of the
/// lookup.
#[derive(Debug, Default)]
struct UlidHasher(u64);

impl Hasher for UlidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only ulids are hashed (write_u128); anything else still spreads.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, ulid: u128) {
        let [a, b, c, d, e, f, g, h, ..] = ulid.to_le_bytes();
        self.0 = u64::from_le_bytes([a, b, c, d, e, f, g, h]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
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
