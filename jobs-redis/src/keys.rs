//! The key layout: every key of one queue under one hash tag.
//!
//! A queue's keys are `<prefix>:{<queue>}:<name>`. Redis Cluster hashes only
//! the part between the first `{` and the next `}`, so every key of a queue
//! lands in the same slot and one Lua script may touch all of them. The
//! scripts receive the queue's key prefix ([`QueueKeys::base`]) as `KEYS[1]`
//! and build the other names from it, the way the functions below do; the
//! crate documentation lists every key with its type and lifecycle.
//!
//! Queue names cannot contain braces (see [`jobs_core::validate_queue_name`]),
//! and [`validate_prefix`] keeps them out of the prefix, so the hash tag is
//! always exactly the queue name.

use jobs_core::Error;

/// The key names of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    base: String,
}

impl QueueKeys {
    /// The keys of `queue` under `prefix` (both already validated).
    pub fn new(prefix: &str, queue: &str) -> Self {
        QueueKeys { base: format!("{prefix}:{{{queue}}}:") }
    }

    /// The common prefix `<prefix>:{<queue>}:` that scripts get as `KEYS[1]`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    /// List of ready job ulids of one priority rank (0 = critical).
    pub fn ready(&self, rank: usize) -> String {
        self.key(&format!("ready:{rank}"))
    }

    /// Hash of every job's record (ulid → record, written once at enqueue).
    pub fn jobs(&self) -> String {
        self.key("jobs")
    }

    /// Hash of every started (or delayed, or deduplicated) job's state
    /// (ulid → `status|rank|attempts|token|t1|t2|cancel|digest`).
    pub fn state(&self) -> String {
        self.key("state")
    }

    /// Hash of the ended attempts of jobs that failed at least once (ulid →
    /// JSON array).
    pub fn log(&self) -> String {
        self.key("log")
    }

    /// Hash of the results of succeeded jobs that returned one.
    pub fn result(&self) -> String {
        self.key("result")
    }

    /// Sorted set of delayed, scheduled and retrying jobs, by due time (ms).
    pub fn scheduled(&self) -> String {
        self.key("scheduled")
    }

    /// Sorted set of leases (one per fetch call, named by its token), by
    /// expiry (ms).
    pub fn leased(&self) -> String {
        self.key("leased")
    }

    /// List of the ulids a lease took.
    pub fn lease(&self, token: u64) -> String {
        self.key(&format!("lease:{token}"))
    }

    /// Hash of lease token → how many of its jobs still run under it.
    pub fn leases(&self) -> String {
        self.key("leases")
    }

    /// Sorted set of dead jobs, by time of death (ms).
    pub fn dead(&self) -> String {
        self.key("dead")
    }

    /// List of succeeded and cancelled jobs, newest first.
    pub fn done(&self) -> String {
        self.key("done")
    }

    /// String holding the ulid of the live job with this name and payload.
    pub fn unique(&self, digest: &str) -> String {
        self.key(&format!("uniq:{digest}"))
    }

    /// Hash of the queue's settings: `paused`, `max_jobs`, `priority_levels`.
    pub fn meta(&self) -> String {
        self.key("meta")
    }

    /// Hash of the queue's counters and gauges per priority rank.
    pub fn stats(&self) -> String {
        self.key("stats")
    }

    /// Counter of lease tokens.
    pub fn seq(&self) -> String {
        self.key("seq")
    }

    /// Pub/sub channel that wakes idle fetchers of the queue.
    pub fn wake(&self) -> String {
        self.key("wake")
    }
}

/// The set of every queue's name, read by `stats()`. It lives outside any
/// queue's slot, so it is written by its own command, never in a script.
pub fn queues_key(prefix: &str) -> String {
    format!("{prefix}:queues")
}

/// Checks an application prefix: 1 to 64 characters, no braces (they would
/// change the hash tag), no whitespace or control characters.
pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '{' && c != '}');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid Redis key prefix `{prefix}`: use 1 to 64 characters without braces or whitespace"
        )))
    }
}

/// The Redis Cluster slot of a key (what `CLUSTER KEYSLOT` answers): CRC16
/// of the hash tag when the key has a non-empty one, else of the whole key,
/// modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter().position(|&b| b == b'}').filter(|&close| close > 0).map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_spec() {
        // The check value given in the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        // Answers of a real `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"), "empty tag: the whole key");
    }

    #[test]
    fn every_key_of_a_queue_shares_one_slot() {
        let k = QueueKeys::new("jobs", "email");
        assert_eq!(k.ready(0), "jobs:{email}:ready:0");
        let all = [
            k.base().to_owned(),
            k.ready(0),
            k.ready(3),
            k.jobs(),
            k.state(),
            k.log(),
            k.result(),
            k.lease(42),
            k.leases(),
            k.scheduled(),
            k.leased(),
            k.dead(),
            k.done(),
            k.unique("ab12"),
            k.meta(),
            k.stats(),
            k.seq(),
            k.wake(),
        ];
        let slot = key_slot(b"email");
        for key in &all {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
        // Another queue is (here) another slot: the tag really is the queue.
        assert_ne!(key_slot(QueueKeys::new("jobs", "default").meta().as_bytes()), slot);
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(validate_prefix("jobs").is_ok());
        assert!(validate_prefix("app.jobs:v2").is_ok());
        for bad in ["", "a{b", "a}b", "a b", &"x".repeat(65)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
