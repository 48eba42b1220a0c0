//! The jobs a pool is running, with their lease tokens and cancel signals.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::vocab::JobId;

struct Entry {
    token: u64,
    cancel: CancellationToken,
}

/// Running jobs by id, with their lease tokens and cancel signals.
#[derive(Default)]
pub(crate) struct InFlight {
    map: Mutex<HashMap<JobId, Entry>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        // Every critical section is a single map operation: never left torn.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, id: JobId, token: u64, cancel: CancellationToken) {
        self.lock().insert(id, Entry { token, cancel });
    }

    /// Removes a finished job; `false` when it is not (or no longer) this
    /// lease's, so its result must not be reported.
    pub(crate) fn remove(&self, id: &JobId, token: u64) -> bool {
        let mut m = self.lock();
        match m.get(id) {
            Some(e) if e.token == token => {
                m.remove(id);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn snapshot(&self) -> Vec<(JobId, u64)> {
        self.lock().iter().map(|(id, e)| (id.clone(), e.token)).collect()
    }

    /// Signals one job's `JobContext::cancelled()`.
    pub(crate) fn cancel(&self, id: &JobId, token: u64) {
        if let Some(e) = self.lock().get(id).filter(|e| e.token == token) {
            e.cancel.cancel();
        }
    }

    /// Signals every running job's `JobContext::cancelled()`.
    pub(crate) fn cancel_all(&self) {
        for e in self.lock().values() {
            e.cancel.cancel();
        }
    }
}
