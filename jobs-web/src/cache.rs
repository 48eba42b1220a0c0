//! A small keyed cache of backend reads with a time to live, so that many
//! dashboards polling the API every few seconds cost the backend one read
//! per key and TTL, whatever the number of browsers.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::{Duration, Instant};

use jobs_core::Error;
use tokio::sync::Mutex;

/// Past this many keys, expired entries are dropped (and all entries when
/// none has expired). Callers keep their keys to a small fixed set (the
/// throughput cache: the backend's queues times the fixed windows), so this
/// is a backstop, not an eviction policy.
const MAX_KEYS: usize = 256;

/// Values by key, each reused for the TTL after it was read.
pub(crate) struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new() -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()) }
    }

    /// The value of `key` when younger than `ttl`, else `load()`'s (stored
    /// when it succeeds). Loads run one at a time: concurrent requests for
    /// the same key wait for the first and share its read.
    pub(crate) async fn get_or_load<F, Fut>(&self, key: K, ttl: Duration, load: F) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        let mut entries = self.entries.lock().await;
        if let Some((at, v)) = entries.get(&key) {
            if at.elapsed() < ttl {
                return Ok(v.clone());
            }
        }
        let v = load().await?;
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forgets every entry (after an action changed what they describe).
    pub(crate) async fn clear(&self) {
        self.entries.lock().await.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuses_within_the_ttl_and_reloads_after() {
        let cache = TtlCache::<u8, u32>::new();
        let ttl = Duration::from_secs(3600);
        assert_eq!(cache.get_or_load(1, ttl, || async { Ok(10) }).await.ok(), Some(10));
        assert_eq!(cache.get_or_load(1, ttl, || async { Ok(11) }).await.ok(), Some(10), "cached");
        assert_eq!(cache.get_or_load(2, ttl, || async { Ok(20) }).await.ok(), Some(20), "per key");
        assert_eq!(cache.get_or_load(1, Duration::ZERO, || async { Ok(12) }).await.ok(), Some(12), "expired");
        cache.clear().await;
        assert_eq!(cache.get_or_load(2, ttl, || async { Ok(21) }).await.ok(), Some(21), "cleared");
        let failed = cache.get_or_load(3, ttl, || async { Err(Error::Backend("x".into())) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.get_or_load(3, ttl, || async { Ok(30) }).await.ok(), Some(30), "errors are not cached");
    }

    #[tokio::test]
    async fn stays_bounded() {
        let cache = TtlCache::<usize, usize>::new();
        for k in 0..MAX_KEYS * 3 {
            cache.get_or_load(k, Duration::from_secs(3600), || async move { Ok(k) }).await.ok();
        }
        assert!(cache.entries.lock().await.len() <= MAX_KEYS);
    }
}
