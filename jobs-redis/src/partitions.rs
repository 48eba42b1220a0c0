//! Partitioned queues: one queue's jobs spread over several hash slots, so
//! that on Redis Cluster its work spreads over several masters.
//!
//! Partition `n` of queue `q` is a queue layout of its own under the hash
//! tag `{q~n}` (see [`QueueKeys::of_partition`]); partition 0 is the queue's
//! own `{q}`, so a queue that was never partitioned is partition 0 of
//! itself, and raising its count strands nothing. Every script runs within
//! one partition, unchanged. What spans partitions is done here:
//!
//! - **Placement** ([`RedisQueue::place`]). A job with a group goes to the
//!   partition its group key hashes to, so a group's limits stay atomic in
//!   one slot. A workflow's or batch's member stays in partition 0 (its
//!   flow recorded its id before it was enqueued), and so does, when it
//!   has no group, a job that must be checked against the stored ones (a
//!   caller id, a key, `unique_for`): every such job is there, whatever
//!   the count. Any other job goes to the next partition in turn, the
//!   whole batch to one (so a batch is still stored all or nothing, in
//!   order, in one script call). The group hash is
//!   jump consistent hashing (Lamping and Veach) over FNV-1a: raising the
//!   count from `n` to `n + 1` moves only a `1 / (n + 1)` share of the
//!   groups.
//! - **Fetching** ([`RedisQueue::spread`]). A fetch visits a queue's
//!   partitions in turn, starting one further at each fetch.
//! - **The id.** A job's [`JobId`] names its partition, so every call made
//!   by id (finish, cancel, `job`) goes to its slot with no index.
//!
//! **The count** lives in Redis, in the sorted set [`partitions_key`]
//! (queue → count), raised with `ZADD GT` and never lowered. Each handle
//! reads it when it connects and again at most once a second as it works;
//! until a handle has seen a raise it places and fetches over the
//! partitions it knows, which delays nothing (pools hear every partition's
//! wake-ups on the queue's one channel, `QueueKeys::wake`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{validate_queue_name, Error, JobId, NewJob};

use crate::keys::{partitions_key, queues_key, QueueKeys};
use crate::queue::{lock, RedisQueue};

/// The most partitions a queue may have.
pub const MAX_PARTITIONS: u16 = 1024;

/// How long a handle works with the counts it read before reading again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Partitioned queues' counts, by queue name (and [`EVERY_QUEUE`]).
pub(crate) type Counts = Arc<HashMap<String, u16>>;

/// A handle's view of the partition counts.
#[derive(Default)]
pub(crate) struct Partitions {
    /// The counts as last read, and when.
    counts: Mutex<(Counts, Option<Instant>)>,
    /// Whether a read of the counts is under way (others use the last one).
    reading: AtomicBool,
    /// Where the next batch of jobs without a placing key goes (modulo a
    /// queue's count).
    place_turn: AtomicUsize,
    /// Where the next fetch starts. (Apart from `place_turn`: one counter
    /// for both would send every batch of a handle that enqueues and
    /// fetches in turn to the same partition.)
    fetch_turn: AtomicUsize,
    /// Wake-ups heard from partitions the counts did not have (see
    /// [`heard`](Self::heard)): a read begun before one of them does not
    /// count as fresh.
    heard: AtomicU64,
}

impl Partitions {
    /// The counts as last read, and whether they are older than a second
    /// (or a wake-up outdated them), under one lock.
    fn snapshot(&self) -> (Counts, bool) {
        let kept = lock(&self.counts);
        (Arc::clone(&kept.0), kept.1.is_none_or(|t| t.elapsed() >= REFRESH_EVERY))
    }

    /// The count of `queue` as last read (1: not partitioned), for callers
    /// that cannot wait for a read.
    pub(crate) fn known(&self, queue: &str) -> u16 {
        count_in(&lock(&self.counts).0, queue)
    }

    /// A wake-up from partition `partition` of the queue whose channel is
    /// `channel` (see `wake_fetchers` in `common.lua`): a partition this handle does
    /// not know yet makes the next call read the counts again, so a pool
    /// woken by a partition added since its last read takes its jobs.
    pub(crate) fn heard(&self, channel: &str, partition: u16) {
        let queue = channel.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(q, _)| q);
        if partition > 0 && queue.is_some_and(|q| partition >= self.known(q)) {
            let mut counts = lock(&self.counts);
            self.heard.fetch_add(1, Ordering::AcqRel);
            counts.1 = None;
        }
    }

    /// Whether a wake-up named a partition not in the counts last read (see
    /// [`heard`](Self::heard)).
    pub(crate) fn heard_new(&self) -> bool {
        lock(&self.counts).1.is_none()
    }

    /// Keeps counts read by a read that began when [`heard`](Self::heard)
    /// had counted `heard_before`: fresh unless a partition they may not
    /// have was heard of since.
    fn store(&self, counts: HashMap<String, u16>, heard_before: u64) {
        let mut kept = lock(&self.counts);
        let fresh = self.heard.load(Ordering::Acquire) == heard_before;
        *kept = (Arc::new(counts), fresh.then(Instant::now));
    }
}

/// The name under which the count of every queue without a higher one of
/// its own is stored (`partitions: { "*": n }`); no queue can take it.
pub(crate) const EVERY_QUEUE: &str = "*";

/// How many partitions `queue` has by `counts`: its own count or the one
/// of every queue, whichever is higher (so neither lowers the other), at
/// least 1.
pub(crate) fn count_in(counts: &HashMap<String, u16>, queue: &str) -> u16 {
    let own = counts.get(queue).copied().unwrap_or(1);
    own.max(counts.get(EVERY_QUEUE).copied().unwrap_or(1)).max(1)
}

/// `call` on every partition of `parts` (its keys, or its keys with what
/// goes with them) at once, so that on a cluster their masters answer
/// together: the answers in `parts`' order, or the first error.
pub(crate) async fn at_once<P, T, Fut>(parts: P, call: impl FnMut(P::Item) -> Fut) -> Result<Vec<T>, Error>
where
    P: IntoIterator,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    futures_util::future::try_join_all(parts.into_iter().map(call)).await
}

/// Checks a queue name given a count: a queue's, or [`EVERY_QUEUE`].
fn check_name(queue: &str) -> Result<(), Error> {
    if queue == EVERY_QUEUE {
        return Ok(());
    }
    validate_queue_name(queue)
}

/// Refuses, on a queue of `n` partitions, a policy bound that only one
/// slot can keep: a queue-wide count or rate cannot be checked atomically
/// across slots.
pub(crate) fn check_policy(queue: &str, n: u16, policy: &jobs_core::QueuePolicy) -> Result<(), Error> {
    if n <= 1 {
        return Ok(());
    }
    let bound = [
        (policy.max_jobs.is_some(), "max_jobs"),
        (policy.max_running.is_some(), "max_running"),
        (policy.rate.is_some(), "rate"),
        (policy.breaker.is_some(), "breaker"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name));
    match bound {
        None => Ok(()),
        Some(name) => Err(Error::InvalidArgument(format!(
            "queue {queue} is spread over {n} partitions: a queue-wide {name} cannot hold across them (each \
             partition is a hash slot of its own); bound its groups instead (group_concurrency, group_rate, \
             group_breaker), or keep the queue in one partition"
        ))),
    }
}

/// FNV-1a (64 bits) of the parts, each ended by a 0xff byte (which UTF-8
/// text never holds), so that ("ab", "c") and ("a", "bc") differ.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Jump consistent hash: the bucket of `key` among `buckets` (at least 1).
fn jump(mut key: u64, buckets: u16) -> u16 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The quotient is below 2^31 * 2^31 / 2^33 < 2^31; the cast keeps it.
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // `b` is in 0..buckets, so it fits.
    b as u16
}

/// The partition of group `group` among `n`.
fn group_slot(group: &str, n: u16) -> u16 {
    jump(fnv1a(&[b"g", group.as_bytes()]), n)
}

/// Where a job of a queue of `n` partitions goes, when its rules fix it
/// (see the module's "Placement"); `None`: anywhere.
fn fixed_partition(job: &NewJob, n: u16) -> Option<u16> {
    if job.headers.get(jobs_core::FLOW_HEADER).is_some_and(|f| !f.is_empty()) {
        return Some(0);
    }
    if let Some(g) = &job.group {
        return Some(group_slot(&g.key, n));
    }
    (job.caller_id.is_some() || job.key.is_some() || job.unique_for.is_some()).then_some(0)
}

impl RedisQueue {
    /// The partition counts, as last read. When they are older than a
    /// second they are read again in a task of their own: no call waits for
    /// that read (while Redis is away, a call would wait out its timeout
    /// twice). A failed read keeps the last counts.
    pub(crate) fn partition_counts(&self) -> Counts {
        let p = &self.inner.partitions;
        let (counts, stale) = p.snapshot();
        if stale {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                if !p.reading.swap(true, Ordering::AcqRel) {
                    let q = self.clone();
                    rt.spawn(async move { q.reread_partition_counts().await });
                }
            }
        }
        counts
    }

    /// Reads the counts again when a wake-up named a partition this handle
    /// does not know (see [`Partitions::heard`]): for a waiting pool, which
    /// fetches next. Otherwise nothing, so a pool's wait costs no round
    /// trip: a partition added since is always announced by such a
    /// wake-up. (It reads even while a read of the background is under
    /// way: that one may have begun before the wake-up.)
    pub(crate) async fn reread_if_outdated(&self) {
        if self.inner.partitions.heard_new() {
            if let Err(e) = self.load_partition_counts().await {
                tracing::debug!(error = %e, "cannot read the partition counts; using the last ones read");
            }
        }
    }

    async fn reread_partition_counts(&self) {
        let read = self.load_partition_counts().await;
        self.inner.partitions.reading.store(false, Ordering::Release);
        if let Err(e) = read {
            tracing::debug!(error = %e, "cannot read the partition counts; using the last ones read");
        }
    }

    /// Reads every partitioned queue's count from Redis, and keeps it.
    pub(crate) async fn load_partition_counts(&self) -> Result<(), Error> {
        let heard = self.inner.partitions.heard.load(Ordering::Acquire);
        let counts = self.read_partition_counts().await?;
        self.inner.partitions.store(counts, heard);
        Ok(())
    }

    async fn read_partition_counts(&self) -> Result<HashMap<String, u16>, Error> {
        let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(partitions_key(&self.inner.prefix))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error("ZRANGE partitions", &e))?;
        // A count out of range was not written by this crate: read it as the
        // nearest one that is.
        Ok(pairs.into_iter().map(|(q, n)| (q, n.clamp(1.0, f64::from(MAX_PARTITIONS)) as u16)).collect())
    }

    /// How many partitions `queue` has, read from Redis now (1: it is not
    /// partitioned). `"*"` names the count every queue has at least.
    pub async fn partitions(&self, queue: &str) -> Result<u16, Error> {
        check_name(queue)?;
        self.load_partition_counts().await?;
        Ok(self.inner.partitions.known(queue))
    }

    /// Spreads `queue` over `count` partitions (see `docs/partitions.md`),
    /// or keeps its count when that is higher already: a count is never
    /// lowered, since a partition taken away would strand its jobs. Returns
    /// the queue's count now. Every handle on this prefix follows within a
    /// second; this one at once. `"*"` for `queue` sets the count every
    /// queue has at least (a queue's own count, when higher, is kept).
    ///
    /// Refused for a queue whose policy bounds it as a whole (`max_jobs`,
    /// `max_running`, `rate`, `breaker`): no script can check such a bound
    /// across slots. (`"*"` does not look at policies: set it before the
    /// queues get theirs, which are then refused.)
    ///
    /// ```no_run
    /// # async fn demo(queue: jobs_redis::RedisQueue) -> Result<(), jobs_core::Error> {
    /// assert_eq!(queue.set_partitions("email", 3).await?, 3);
    /// assert_eq!(queue.set_partitions("email", 2).await?, 3, "never lowered");
    /// # Ok(()) }
    /// ```
    pub async fn set_partitions(&self, queue: &str, count: u16) -> Result<u16, Error> {
        check_name(queue)?;
        if !(1..=MAX_PARTITIONS).contains(&count) {
            return Err(Error::InvalidArgument(format!(
                "queue {queue}: {count} partitions; a queue has 1 to {MAX_PARTITIONS}"
            )));
        }
        if queue != EVERY_QUEUE {
            check_policy(queue, count, &self.policy(queue).await?)?;
        }
        self.load_partition_counts().await?;
        let queues: Vec<String> = if queue == EVERY_QUEUE {
            redis::cmd("SMEMBERS")
                .arg(queues_key(&self.inner.prefix))
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("SMEMBERS queues", &e))?
        } else {
            vec![queue.to_owned()]
        };
        // Before the count is raised: no job can be placed in a new
        // partition yet.
        for q in queues.iter().filter(|q| validate_queue_name(q).is_ok()) {
            let now = self.inner.partitions.known(q);
            self.carry_listening(q, now, count).await?;
        }
        redis::cmd("ZADD")
            .arg(partitions_key(&self.inner.prefix))
            .arg("GT")
            .arg(count)
            .arg(queue)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| self.command_error("ZADD partitions", &e))?;
        // Reads the counts back: this handle follows at once.
        self.partitions(queue).await
    }

    /// Turns job events on in partitions `from..to` of `queue` for as long
    /// as they are on in partition 0. A listener turned them on before those
    /// partitions existed and turns them on there only once it has read the
    /// new count: until then, the events of their jobs would not be
    /// recorded.
    async fn carry_listening(&self, queue: &str, from: u16, to: u16) -> Result<(), Error> {
        if from >= to {
            return Ok(());
        }
        let on = self.keys(queue).events_on();
        let (cap, ttl): (Option<usize>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&on)
            .cmd("PTTL")
            .arg(&on)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error("events:on", &e))?;
        // PTTL is negative when the key is gone or never expires.
        let (Some(history), Ok(ms)) = (cap, u64::try_from(ttl)) else { return Ok(()) };
        let ttl = Duration::from_millis(ms.max(1));
        for p in from..to {
            let keys = QueueKeys::of_partition(&self.inner.prefix, queue, p);
            self.invoke(crate::scripts::listen::Listen { keys: &keys, history, ttl }).await?;
        }
        Ok(())
    }

    /// Gives each job of a batch to a partition of its queue (see the
    /// module's "Placement"): its id then names it.
    pub(crate) fn place(&self, jobs: &mut [NewJob], counts: &HashMap<String, u16>) {
        if counts.is_empty() {
            return;
        }
        // The partition each queue's free jobs of this batch go to: one, so
        // that the batch is stored in one script call, all or nothing and in
        // order, as on a queue that is not partitioned.
        let mut turns: Vec<(String, u16)> = Vec::new();
        for job in jobs {
            let n = count_in(counts, job.id.queue());
            if n <= 1 {
                continue;
            }
            let partition = match fixed_partition(job, n) {
                Some(p) => p,
                None => match turns.iter().find(|(q, _)| q == job.id.queue()) {
                    Some(&(_, p)) => p,
                    None => {
                        // The remainder is below `n`, a u16.
                        let p =
                            (self.inner.partitions.place_turn.fetch_add(1, Ordering::Relaxed) % usize::from(n)) as u16;
                        turns.push((job.id.queue().to_owned(), p));
                        p
                    }
                },
            };
            job.id = job.id.clone().in_partition(partition);
        }
    }

    /// The keys of every partition of `queue`, for a fetch: in turn, each
    /// call starting one further.
    pub(crate) fn spread(&self, queue: &str, counts: &HashMap<String, u16>) -> Vec<QueueKeys> {
        let n = count_in(counts, queue);
        if n <= 1 {
            return vec![self.keys(queue)];
        }
        // The remainder is below `n`, a u16.
        let first = (self.inner.partitions.fetch_turn.fetch_add(1, Ordering::Relaxed) % usize::from(n)) as u16;
        (0..n).map(|i| QueueKeys::of_partition(&self.inner.prefix, queue, (first + i) % n)).collect()
    }

    /// The keys of every partition of `queue`, partition 0 first.
    pub(crate) fn all_partitions(&self, queue: &str) -> Vec<QueueKeys> {
        let counts = self.partition_counts();
        self.partitions_in(queue, &counts)
    }

    /// The keys of every partition of `queue` by `counts`, partition 0
    /// first.
    pub(crate) fn partitions_in(&self, queue: &str, counts: &HashMap<String, u16>) -> Vec<QueueKeys> {
        let n = count_in(counts, queue);
        (0..n.max(1)).map(|p| QueueKeys::of_partition(&self.inner.prefix, queue, p)).collect()
    }

    /// The keys of the partition that holds group `group` of `queue`.
    pub(crate) fn group_partition(&self, queue: &str, group: &str, counts: &HashMap<String, u16>) -> QueueKeys {
        let p = group_slot(group, count_in(counts, queue));
        QueueKeys::of_partition(&self.inner.prefix, queue, p)
    }

    /// The keys of the partition that stores job `id`.
    pub(crate) fn keys_of(&self, id: &JobId) -> QueueKeys {
        QueueKeys::of_job(&self.inner.prefix, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hashing_moves_few_keys_when_a_partition_is_added() {
        let keys: Vec<u64> = (0..10_000u32).map(|i| fnv1a(&[b"g", i.to_string().as_bytes()])).collect();
        let mut per = [0usize; 5];
        for &k in &keys {
            per[usize::from(jump(k, 5))] += 1;
        }
        assert!(per.iter().all(|&c| (1_800..2_200).contains(&c)), "uneven spread: {per:?}");
        let moved = keys.iter().filter(|&&k| jump(k, 5) != jump(k, 6)).count();
        assert!((1_400..2_000).contains(&moved), "{moved} of 10,000 moved from 5 to 6 partitions (about 1/6 should)");
        assert!(keys.iter().all(|&k| jump(k, 1) == 0));
    }

    #[test]
    fn the_hash_of_parts_is_stable_and_keeps_them_apart() {
        assert_eq!(fnv1a(&[b"g", b"acct-1"]), fnv1a(&[b"g", b"acct-1"]));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        // The placement of stored jobs depends on these values: they may
        // never change.
        // (Values worked out apart from this code.)
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0x089b_c907_b544_c769);
        assert_eq!((jump(0x089b_c907_b544_c769, 7), jump(0x089b_c907_b544_c769, 1000)), (5, 417));
    }
}
