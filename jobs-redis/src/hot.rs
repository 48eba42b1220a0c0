//! The workers' calls: enqueue, fetch, finish, extend leases. Each is one
//! script call per queue touched, whatever the batch size, and each script
//! runs a fixed number of Redis commands per batch (not per job) on the
//! common path: see the crate README. The calls go through the scripts'
//! typed wrappers (`scripts/`), which build each command in one buffer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{
    check_progress, ExpiredJob, FetchRequest, Fetched, Finish, FinishResult, LeaseState, LeasedJob, Outcome,
    PayloadFormat, ProgressUpdate, ProgressWrite, QueueFailure, EXPIRE_BATCH,
};
use jobs_core::{validate_queue_name, DeadJob, Error, JobId, NewJob};

use crate::decode::{dur_ms, headers, job_id, text, ulid_of, Record, State};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;
use crate::queue::{lock, RedisQueue};
use crate::scripts::enqueue::{Enqueue, Enqueued};
use crate::scripts::extend::Extend;
use crate::scripts::fetch::Fetch;
use crate::scripts::finish::{FinishBatch, Items};
use crate::scripts::progress::ReportProgress;
use crate::scripts::unpark::Unpark;

/// Due jobs promoted, expired leases reclaimed and finished records swept
/// per queue and fetch: a backlog is worked off in steps, never in one long
/// script.
pub(crate) const BATCH: usize = 1000;

/// How often a fetch runs the housekeeping (promote, reclaim, sweep) of a
/// queue it took nothing from because its batch was already full.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// Keeps in `due` the sooner of it and `d` (ms).
fn soonest(due: &mut Option<u64>, d: u64) {
    *due = Some(due.map_or(d, |n| n.min(d)));
}

/// The fetch script's call for up to `room` jobs of the queue of `keys`.
fn fetch_call<'a>(
    keys: &'a QueueKeys,
    room: usize,
    req: &FetchRequest,
    retention: jobs_core::Retention,
    park: Option<(&'a str, Duration)>,
) -> Fetch<'a> {
    Fetch {
        keys,
        room,
        lease: req.lease,
        default_max_retries: req.default_max_retries,
        batch: BATCH,
        retention,
        max_crashes: req.max_crashes,
        expire_max: EXPIRE_BATCH,
        park,
    }
}

/// Groups positions of a batch by the queue partition of their job's id,
/// partitions in order of first appearance.
fn by_queue<'a, T>(items: &'a [T], id: impl Fn(&'a T) -> &'a JobId) -> Vec<(&'a JobId, Vec<usize>)> {
    let mut groups: Vec<(&JobId, Vec<usize>)> = Vec::new();
    let mut index: HashMap<(&str, u16), usize> = HashMap::new();
    let same = |a: &JobId, b: &JobId| a.partition() == b.partition() && a.queue() == b.queue();
    for (i, item) in items.iter().enumerate() {
        let q = id(item);
        // The common case, a batch of one queue, without hashing.
        if let Some(last) = groups.last_mut().filter(|g| same(g.0, q)) {
            last.1.push(i);
            continue;
        }
        let g = *index.entry((q.queue(), q.partition())).or_insert_with(|| {
            groups.push((q, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

impl RedisQueue {
    /// Stores a batch of new jobs: one script call per queue of the batch
    /// (the batch's order kept within each queue; a partitioned queue's jobs
    /// are placed first, see `partitions.rs`, and each partition of the
    /// batch is a call). A queue refusing its
    /// part (`max_jobs`, `priority_levels`) stores nothing of that part;
    /// parts of other queues sent before it stay stored (a batch spanning
    /// queues is all or nothing per queue: one script cannot span Redis
    /// Cluster slots).
    pub(crate) async fn enqueue_many(&self, mut jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        for j in &jobs {
            validate_queue_name(j.queue())?;
        }
        jobs_core::backend::check_payload_sizes(&jobs, self.inner.max_payload)?;
        jobs_core::backend::check_times(&jobs)?;
        jobs_core::backend::check_idents(&jobs)?;
        // A record keeps no format field: a reader tells MessagePack from
        // its first byte, so a MessagePack payload must start a map.
        if let Some(j) =
            jobs.iter().find(|j| j.format == PayloadFormat::MessagePack && PayloadFormat::of(&j.payload) != j.format)
        {
            return Err(Error::InvalidArgument(format!(
                "job {}: a MessagePack payload must be a map (a struct with named fields), so that readers can tell its format",
                j.id
            )));
        }
        let counts = self.partition_counts();
        self.place(&mut jobs, &counts);
        let groups = by_queue(&jobs, |j: &NewJob| &j.id);
        // The queue index first: once a script has stored jobs, no later
        // step may fail the call (the producer would retry and store them
        // twice). A queue listed with no job stored is harmless.
        for (id, _) in &groups {
            self.register(id.queue()).await?;
        }
        let mut replaced: Vec<(usize, JobId)> = Vec::new();
        let mut scratch = Vec::with_capacity(256);
        for (id, idx) in &groups {
            let queue = id.queue();
            let keys = self.keys_of(id);
            let call = Enqueue { keys: &keys, jobs: &jobs, idx, scratch: &mut scratch };
            match self.invoke(call).await? {
                // Positions whose id is another job's: a live duplicate of a
                // `unique_for` job.
                Enqueued::Stored(dups) => replaced.extend(dups.into_iter().map(|(pos, id)| (idx[pos], id))),
                Enqueued::Refused(why) => return Err(why.into_error(queue)),
            }
        }
        let mut out: Vec<JobId> = jobs.into_iter().map(|j| j.id).collect();
        for (i, id) in replaced {
            out[i] = id;
        }
        Ok(out)
    }

    /// Leases jobs: one script call per queue in `req.queues` order (per
    /// partition of a partitioned queue, in turn) until `req.max` jobs are
    /// leased. Queues after that are visited only for
    /// their housekeeping, at most once a second per handle. A queue whose
    /// call fails is reported in [`Fetched::failed`] and the others are
    /// still served: the jobs already leased are returned, never stranded
    /// until their lease expires. `Err` only when every queue visited
    /// failed.
    ///
    /// A partition of a partitioned queue whose call fails (its master
    /// down, say) is left out of this handle's fetches for a pause that
    /// doubles with each failure in a row ([`FailurePauses`]), and the
    /// queue's other partitions are still served; the queue is reported
    /// failed only when all of its partitions are. The answer's due time
    /// is no later than the first such partition's retry, so that an idle
    /// pool comes back for its jobs.
    pub(crate) async fn fetch(&self, req: &FetchRequest) -> Result<Fetched, Error> {
        let mut out = Fetched::default();
        let mut next_due: Option<u64> = None;
        let (mut visited, mut failed) = (0usize, 0usize);
        let mut first_error = None;
        let counts = self.partition_counts();
        // A name that cannot be valid has no jobs (and would break the key
        // layout).
        for queue in req.queues.iter().filter(|q| validate_queue_name(q).is_ok()) {
            let parts = self.spread(queue, &counts);
            let (partitioned, nparts) = (parts.len() > 1, parts.len());
            let (mut parts_failed, mut last_error) = (0usize, None);
            for keys in parts {
                if partitioned {
                    // Left out while paused; its retry bounds the due time.
                    let left = lock(&self.inner.failing_partitions).left(keys.tag(), tokio::time::Instant::now());
                    if let Some(left) = left {
                        soonest(&mut next_due, dur_ms(left));
                        parts_failed += 1;
                        continue;
                    }
                }
                let started = Instant::now();
                let room = req.max.saturating_sub(out.jobs.len());
                if room == 0 {
                    let last = lock(&self.inner.maintained).get(keys.tag()).copied();
                    if last.is_some_and(|t| started.duration_since(t) < HOUSEKEEPING_EVERY) {
                        continue;
                    }
                }
                match self.fetch_queue(&keys, room, req, &mut out).await {
                    Ok(due) => {
                        lock(&self.inner.maintained).insert(keys.tag().to_owned(), started);
                        if partitioned {
                            lock(&self.inner.failing_partitions).served(keys.tag());
                        }
                        if let Some(d) = due {
                            soonest(&mut next_due, d);
                        }
                    }
                    Err(e) if partitioned => {
                        let retry_in =
                            lock(&self.inner.failing_partitions).failed(keys.tag(), tokio::time::Instant::now());
                        tracing::warn!(queue = %queue, partition = keys.partition(), error = %e, ?retry_in,
                            "fetch failed for this partition; serving the queue's others");
                        soonest(&mut next_due, dur_ms(retry_in));
                        parts_failed += 1;
                        last_error = Some(e);
                    }
                    Err(e) => {
                        out.failed.push(QueueFailure { queue: queue.to_owned(), error: e.to_string() });
                        first_error.get_or_insert(e);
                        failed += 1;
                    }
                }
            }
            visited += 1;
            if partitioned && parts_failed == nparts {
                let e = last_error.unwrap_or_else(|| {
                    Error::Backend(format!("every one of its {nparts} partitions failed and is paused").into())
                });
                out.failed.push(QueueFailure { queue: queue.to_owned(), error: e.to_string() });
                first_error.get_or_insert(e);
                failed += 1;
            }
        }
        if let Some(e) = first_error {
            if failed == visited && out.jobs.is_empty() {
                return Err(e);
            }
        }
        out.next_due = next_due.map(Duration::from_millis);
        Ok(out)
    }

    /// One queue's part of [`fetch`](Self::fetch): the fetch script, its
    /// leased jobs and the jobs its reclaim found dead appended to `out`.
    /// Returns how long until the queue's next due time (ms, on the
    /// server's clock), if any.
    async fn fetch_queue(
        &self,
        keys: &QueueKeys,
        room: usize,
        req: &FetchRequest,
        out: &mut Fetched,
    ) -> Result<Option<u64>, Error> {
        let reply = self.invoke(fetch_call(keys, room, req, self.inner.retention, None)).await?;
        self.absorb(keys, reply, out).await
    }

    /// A fetch of `queue` alone for up to `req.max` jobs that parks fetcher
    /// `id` for `ttl` when it leases nothing (see "Parking" in
    /// `fetch.lua`). Returns what it fetched, and whether it parked.
    pub(crate) async fn fetch_or_park(
        &self,
        keys: &QueueKeys,
        req: &FetchRequest,
        id: &str,
        ttl: Duration,
    ) -> Result<(Fetched, bool), Error> {
        let reply = self.invoke(fetch_call(keys, req.max, req, self.inner.retention, Some((id, ttl)))).await?;
        let parked = reply.parked;
        let mut out = Fetched::default();
        let due = self.absorb(keys, reply, &mut out).await?;
        out.next_due = due.map(Duration::from_millis);
        lock(&self.inner.maintained).insert(keys.tag().to_owned(), Instant::now());
        Ok((out, parked))
    }

    /// Ends the parking of fetcher `id` on the queue of `keys`: what was
    /// handed to it (see `unpark.lua`; `blocked`: its BLPOP may still wait,
    /// and is ended).
    pub(crate) async fn unpark(&self, keys: &QueueKeys, id: &str, blocked: bool) -> Result<Fetched, Error> {
        let replies = self.invoke(Unpark { keys, id, blocked }).await?;
        let mut out = Fetched::default();
        for reply in replies {
            self.absorb(keys, reply, &mut out).await?;
        }
        Ok(out)
    }

    /// A fetch an enqueue handed to a parked fetcher of the queue of `keys`
    /// (an entry of its inbox).
    pub(crate) async fn handed(&self, keys: &QueueKeys, packed: &[u8]) -> Result<Fetched, Error> {
        let reply = crate::scripts::fetch::unpack(packed)?;
        let mut out = Fetched::default();
        self.absorb(keys, reply, &mut out).await?;
        Ok(out)
    }

    /// A fetch script's reply for the queue of `keys` appended to `out`:
    /// its leased jobs, the jobs it ended expired and those its reclaim
    /// found dead. Returns how long until the queue's next due time (ms,
    /// on the server's clock), if any.
    async fn absorb(
        &self,
        keys: &QueueKeys,
        reply: crate::scripts::fetch::Fetched,
        out: &mut Fetched,
    ) -> Result<Option<u64>, Error> {
        let queue = keys.queue();
        out.groups |= reply.groups;
        if reply.archived > 0 {
            out.archived.push(queue.to_owned());
        }
        for (ulid, name) in &reply.expired {
            match job_id("fetch", keys, ulid) {
                Ok(id) => out.expired.push(ExpiredJob { id, name: text(name).to_owned() }),
                Err(e) => tracing::warn!(queue, error = %e, "an expired job's id does not parse"),
            }
        }
        for d in reply.dead {
            // The script stored this id: one that does not parse was written
            // by something else, and is dead all the same.
            match job_id("fetch", keys, &d.ulid) {
                Ok(id) => out.dead.push(DeadJob::new(id, d.name, d.attempts, d.error)),
                Err(e) => tracing::warn!(queue, error = %e, "a reclaimed dead job has an unreadable id"),
            }
        }
        let jobs = &mut out.jobs;
        if reply.jobs.len() == 0 {
            return Ok(reply.next_due);
        }
        jobs.reserve(reply.jobs.len());
        // Entries this process cannot read as jobs (written by something
        // else): dead-lettered with the reason, never holding up the rest.
        let mut unreadable = Vec::new();
        // One allocation of the queue's name for the batch's ids.
        let shared: Arc<str> = queue.into();
        for entry in reply.jobs {
            let entry = entry?;
            match leased(&shared, keys.partition(), entry.record, &entry.ulid, reply.token, entry.old_state.as_deref())
            {
                Ok(job) => jobs.push(LeasedJob { crashes: entry.crashes, ..job }),
                Err(e) => unreadable.push((entry.ulid, e.to_string())),
            }
        }
        if !unreadable.is_empty() {
            self.bury(keys, reply.token, unreadable).await;
        }
        Ok(reply.next_due)
    }

    /// Moves jobs that a fetch just leased under `token` but that cannot be
    /// read (a record or ulid that does not parse) to the dead-letter set
    /// with the reason. A failure is logged: they are then reclaimed when
    /// the lease expires, and tried again.
    async fn bury(&self, keys: &QueueKeys, token: u64, jobs: Vec<(Vec<u8>, String)>) {
        let queue = keys.queue();
        for (ulid, reason) in &jobs {
            tracing::warn!(queue, job = text(ulid), error = %reason, "unreadable job entry: moved to the dead-letter set");
        }
        let call = FinishBatch {
            keys,
            dead_max: self.inner.retention.dead_max,
            items: Items::Unreadable { token, jobs: &jobs },
            op: "fetch",
        };
        if let Err(e) = self.invoke(call).await {
            tracing::warn!(queue, error = %e, jobs = jobs.len(), "could not dead-letter unreadable job entries");
        }
    }

    /// Records ended attempts: one script call per queue (partition) of the
    /// batch, all at once; results in the batch's order.
    pub(crate) async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<FinishResult>, Error> {
        let mut out = vec![FinishResult::Stale; batch.len()];
        let mut parts: Vec<(QueueKeys, Vec<usize>)> = Vec::new();
        for (id, mut idx) in by_queue(&batch, |f: &Finish| &f.id) {
            if validate_queue_name(id.queue()).is_err() {
                continue; // Never stored: stale.
            }
            // A job named twice: the repeat is stale (the first one ends
            // the attempt; a start mark gives way to an end), and the script
            // is told of each job once.
            if idx.len() > 1 {
                let ends: HashSet<_> = idx
                    .iter()
                    .filter(|&&i| batch[i].outcome != Outcome::Started)
                    .map(|&i| batch[i].id.ulid())
                    .collect();
                let mut seen = HashSet::with_capacity(idx.len());
                idx.retain(|&i| {
                    let f = &batch[i];
                    !(f.outcome == Outcome::Started && ends.contains(&f.id.ulid())) && seen.insert(f.id.ulid())
                });
            }
            // Jobs of one lease and one outcome side by side: the script is
            // sent their token and kind once per run (see finish.lua).
            idx.sort_by_key(|&i| (batch[i].token, crate::scripts::finish::kind_of(&batch[i].outcome)));
            parts.push((self.keys_of(id), idx));
        }
        // The calls of several queues or partitions at once: each is a slot
        // of its own, and none waits for another's answer.
        let calls = parts.iter().map(|(keys, idx)| {
            let call = FinishBatch {
                keys,
                dead_max: self.inner.retention.dead_max,
                items: Items::Ended { batch: &batch, idx },
                op: "finish",
            };
            self.invoke(call)
        });
        for ((_, idx), results) in parts.iter().zip(futures_util::future::join_all(calls).await) {
            for (&i, r) in idx.iter().zip(results?) {
                out[i] = r;
            }
        }
        Ok(out)
    }

    /// Extends leases: one script call per queue (partition) of the batch,
    /// all at once.
    pub(crate) async fn extend_leases(
        &self,
        leases: &[(JobId, u64)],
        lease: Duration,
    ) -> Result<Vec<LeaseState>, Error> {
        let mut out = vec![LeaseState::Lost; leases.len()];
        let parts: Vec<(QueueKeys, Vec<usize>)> = by_queue(leases, |(id, _)| id)
            .into_iter()
            .filter(|(id, _)| validate_queue_name(id.queue()).is_ok())
            .map(|(id, idx)| (self.keys_of(id), idx))
            .collect();
        // At once, as finish's calls.
        let calls = parts.iter().map(|(keys, idx)| self.invoke(Extend { keys, lease, leases, idx }));
        for ((_, idx), states) in parts.iter().zip(futures_util::future::join_all(calls).await) {
            for (&i, s) in idx.iter().zip(states?) {
                out[i] = s;
            }
        }
        Ok(out)
    }

    /// Stores a running job's progress when its lease is `update.token`.
    pub(crate) async fn report_progress(&self, update: &ProgressUpdate) -> Result<ProgressWrite, Error> {
        check_progress(update)?;
        if validate_queue_name(update.id.queue()).is_err() {
            return Ok(ProgressWrite::Stale);
        }
        let keys = self.keys_of(&update.id);
        self.invoke(ReportProgress { keys: &keys, update }).await
    }
}

/// One leased job from what the fetch script answered of it: its record
/// (whose allocation becomes the payload's), its ulid and its state before
/// the fetch (none: never started, this is attempt 1).
fn leased(
    queue: &Arc<str>,
    partition: u16,
    mut rec: Vec<u8>,
    ulid: &[u8],
    token: u64,
    old: Option<&[u8]>,
) -> Result<LeasedJob, RedisQueueError> {
    const OP: &str = "fetch";
    let id = JobId::from_shared_parts(queue, ulid_of(OP, ulid)?).in_partition(partition);
    let r = Record::parse(&rec).ok_or_else(|| RedisQueueError::reply(OP, format!("job {id} has a bad record")))?;
    let attempt = match old {
        None => 1,
        Some(s) => State::parse(OP, s)?.attempts.saturating_add(1),
    };
    let job = LeasedJob {
        name: String::from_utf8_lossy(r.name(&rec)).into_owned(),
        priority: r.priority,
        attempt,
        max_retries: r.max_retries,
        timeout: r.timeout,
        enqueued_at: r.enqueued_at(&id),
        token,
        headers: headers(r.headers(&rec)),
        id,
        payload: Vec::new(),
        format: PayloadFormat::of(&rec[r.payload_at..]),
        crashes: 0,
    };
    // The payload is the record's tail, handed on in its stored format: the
    // record's buffer becomes the payload, with no copy of it.
    rec.drain(..r.payload_at);
    Ok(LeasedJob { payload: rec, ..job })
}
