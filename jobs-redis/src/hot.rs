//! The workers' calls: enqueue, fetch, finish, extend leases. Each is one
//! script call per queue touched, whatever the batch size.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use jobs_core::{
    validate_queue_name, Error, FetchRequest, Fetched, Finish, FinishResult, JobId, LeaseState, LeasedJob, NewJob,
    Outcome, Priority,
};
use redis::Value;

use crate::decode::{dur_ms, from_ms, num, opt_u64, priority_of, status_of, strings, text, to_ms, to_ms_ceil};
use crate::error::RedisQueueError;
use crate::queue::{lock, RedisQueue};
use crate::scripts::SCRIPTS;

/// Due jobs promoted, expired leases reclaimed and finished records swept
/// per queue and fetch: a backlog is worked off in steps, never in one long
/// script.
pub(crate) const BATCH: usize = 1000;

/// How often a fetch runs the housekeeping (promote, reclaim, sweep) of a
/// queue it took nothing from because its batch was already full.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// Groups positions of a batch by queue, queues in order of first
/// appearance.
fn by_queue<'a, T>(items: &'a [T], queue: impl Fn(&'a T) -> &'a str) -> Vec<(&'a str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let q = queue(item);
        let g = *index.entry(q).or_insert_with(|| {
            groups.push((q, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

/// The 10 arguments of one job for enqueue.lua.
pub(crate) fn job_args(inv: &mut redis::ScriptInvocation<'_>, j: &NewJob) {
    inv.arg(j.id.ulid().to_string())
        .arg(&j.name)
        .arg(&j.payload[..])
        .arg(j.priority.rank())
        .arg(j.max_retries.map(|n| n.to_string()).unwrap_or_default())
        .arg(j.timeout.map(|d| dur_ms(d).to_string()).unwrap_or_default())
        .arg(j.run_at.map(|t| to_ms_ceil(t).to_string()).unwrap_or_default())
        .arg(j.unique_for.map(|d| dur_ms(d).max(1).to_string()).unwrap_or_default())
        .arg(to_ms(j.enqueued_at))
        .arg(if j.headers.is_empty() { Vec::new() } else { serde_json::to_vec(&j.headers).unwrap_or_default() });
}

/// Turns enqueue.lua's refusals into errors; `Ok(ids)` for `ok`.
pub(crate) fn enqueue_reply(queue: &str, items: Vec<Vec<u8>>, n: usize) -> Result<Vec<JobId>, Error> {
    match items.first().map(Vec::as_slice) {
        Some(b"ok") if items.len() == n + 1 => {
            items[1..].iter().map(|u| job_id("enqueue", queue, u).map_err(Error::from)).collect()
        }
        Some(b"full") if items.len() == 2 => {
            Err(Error::QueueFull { queue: queue.to_owned(), max_jobs: num("enqueue", &items[1])? })
        }
        Some(b"priority") if items.len() == 3 => {
            let rank = |b: &[u8]| priority_of(b).ok_or_else(|| RedisQueueError::reply("enqueue", "bad rank"));
            let accepted = items[2].iter().map(|r| rank(std::slice::from_ref(r))).collect::<Result<_, _>>()?;
            Err(Error::PriorityNotAccepted { queue: queue.to_owned(), priority: rank(&items[1])?, accepted })
        }
        _ => Err(RedisQueueError::reply("enqueue", format!("{} items", items.len())).into()),
    }
}

pub(crate) fn job_id(op: &'static str, queue: &str, ulid: &[u8]) -> Result<JobId, RedisQueueError> {
    format!("{queue}:{}", text(ulid)).parse().map_err(|_| RedisQueueError::reply(op, "a job id is malformed"))
}

impl RedisQueue {
    /// One script call per queue of the batch (the batch's order kept within
    /// each queue). A queue refusing its part (`max_jobs`,
    /// `priority_levels`) stores nothing of that part; parts of other queues
    /// sent before it stay stored (a batch spanning queues is all or nothing
    /// per queue: one script cannot span Redis Cluster slots).
    pub(crate) async fn enqueue_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        for j in &jobs {
            validate_queue_name(j.queue())?;
        }
        let now = to_ms(SystemTime::now());
        let mut out: Vec<Option<JobId>> = vec![None; jobs.len()];
        for (queue, idx) in by_queue(&jobs, NewJob::queue) {
            let keys = self.keys(queue);
            let mut inv = SCRIPTS.enqueue.prepare_invoke();
            inv.key(keys.base()).arg(now).arg(idx.len());
            for &i in &idx {
                job_args(&mut inv, &jobs[i]);
            }
            let reply: Value =
                inv.invoke_async(&mut self.conn()).await.map_err(|e| self.command_error("enqueue", &e))?;
            let ids = enqueue_reply(queue, strings("enqueue", reply)?, idx.len())?;
            for (&i, id) in idx.iter().zip(ids) {
                out[i] = Some(id);
            }
            self.register(queue).await?;
        }
        out.into_iter()
            .map(|id| id.ok_or_else(|| RedisQueueError::reply("enqueue", "an id is missing").into()))
            .collect()
    }

    /// One script call per queue in `req.queues` order until `req.max` jobs
    /// are leased. Queues after that are visited only for their
    /// housekeeping, at most once a second per handle.
    pub(crate) async fn fetch_jobs(&self, req: &FetchRequest) -> Result<Fetched, Error> {
        let mut out = Fetched::default();
        let mut next_due: Option<u64> = None;
        let r = self.inner.retention;
        for queue in &req.queues {
            // A name that cannot be valid has no jobs (and would break the
            // key layout).
            if validate_queue_name(queue).is_err() {
                continue;
            }
            let room = req.max.saturating_sub(out.jobs.len());
            let started = Instant::now();
            if room == 0 {
                let last = lock(&self.inner.maintained).get(queue).copied();
                if last.is_some_and(|t| started.duration_since(t) < HOUSEKEEPING_EVERY) {
                    continue;
                }
            }
            let now = to_ms(SystemTime::now());
            let reply: Value = SCRIPTS
                .fetch
                .key(self.keys(queue).base())
                .arg(now)
                .arg(room)
                .arg(dur_ms(req.lease))
                .arg(req.default_max_retries)
                .arg(BATCH)
                .arg(dur_ms(r.succeeded))
                .arg(dur_ms(r.dead_age))
                .arg(r.dead_max)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("fetch", &e))?;
            lock(&self.inner.maintained).insert(queue.clone(), started);
            let items = strings("fetch", reply)?;
            let Some((due, jobs)) = items.split_first() else {
                return Err(RedisQueueError::reply("fetch", "empty answer").into());
            };
            if let Some(d) = opt_u64("fetch", due)? {
                next_due = Some(next_due.map_or(d, |n| n.min(d)));
            }
            if jobs.len() % 10 != 0 {
                return Err(RedisQueueError::reply("fetch", format!("{} job fields", jobs.len())).into());
            }
            for f in jobs.chunks_exact(10) {
                out.jobs.push(leased(queue, f)?);
            }
        }
        out.next_due = next_due.map(from_ms);
        Ok(out)
    }

    /// One script call per queue of the batch; results in the batch's order.
    pub(crate) async fn finish_jobs(&self, batch: Vec<Finish>) -> Result<Vec<FinishResult>, Error> {
        let now = to_ms(SystemTime::now());
        let mut out = vec![FinishResult::Stale; batch.len()];
        for (queue, idx) in by_queue(&batch, |f: &Finish| f.id.queue()) {
            if validate_queue_name(queue).is_err() {
                continue; // Never stored: stale.
            }
            let mut inv = SCRIPTS.finish.prepare_invoke();
            inv.key(self.keys(queue).base()).arg(now).arg(self.inner.retention.dead_max).arg(idx.len());
            for &i in &idx {
                let f = &batch[i];
                inv.arg(f.id.ulid().to_string()).arg(f.token);
                let at = |t: Option<SystemTime>| t.map(|t| to_ms_ceil(t).to_string()).unwrap_or_default();
                match &f.outcome {
                    Outcome::Succeeded { result: None } => inv.arg("ok").arg("").arg(""),
                    Outcome::Succeeded { result: Some(r) } => inv.arg("okr").arg(&r[..]).arg(""),
                    Outcome::Retry { error, at: t } => inv.arg("retry").arg(error).arg(at(Some(*t))),
                    Outcome::Dead { error } => inv.arg("dead").arg(error).arg(""),
                    Outcome::Release { at: t, reason } => inv.arg("release").arg(reason).arg(at(*t)),
                };
            }
            let reply: Value =
                inv.invoke_async(&mut self.conn()).await.map_err(|e| self.command_error("finish", &e))?;
            let items = strings("finish", reply)?;
            if items.len() != idx.len() {
                return Err(RedisQueueError::reply("finish", format!("{} results", items.len())).into());
            }
            for (&i, s) in idx.iter().zip(&items) {
                out[i] = match text(s) {
                    "stale" => FinishResult::Stale,
                    s => FinishResult::Applied(
                        status_of(s).ok_or_else(|| RedisQueueError::reply("finish", format!("status `{s}`")))?,
                    ),
                };
            }
        }
        Ok(out)
    }

    /// One script call per queue of the batch.
    pub(crate) async fn extend(&self, leases: &[(JobId, u64)], lease: Duration) -> Result<Vec<LeaseState>, Error> {
        let now = to_ms(SystemTime::now());
        let mut out = vec![LeaseState::Lost; leases.len()];
        for (queue, idx) in by_queue(leases, |(id, _)| id.queue()) {
            if validate_queue_name(queue).is_err() {
                continue;
            }
            let mut inv = SCRIPTS.extend.prepare_invoke();
            inv.key(self.keys(queue).base()).arg(now).arg(dur_ms(lease));
            for &i in &idx {
                inv.arg(leases[i].0.ulid().to_string()).arg(leases[i].1);
            }
            let reply: Value =
                inv.invoke_async(&mut self.conn()).await.map_err(|e| self.command_error("extend_leases", &e))?;
            let items = strings("extend_leases", reply)?;
            if items.len() != idx.len() {
                return Err(RedisQueueError::reply("extend_leases", format!("{} results", items.len())).into());
            }
            for (&i, s) in idx.iter().zip(&items) {
                out[i] = match text(s) {
                    "held" => LeaseState::Held,
                    "cancel" => LeaseState::CancelRequested,
                    _ => LeaseState::Lost,
                };
            }
        }
        Ok(out)
    }
}

/// One leased job from the fetch script's 10 fields.
fn leased(queue: &str, f: &[Vec<u8>]) -> Result<LeasedJob, RedisQueueError> {
    const OP: &str = "fetch";
    let priority: Priority = priority_of(&f[3]).ok_or_else(|| RedisQueueError::reply(OP, "bad priority rank"))?;
    Ok(LeasedJob {
        id: job_id(OP, queue, &f[0])?,
        name: String::from_utf8_lossy(&f[1]).into_owned(),
        payload: f[2].clone(),
        priority,
        attempt: u32::try_from(num(OP, &f[4])?).unwrap_or(u32::MAX),
        max_retries: opt_u64(OP, &f[5])?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        timeout: opt_u64(OP, &f[6])?.map(Duration::from_millis),
        enqueued_at: from_ms(num(OP, &f[7])?),
        token: num(OP, &f[8])?,
        headers: headers(&f[9]),
    })
}

/// Stored headers (a JSON object; absent or unreadable: none).
pub(crate) fn headers(raw: &[u8]) -> jobs_core::Headers {
    if raw.is_empty() {
        return jobs_core::Headers::new();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}
