//! The key layout: every key of one queue under one hash tag, and the one
//! place key names are built.
//!
//! A queue's keys are `<prefix>:{<queue>}:<name>`. Redis Cluster hashes only
//! the part between the first `{` and the next `}`, so every key of a queue
//! lands in the same slot and one Lua script may touch all of them. The
//! crate documentation lists every key with its type and lifecycle.
//!
//! **The rule.** Rust code builds key names only with the functions of this
//! module. A Lua script gets its queue's key prefix ([`QueueKeys::base`],
//! `<prefix>:{<queue>}:`) as `KEYS[1]` and derives every other name of the
//! queue by appending the suffix the matching function below appends
//! (`B .. 'jobs'`, `B .. 'ready:' .. rank`); on Redis Cluster a script also
//! declares [`QueueKeys::fence`] as `KEYS[2]`, which it never touches (see
//! `conn.rs`). `common.lua` states the same rule, and a unit test checks that
//! every suffix the scripts append is one built here. Keys outside any queue
//! (the queue index, schedules' index, pool presence) are never touched by a
//! script.
//!
//! Queue names cannot contain braces (see [`jobs_core::validate_queue_name`]),
//! and [`validate_prefix`] keeps them out of the prefix, so the hash tag is
//! always exactly the queue name.

use jobs_core::Error;

/// The key names of one queue, or of one partition of a partitioned queue.
///
/// Partition `n` (from 1) of queue `q` is a queue of its own under the hash
/// tag `{q~n~<salt>}` (a name no queue can take: `~` is not allowed in queue
/// names), so each partition may live on another Cluster master; partition
/// 0 is the queue's own layout, `{q}`. The salt places the partition's slot
/// (see [`partition_tag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    base: String,
    /// Where the queue's name starts in `base` (after `<prefix>:{`).
    queue_at: usize,
    /// The queue name's length (the tag may go on with `~<partition>~<salt>`).
    queue_len: usize,
    partition: u16,
}

impl QueueKeys {
    /// The keys of `queue` under `prefix` (both already validated).
    pub fn new(prefix: &str, queue: &str) -> Self {
        Self::of_partition(prefix, queue, 0)
    }

    /// The keys of partition `partition` of `queue` under `prefix`.
    pub fn of_partition(prefix: &str, queue: &str, partition: u16) -> Self {
        let base = match partition {
            0 => format!("{prefix}:{{{queue}}}:"),
            n => format!("{prefix}:{{{}}}:", partition_tag(queue, n)),
        };
        QueueKeys { base, queue_at: prefix.len() + 2, queue_len: queue.len(), partition }
    }

    /// The keys of the partition that stores job `id`.
    pub fn of_job(prefix: &str, id: &jobs_core::JobId) -> Self {
        Self::of_partition(prefix, id.queue(), id.partition())
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.base[self.queue_at..self.queue_at + self.queue_len]
    }

    /// The partition of the queue these keys name (0: the queue's own).
    pub fn partition(&self) -> u16 {
        self.partition
    }

    /// The hash tag: the queue's name, then `~<partition>` for a partition
    /// other than 0.
    pub fn tag(&self) -> &str {
        // `base` ends with the tag's `}` and the separating `:`.
        &self.base[self.queue_at..self.base.len() - 2]
    }

    /// The id of the job `ulid` stored under these keys.
    pub fn job_id(&self, ulid: ulid::Ulid) -> jobs_core::JobId {
        jobs_core::JobId::from_parts(self.queue(), ulid).in_partition(self.partition)
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

    /// Hash of the queue's settings: `paused`, `max_jobs`, `priority_levels`,
    /// ..., the retention overrides and `archive`, and the archive
    /// backlog's name and last position.
    pub fn meta(&self) -> String {
        self.key("meta")
    }

    /// Stream of the jobs the retention deleted while the queue archives
    /// (the archive backlog), entry ids `<position>-0`.
    pub fn archive(&self) -> String {
        self.key("archive")
    }

    /// String naming the archiver that holds the queue (expires with its
    /// lease).
    pub fn archiver(&self) -> String {
        self.key("archiver")
    }

    /// Hash of the queue's counters and gauges per priority rank.
    pub fn stats(&self) -> String {
        self.key("stats")
    }

    /// Counter of lease tokens.
    pub fn seq(&self) -> String {
        self.key("seq")
    }

    /// Pub/sub channel that wakes idle fetchers of the queue: one channel
    /// for all of a queue's partitions (every partition publishes on
    /// partition 0's, see `wake_fetchers` in `common.lua`), so a fetcher hears the
    /// partitions added after it subscribed.
    pub fn wake(&self) -> String {
        self.channel("wake")
    }

    /// The queue's channel `name`: partition 0's for every partition.
    fn channel(&self, name: &str) -> String {
        match self.partition {
            0 => self.key(name),
            _ => format!("{}{}}}:{name}", &self.base[..self.queue_at], self.queue()),
        }
    }

    /// Stream of the queue's job events (capped; written only while
    /// [`events_on`](Self::events_on) exists).
    pub fn events(&self) -> String {
        self.key("events")
    }

    /// String holding the events' history cap while someone listens (set
    /// with an expiry by every listener): scripts record events only while
    /// it exists.
    pub fn events_on(&self) -> String {
        self.key("events:on")
    }

    /// Pub/sub channel that wakes readers of the queue's events: one for
    /// all of a queue's partitions, as [`wake`](Self::wake).
    pub fn events_wake(&self) -> String {
        self.channel("events:wake")
    }

    /// Hash of ulid → the token of the running attempt whose handler is
    /// known to have started.
    pub fn started(&self) -> String {
        self.key("started")
    }

    /// Hash of ulid → how many leases the job lost before its handler was
    /// known to start.
    pub fn crash(&self) -> String {
        self.key("crash")
    }

    /// Hash of ulid → when the job expires (ms, server clock), for jobs
    /// enqueued with an expiry.
    pub fn expires(&self) -> String {
        self.key("expires")
    }

    /// Sorted set of the parked fetchers' ids, scored by when their
    /// listing lapses (ms, server clock): fetchers an enqueue hands its
    /// jobs to in its own step.
    pub fn parked(&self) -> String {
        self.key("parked")
    }

    /// Hash of a parked fetcher's id → its fetch's arguments.
    pub fn park(&self) -> String {
        self.key("park")
    }

    /// List a parked fetcher blocks on (BLPOP): the fetch an enqueue
    /// handed to it, packed.
    pub fn inbox(&self, id: &str) -> String {
        self.key(&format!("inbox:{id}"))
    }

    /// Hash of ulid → how many times the job snoozed.
    pub fn snooze(&self) -> String {
        self.key("snooze")
    }

    /// Hash of ulid → the last progress a running attempt reported
    /// (`fraction|at_ms|attempt|note`).
    pub fn progress(&self) -> String {
        self.key("progress")
    }

    /// Hash of caller id → the ulid of the stored job that has it
    /// (`JobOptions::id`).
    pub fn ids(&self) -> String {
        self.key("ids")
    }

    /// Hash of ulid → the job's caller id, for jobs that have one.
    pub fn caller_ids(&self) -> String {
        self.key("cid")
    }

    /// Hash of `<name length>:<name><key>` → the ulid of the job that took
    /// the key last (`JobOptions::key`; it holds the key while it waits).
    pub fn job_keys(&self) -> String {
        self.key("keys")
    }

    /// Hash of ulid → the job's `<name length>:<name><key>`, for jobs that
    /// have a key.
    pub fn key_of(&self) -> String {
        self.key("ckey")
    }

    /// Hash of ulid → `<concurrency>/<rate>:<group key>` of a grouped job
    /// (see `groups.lua`), deleted with the job's other fields.
    pub fn group(&self) -> String {
        self.key("group")
    }

    /// List of the pending jobs of one group and priority rank.
    pub fn group_ready(&self, rank: usize, group: &str) -> String {
        self.key(&format!("gq:{rank}:{group}"))
    }

    /// Sorted set of groups scored no lower than their pending jobs (the
    /// count as of each group's latest enqueue; listing the busiest
    /// corrects the scores it reads).
    pub fn group_waiting(&self) -> String {
        self.key("gwait")
    }

    /// Hash of group → its pending jobs. It, [`group_running`] and
    /// [`group_bounds`] also hold a field `''` that is no group's, whose
    /// long value keeps each a hash table.
    ///
    /// [`group_running`]: Self::group_running
    /// [`group_bounds`]: Self::group_bounds
    pub fn group_pending(&self) -> String {
        self.key("gpend")
    }

    /// Hash of group → its running jobs.
    pub fn group_running(&self) -> String {
        self.key("grun")
    }

    /// Hash of group → `<concurrency>/<rate>/<rank>`: its bound and rate
    /// (`<starts>,<window ms>`; each empty for none) and the most urgent
    /// priority rank that may hold its jobs.
    pub fn group_bounds(&self) -> String {
        self.key("gbound")
    }

    /// Sorted set of a group's recent starts, by time (for its rate).
    pub fn group_starts(&self, group: &str) -> String {
        self.key(&format!("grl:{group}"))
    }

    /// Sorted set of the groups held back by their rate, by when they may
    /// start again.
    pub fn group_held(&self) -> String {
        self.key("gheld")
    }

    /// Sorted set of the queue's recent starts, by time (for its rate).
    pub fn queue_starts(&self) -> String {
        self.key("qrl")
    }

    /// Sorted set of the failed attempts in the breaker's current window,
    /// by time.
    pub fn breaker_failures(&self) -> String {
        self.key("bfail")
    }

    /// Hash of the groups whose breaker is not closed: `open|<until ms>`
    /// or `probe|<job id>|<lease ms>` (see groups.lua).
    pub fn group_breakers(&self) -> String {
        self.key("gbrk")
    }

    /// Sorted set of a group's failed attempts in its breaker's current
    /// window, by time.
    pub fn group_failures(&self, group: &str) -> String {
        self.key(&format!("gbf:{group}"))
    }

    /// List of the groups served in turn (`''`: the ungrouped jobs).
    pub fn group_turn(&self) -> String {
        self.key("gturn")
    }

    /// Set of the groups in the turn.
    pub fn group_on(&self) -> String {
        self.key("gon")
    }

    /// Hash of the attempts that ended in the minute starting at `secs`
    /// (Unix time, a multiple of 60): `processed` and `failed`.
    pub fn minute(&self, secs: u64) -> String {
        self.key(&format!("minute:{secs}"))
    }

    /// Hash of the queue's workflow steps and batch jobs (ulid →
    /// `<flow id> <member>`).
    pub fn flow_refs(&self) -> String {
        self.key("flow")
    }

    /// Sorted set of the ulids of ended workflow steps and batch jobs not
    /// yet applied to their flow, by when a relay may take each (ms).
    pub fn flow_out(&self) -> String {
        self.key("flowout")
    }

    /// Hash of the recurring schedule `name`, whose jobs go to this queue.
    pub fn schedule(&self, name: &str) -> String {
        self.key(&format!("schedule:{name}"))
    }

    /// A key of the queue's slot that is never written: on Redis Cluster
    /// every script declares it beside [`base`](Self::base), so that a
    /// script is refused (`TRYAGAIN`) rather than run on half a queue while
    /// the slot migrates (see `conn.rs`).
    pub fn fence(&self) -> String {
        self.key("fence")
    }
}

/// The sorted set of partitioned queues: queue name → its number of
/// partitions (only ever raised, `ZADD GT`). Outside any queue's slot,
/// written and read by plain commands.
pub fn partitions_key(prefix: &str) -> String {
    format!("{prefix}:partitions")
}

/// The set of every queue's name, read by `stats()`. It lives outside any
/// queue's slot, so it is written by its own command, never in a script.
pub fn queues_key(prefix: &str) -> String {
    format!("{prefix}:queues")
}

/// The hash of schedule name → the queue its record lives under. The `:`
/// in its tag keeps it apart from every queue's slot.
pub fn schedule_index(prefix: &str) -> String {
    format!("{prefix}:{{:schedules}}")
}

/// The keys of the flow store (workflows and batches): a hash tag of their
/// own, `{:flows}`, which no queue name can take; its scripts derive every
/// name from this prefix (see `flows/flows_common.lua`).
pub fn flow_keys(prefix: &str) -> QueueKeys {
    QueueKeys::new(prefix, ":flows")
}

/// The hash of flow `id`'s record (kind, status, counts; see
/// `flows/flows_common.lua`).
pub fn flow_record(prefix: &str, id: &str) -> String {
    format!("{}f:{id}", flow_keys(prefix).base())
}

/// The channel published when members or flows end.
pub fn flow_wake(prefix: &str) -> String {
    format!("{}wake", flow_keys(prefix).base())
}

/// The presence record (JSON `PoolInfo`) of the worker pool `id`.
pub fn pool_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:{{:pools}}:{id}")
}

/// The sorted set of live pools' ids, by expiry of their presence (ms).
pub fn pool_index(prefix: &str) -> String {
    format!("{prefix}:{{:pools}}:index")
}

/// Where partition `n` of a queue goes on the ring of hash slots, as a
/// fraction of the ring past the slot of partition 0: 1/3 and 2/3 for
/// partitions 1 and 2, then the midpoints of the gaps so far, level by
/// level (1/6, 1/2, 5/6; then the twelfths between, ...), each level's
/// points taken from the three thirds in turn. So the first `3 * 2^k`
/// partitions are evenly spaced, and a cluster whose masters split the
/// slots evenly (as `redis-cli --cluster create` does) holds as many of
/// them on each master when it has 3, 6, 12, ... masters (or 2, 4, ...).
fn spread_point(n: u16) -> f64 {
    if n < 3 {
        return f64::from(n) / 3.0;
    }
    let n = u32::from(n);
    // The level: n is in 3 * 2^(level - 1) .. 3 * 2^level.
    let level = 32 - (n / 3).leading_zeros();
    let i = n - (3 << (level - 1));
    let per_third = 1u32 << (level - 1);
    // Within a third, the level's points in bit-reversed order, so that a
    // level filled in part is spread too.
    let k = (i / 3).reverse_bits().checked_shr(33 - level).unwrap_or(0);
    let j = (i % 3) * per_third + k;
    f64::from(2 * j + 1) / f64::from(3u32 << level)
}

/// The hash tag of partition `n` (from 1) of `queue`: `<queue>~<n>~<salt>`
/// with the first salt whose slot is within 8 of the partition's place
/// (`spread_point` in this module), which a plain `<queue>~<n>` would miss: CRC16
/// is linear, so the slots of `q~1` .. `q~9` fall in four clusters of the
/// ring whatever `q`. About a thousand tries; each tag is worked out once
/// per process.
pub fn partition_tag(queue: &str, n: u16) -> String {
    static TAGS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<(String, u16), String>>> =
        std::sync::LazyLock::new(Default::default);
    let key = (queue.to_owned(), n);
    // The cache is valid in any state: a poisoned lock is taken over.
    if let Some(tag) = TAGS.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return tag.clone();
    }
    const SLOTS: f64 = 16384.0;
    let base = key_slot(queue.as_bytes());
    // Below 16384 after the rounding and the remainder.
    let target = ((f64::from(base) + (spread_point(n) * SLOTS).round()) % SLOTS) as u16;
    let distance = |slot: u16| {
        let d = slot.abs_diff(target);
        d.min(16384 - d)
    };
    let mut best = (u16::MAX, String::new());
    for salt in 0u32.. {
        let tag = format!("{queue}~{n}~{salt}");
        let d = distance(crc16(tag.as_bytes()) % 16384);
        if d < best.0 {
            best = (d, tag);
        }
        // Ever closer is always found; a bound keeps the loop finite.
        if best.0 <= 8 || salt >= 1 << 20 {
            break;
        }
    }
    TAGS.lock().unwrap_or_else(|p| p.into_inner()).insert(key, best.1.clone());
    best.1
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
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
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

    /// Every key this module builds for the queue of `k`, its fence too.
    fn every_key(k: &QueueKeys) -> Vec<String> {
        vec![
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
            k.archive(),
            k.archiver(),
            k.stats(),
            k.seq(),
            k.wake(),
            k.events(),
            k.events_on(),
            k.events_wake(),
            k.started(),
            k.crash(),
            k.expires(),
            k.snooze(),
            k.progress(),
            k.ids(),
            k.caller_ids(),
            k.job_keys(),
            k.key_of(),
            k.group(),
            k.group_ready(0, "g"),
            k.group_ready(1, "g"),
            k.group_ready(2, "g"),
            k.group_ready(3, "g"),
            k.group_waiting(),
            k.group_pending(),
            k.group_running(),
            k.group_bounds(),
            k.group_turn(),
            k.group_on(),
            k.group_starts("g"),
            k.group_held(),
            k.queue_starts(),
            k.breaker_failures(),
            k.group_breakers(),
            k.group_failures("g"),
            k.minute(60),
            k.schedule("nightly"),
            k.flow_refs(),
            k.flow_out(),
            k.fence(),
            k.parked(),
            k.park(),
            k.inbox("w"),
        ]
    }

    #[test]
    fn every_key_of_a_queue_shares_one_slot() {
        let k = QueueKeys::new("jobs", "email");
        assert_eq!(k.ready(0), "jobs:{email}:ready:0");
        assert_eq!(k.queue(), "email");
        let all = every_key(&k);
        let slot = key_slot(b"email");
        for key in &all {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
        // Another queue is (here) another slot: the tag really is the queue.
        assert_ne!(key_slot(QueueKeys::new("jobs", "default").meta().as_bytes()), slot);
    }

    /// Every name a script derives from its queue's key prefix
    /// (`B .. '<suffix>`) is one this module builds.
    #[test]
    fn the_scripts_build_only_names_built_here() {
        let k = QueueKeys::new("p", "q");
        let built: Vec<String> = every_key(&k).iter().map(|key| key[k.base().len()..].to_owned()).collect();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "lua") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            // The code, without comments.
            let code: String = src.lines().map(|l| l.split("--").next().unwrap_or_default()).collect();
            for part in code.split("B .. '").skip(1) {
                let suffix = &part[..part.find('\'').unwrap()];
                // `ready:` .. rank: a name with a variable part ends in `:`.
                let ok = built.iter().any(|b| b == suffix || (suffix.ends_with(':') && b.starts_with(suffix)));
                assert!(ok, "{} builds `<base>{suffix}`, which keys.rs does not", path.display());
                checked += 1;
            }
        }
        assert!(checked > 20, "the scripts name their keys `B .. '<suffix>'`: {checked} found");
    }

    #[test]
    fn a_partition_is_a_slot_of_its_own_that_wakes_its_queue() {
        let k = QueueKeys::of_partition("jobs", "email", 3);
        let tag = partition_tag("email", 3);
        assert!(tag.starts_with("email~3~"), "{tag}");
        assert_eq!(k.ready(0), format!("jobs:{{{tag}}}:ready:0"));
        assert_eq!((k.queue(), k.partition(), k.tag()), ("email", 3, tag.as_str()));
        let slot = key_slot(tag.as_bytes());
        for key in every_key(&k).iter().filter(|key| !key.ends_with(":wake")) {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
        assert_eq!(k.wake(), QueueKeys::new("jobs", "email").wake());
        assert_eq!(k.events_wake(), QueueKeys::new("jobs", "email").events_wake());
        let id = k.job_id(ulid::Ulid::nil());
        assert_eq!(QueueKeys::of_job("jobs", &id), k);
        assert_eq!(QueueKeys::new("jobs", "email"), QueueKeys::of_partition("jobs", "email", 0));
    }

    #[test]
    fn the_first_partitions_are_evenly_spaced() {
        let points = |n: u16| {
            let mut p: Vec<f64> = (0..n).map(spread_point).collect();
            p.sort_by(f64::total_cmp);
            p
        };
        for n in [3u16, 6, 12, 24, 48] {
            let p = points(n);
            let even: Vec<f64> = (0..n).map(|i| f64::from(i) / f64::from(n)).collect();
            assert!(p.iter().zip(&even).all(|(a, b)| (a - b).abs() < 1e-9), "{n}: {p:?}");
        }
        // A level filled in part is spread over the three thirds.
        let thirds = |n: u16| {
            (0..n).map(|i| (spread_point(i) * 3.0) as usize).fold([0; 3], |mut c, t| {
                c[t] += 1;
                c
            })
        };
        assert_eq!(thirds(9), [3, 3, 3]);
        assert_eq!(thirds(15), [5, 5, 5]);
    }

    /// Three partitions of any queue on a cluster of three masters that
    /// split the slots evenly: one on each.
    #[test]
    fn partitions_land_where_they_are_placed() {
        let master = |slot: u16| usize::from(slot) * 3 / 16384;
        for q in ["email", "bench", "t.spread.0.x9a46z", "a", "reports-eu"] {
            let slots: Vec<u16> =
                (0..3).map(|p| key_slot(QueueKeys::of_partition("jobs", q, p).meta().as_bytes())).collect();
            let mut on: Vec<usize> = slots.iter().map(|&s| master(s)).collect();
            on.sort_unstable();
            on.dedup();
            // Within 8 slots of a third's edge the tag may fall on either side.
            let near_edge = slots.iter().any(|&s| (0..3).any(|m| s.abs_diff((m * 16384 / 3) as u16) <= 8));
            assert!(on.len() == 3 || near_edge, "{q}: slots {slots:?}");
            for p in 1..3 {
                let want = (f64::from(slots[0]) + spread_point(p) * 16384.0).round() as i64 % 16384;
                let d = (i64::from(slots[p as usize]) - want).rem_euclid(16384);
                assert!(d.min(16384 - d) <= 8, "{q}~{p}: slot {} for {want}", slots[p as usize]);
            }
        }
        assert_eq!(partition_tag("email", 2), partition_tag("email", 2), "the same tag each time");
    }

    #[test]
    fn keys_outside_a_queue_have_tags_of_their_own() {
        assert_eq!(schedule_index("jobs"), "jobs:{:schedules}");
        assert_eq!(flow_keys("jobs").base(), "jobs:{:flows}:");
        assert_eq!(flow_record("jobs", "etl-1"), "jobs:{:flows}:f:etl-1");
        assert_eq!(key_slot(flow_record("jobs", "a").as_bytes()), key_slot(flow_wake("jobs").as_bytes()));
        assert_eq!(pool_key("jobs", "p1"), "jobs:{:pools}:p1");
        assert_eq!(key_slot(pool_key("jobs", "p1").as_bytes()), key_slot(pool_index("jobs").as_bytes()));
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
