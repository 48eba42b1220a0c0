//! The workers' calls: enqueue, fetch, finish, extend leases. Each is one
//! script call per queue touched, whatever the batch size, and each script
//! runs a fixed number of Redis commands per batch (not per job) on the
//! common path: see the crate README.
//!
//! Scripts are sent as `EVALSHA` commands built in one buffer (the
//! driver's `ScriptInvocation` allocates per argument), with the script
//! loaded and the call repeated when Redis answers `NOSCRIPT`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jobs_core::backend::{FetchRequest, Fetched, Finish, FinishResult, LeaseState, LeasedJob, Outcome, QueueFailure};
use jobs_core::{validate_queue_name, Error, JobId, JobStatus, NewJob, When};
use redis::{Cmd, Script, Value};

use crate::decode::{dur_ms, num, opt_u64, priority_of, text, to_ms_ceil, Record, State};
use crate::error::RedisQueueError;
use crate::queue::{lock, RedisQueue};
use crate::scripts::SCRIPTS;
use crate::PayloadFormat;

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
        // The common case, a batch of one queue, without hashing.
        if let Some(last) = groups.last_mut().filter(|g| g.0 == q) {
            last.1.push(i);
            continue;
        }
        let g = *index.entry(q).or_insert_with(|| {
            groups.push((q, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

/// Where script arguments go: a command being built, or a driver
/// `ScriptInvocation` (the rarely used scripts).
pub(crate) trait ArgSink {
    /// Appends one argument.
    fn push_arg<T: redis::ToRedisArgs>(&mut self, arg: T);
}

impl ArgSink for Cmd {
    fn push_arg<T: redis::ToRedisArgs>(&mut self, arg: T) {
        self.arg(arg);
    }
}

impl ArgSink for redis::ScriptInvocation<'_> {
    fn push_arg<T: redis::ToRedisArgs>(&mut self, arg: T) {
        self.arg(arg);
    }
}

/// The 4 arguments of one job for enqueue.lua: ulid, record, run_at (see
/// [`due_arg`]), unique_for_ms. (The payload is stored as JSON: this is for a schedule's
/// tick, whose job any reader decodes whatever the handle's format.)
pub(crate) fn job_args<S: ArgSink + ?Sized>(inv: &mut S, j: &NewJob) {
    let mut scratch = Vec::new();
    job_args_with(inv, j, &mut scratch, PayloadFormat::Json);
}

/// [`job_args`] with a reusable buffer for the record, and the payload
/// stored as `format` says.
fn job_args_with<S: ArgSink + ?Sized>(inv: &mut S, j: &NewJob, scratch: &mut Vec<u8>, format: PayloadFormat) {
    let mut ulid = [0u8; ulid::ULID_LEN];
    inv.push_arg(&*j.id.ulid().array_to_str(&mut ulid));
    Record::write(scratch, j, format);
    inv.push_arg(&scratch[..]);
    match j.run_at {
        Some(w) => inv.push_arg(due_arg(w)),
        None => inv.push_arg(""),
    }
    match j.unique_for {
        Some(d) => inv.push_arg(dur_ms(d).max(1)),
        None => inv.push_arg(""),
    }
}

/// A due time as the scripts take it (`due_at` in common.lua): `+<ms>` for a
/// time relative to the server's clock (rounded up: never early), `<ms>`
/// for an absolute time the caller chose. Clamped to the limits of
/// [`jobs_core::backend::check_times`] (a backoff is not checked by it), so that the
/// scripts' numbers stay exact.
pub(crate) fn due_arg(w: When) -> String {
    match w {
        When::In(d) => {
            let d = d.min(jobs_core::backend::MAX_JOB_DURATION);
            let ms = dur_ms(d);
            let ms = if Duration::from_millis(ms) < d { ms.saturating_add(1) } else { ms };
            format!("+{ms}")
        }
        When::At(t) => to_ms_ceil(t).min(jobs_core::backend::MAX_SCHEDULED_AT_SECS * 1000).to_string(),
    }
}

/// `EVALSHA <sha> 1 <base>`, ready for the script's arguments.
fn evalsha(script: &Script, base: &str) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(1).arg(base);
    cmd
}

/// Turns enqueue.lua's refusals into errors; `Ok(ids)` for `ok` (the full
/// form, with every id).
pub(crate) fn enqueue_reply(queue: &str, items: Vec<Vec<u8>>, n: usize) -> Result<Vec<JobId>, Error> {
    match items.first().map(Vec::as_slice) {
        Some(b"ok") if items.len() == n + 1 => {
            items[1..].iter().map(|u| job_id("enqueue", queue, u).map_err(Error::from)).collect()
        }
        _ => Err(refusal(queue, &items)),
    }
}

/// enqueue.lua's `full` and `priority` answers as errors.
fn refusal(queue: &str, items: &[Vec<u8>]) -> Error {
    let rank = |b: &[u8]| priority_of(b).ok_or_else(|| RedisQueueError::reply("enqueue", "bad rank"));
    let refused = match items.first().map(Vec::as_slice) {
        Some(b"full") if items.len() == 2 => {
            num("enqueue", &items[1]).map(|max_jobs| Error::QueueFull { queue: queue.to_owned(), max_jobs })
        }
        Some(b"priority") if items.len() == 3 => {
            items[2].iter().map(|r| rank(std::slice::from_ref(r))).collect::<Result<_, _>>().and_then(|accepted| {
                Ok(Error::PriorityNotAccepted { queue: queue.to_owned(), priority: rank(&items[1])?, accepted })
            })
        }
        _ => Err(RedisQueueError::reply("enqueue", format!("{} items", items.len()))),
    };
    refused.unwrap_or_else(Error::from)
}

pub(crate) fn job_id(op: &'static str, queue: &str, ulid: &[u8]) -> Result<JobId, RedisQueueError> {
    let u = ulid::Ulid::from_string(text(ulid)).map_err(|_| RedisQueueError::reply(op, "a job id is malformed"))?;
    Ok(JobId::from_parts(queue, u))
}

/// A reply item as bytes.
fn bytes(op: &'static str, v: Value) -> Result<Vec<u8>, RedisQueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(RedisQueueError::reply(op, format!("expected a string, got {other:?}"))),
    }
}

/// A reply that is an array.
fn array(op: &'static str, v: Value) -> Result<Vec<Value>, RedisQueueError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(RedisQueueError::reply(op, format!("expected an array, got {other:?}"))),
    }
}

impl RedisQueue {
    /// Sends a script command; loads the script and sends it again when
    /// Redis does not know it (after a restart, a failover, `SCRIPT FLUSH`).
    pub(crate) async fn eval(&self, script: &Script, cmd: &Cmd, op: &'static str) -> Result<Value, Error> {
        let mut c = self.conn();
        let first = cmd.query_async::<Value>(&mut c).await;
        let reply = match first {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                script.load_async(&mut c).await.map_err(|e| self.command_error(op, &e))?;
                cmd.query_async::<Value>(&mut c).await
            }
            other => other,
        };
        reply.map_err(|e| self.command_error(op, &e))
    }

    /// One script call per queue of the batch (the batch's order kept within
    /// each queue). A queue refusing its part (`max_jobs`,
    /// `priority_levels`) stores nothing of that part; parts of other queues
    /// sent before it stay stored (a batch spanning queues is all or nothing
    /// per queue: one script cannot span Redis Cluster slots).
    pub(crate) async fn enqueue_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        for j in &jobs {
            validate_queue_name(j.queue())?;
        }
        jobs_core::backend::check_payload_sizes(&jobs, self.inner.max_payload)?;
        jobs_core::backend::check_times(&jobs)?;
        let groups = by_queue(&jobs, NewJob::queue);
        // The queue index first: once a script has stored jobs, no later
        // step may fail the call (the producer would retry and store them
        // twice). A queue listed with no job stored is harmless.
        for (queue, _) in &groups {
            self.register(queue).await?;
        }
        let mut replaced: Vec<(usize, JobId)> = Vec::new();
        let mut scratch = Vec::with_capacity(256);
        for (queue, idx) in groups {
            let mut cmd = evalsha(&SCRIPTS.enqueue, self.keys(queue).base());
            cmd.arg(idx.len());
            for &i in &idx {
                job_args_with(&mut cmd, &jobs[i], &mut scratch, self.inner.payload_format);
            }
            let items = array("enqueue", self.eval(&SCRIPTS.enqueue, &cmd, "enqueue").await?)?;
            let mut items = items.into_iter();
            match items.next().map(|v| bytes("enqueue", v)).transpose()?.as_deref() {
                // Positions (1-based) whose id is another job's: a live
                // duplicate of a `unique_for` job.
                Some(b"okc") => {
                    while let (Some(pos), Some(id)) = (items.next(), items.next()) {
                        let pos = usize::try_from(num("enqueue", &bytes("enqueue", pos)?)?).unwrap_or(usize::MAX);
                        let i = pos.checked_sub(1).and_then(|p| idx.get(p)).copied().ok_or_else(|| {
                            Error::from(RedisQueueError::reply("enqueue", "a duplicate's position is out of range"))
                        })?;
                        replaced.push((i, job_id("enqueue", queue, &bytes("enqueue", id)?)?));
                    }
                }
                first => {
                    let mut all: Vec<Vec<u8>> = first.map(<[u8]>::to_vec).into_iter().collect();
                    for v in items {
                        all.push(bytes("enqueue", v)?);
                    }
                    return Err(refusal(queue, &all));
                }
            }
        }
        let mut out: Vec<JobId> = jobs.into_iter().map(|j| j.id).collect();
        for (i, id) in replaced {
            out[i] = id;
        }
        Ok(out)
    }

    /// One script call per queue in `req.queues` order until `req.max` jobs
    /// are leased. Queues after that are visited only for their
    /// housekeeping, at most once a second per handle. A queue whose call
    /// fails is reported in [`Fetched::failed`] and the others are still
    /// served: the jobs already leased are returned, never stranded until
    /// their lease expires. `Err` only when every queue visited failed.
    pub(crate) async fn fetch_jobs(&self, req: &FetchRequest) -> Result<Fetched, Error> {
        let mut out = Fetched::default();
        let mut next_due: Option<u64> = None;
        let mut visited = 0usize;
        let mut first_error = None;
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
            visited += 1;
            match self.fetch_queue(queue, room, req, &mut out.jobs).await {
                Ok(due) => {
                    lock(&self.inner.maintained).insert(queue.clone(), started);
                    if let Some(d) = due {
                        next_due = Some(next_due.map_or(d, |n| n.min(d)));
                    }
                }
                Err(e) => {
                    out.failed.push(QueueFailure { queue: queue.clone(), error: e.to_string() });
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            if out.failed.len() == visited && out.jobs.is_empty() {
                return Err(e);
            }
        }
        out.next_due = next_due.map(Duration::from_millis);
        Ok(out)
    }

    /// One queue's part of [`fetch_jobs`](Self::fetch_jobs): the fetch
    /// script, its leased jobs appended to `jobs`. Returns how long until the
    /// queue's next due time (ms, on the server's clock), if any.
    async fn fetch_queue(
        &self,
        queue: &str,
        room: usize,
        req: &FetchRequest,
        jobs: &mut Vec<LeasedJob>,
    ) -> Result<Option<u64>, Error> {
        const OP: &str = "fetch";
        let r = self.inner.retention;
        let mut cmd = evalsha(&SCRIPTS.fetch, self.keys(queue).base());
        cmd.arg(room)
            .arg(dur_ms(req.lease))
            .arg(req.default_max_retries)
            .arg(BATCH)
            .arg(dur_ms(r.succeeded))
            .arg(dur_ms(r.dead_age))
            .arg(r.dead_max)
            .arg(req.max_crashes)
            .arg(r.succeeded_max);
        let reply = self.eval(&SCRIPTS.fetch, &cmd, OP).await?;
        let mut items = array(OP, reply)?.into_iter();
        let (Some(due), Some(token)) = (items.next(), items.next()) else {
            return Err(RedisQueueError::reply(OP, "short answer").into());
        };
        let due = opt_u64(OP, &bytes(OP, due)?)?;
        if items.len() % 4 != 0 {
            return Err(RedisQueueError::reply(OP, format!("{} job fields", items.len())).into());
        }
        if items.len() == 0 {
            return Ok(due);
        }
        let token = num(OP, &bytes(OP, token)?)?;
        jobs.reserve(items.len() / 4);
        // Entries this process cannot read as jobs (written by something
        // else): dead-lettered with the reason, never holding up the rest.
        let mut unreadable = Vec::new();
        while let (Some(id), Some(rec), Some(old), Some(crashes)) =
            (items.next(), items.next(), items.next(), items.next())
        {
            let old = match old {
                Value::Nil => None,
                v => Some(bytes(OP, v)?),
            };
            let crashes = match crashes {
                Value::Nil => 0,
                v => u32::try_from(num(OP, &bytes(OP, v)?)?).unwrap_or(u32::MAX),
            };
            let id = bytes(OP, id)?;
            match leased(queue, &id, bytes(OP, rec)?, token, old.as_deref()) {
                Ok(job) => jobs.push(LeasedJob { crashes, ..job }),
                Err(e) => unreadable.push((id, e.to_string())),
            }
        }
        if !unreadable.is_empty() {
            self.bury(queue, token, unreadable).await;
        }
        Ok(due)
    }

    /// Moves jobs that a fetch just leased under `token` but that cannot be
    /// read (a record or ulid that does not parse) to the dead-letter set
    /// with the reason. A failure is logged: they are then reclaimed when
    /// the lease expires, and tried again.
    async fn bury(&self, queue: &str, token: u64, jobs: Vec<(Vec<u8>, String)>) {
        let mut cmd = evalsha(&SCRIPTS.finish, self.keys(queue).base());
        cmd.arg(self.inner.retention.dead_max).arg(jobs.len());
        for (ulid, reason) in &jobs {
            tracing::warn!(queue, job = text(ulid), error = %reason, "unreadable job entry: moved to the dead-letter set");
            cmd.arg(&ulid[..]).arg(token).arg("dead").arg(format!("unreadable job entry: {reason}"));
        }
        if let Err(e) = self.eval(&SCRIPTS.finish, &cmd, "fetch").await {
            tracing::warn!(queue, error = %e, jobs = jobs.len(), "could not dead-letter unreadable job entries");
        }
    }

    /// One script call per queue of the batch; results in the batch's order.
    pub(crate) async fn finish_jobs(&self, batch: Vec<Finish>) -> Result<Vec<FinishResult>, Error> {
        const OP: &str = "finish";
        let mut out = vec![FinishResult::Stale; batch.len()];
        for (queue, mut idx) in by_queue(&batch, |f: &Finish| f.id.queue()) {
            if validate_queue_name(queue).is_err() {
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
            let mut cmd = evalsha(&SCRIPTS.finish, self.keys(queue).base());
            cmd.arg(self.inner.retention.dead_max).arg(idx.len());
            for &i in &idx {
                let f = &batch[i];
                let mut ulid = [0u8; ulid::ULID_LEN];
                cmd.arg(&*f.id.ulid().array_to_str(&mut ulid)).arg(f.token);
                match &f.outcome {
                    Outcome::Started => cmd.arg("start"),
                    Outcome::Succeeded { result: None } => cmd.arg("ok"),
                    Outcome::Succeeded { result: Some(r) } => cmd.arg("okr").arg(&r[..]),
                    Outcome::Retry { error, at } => cmd.arg("retry").arg(error).arg(due_arg(*at)),
                    Outcome::Dead { error } => cmd.arg("dead").arg(error),
                    Outcome::Release { at: Some(at), reason } => cmd.arg("release").arg(reason).arg(due_arg(*at)),
                    Outcome::Release { at: None, reason } => cmd.arg("release").arg(reason).arg(""),
                };
            }
            let codes = bytes(OP, self.eval(&SCRIPTS.finish, &cmd, OP).await?)?;
            if codes.len() != idx.len() {
                return Err(RedisQueueError::reply(OP, format!("{} results", codes.len())).into());
            }
            for (&i, c) in idx.iter().zip(&codes) {
                out[i] = match c {
                    b'x' => FinishResult::Stale,
                    b'S' => FinishResult::Applied(JobStatus::Succeeded),
                    b'c' => FinishResult::Applied(JobStatus::Cancelled),
                    b'r' => FinishResult::Applied(JobStatus::Retrying),
                    b'd' => FinishResult::Applied(JobStatus::Dead),
                    b'p' => FinishResult::Applied(JobStatus::Pending),
                    b's' => FinishResult::Applied(JobStatus::Scheduled),
                    b'R' => FinishResult::Applied(JobStatus::Running),
                    other => {
                        return Err(RedisQueueError::reply(OP, format!("status code `{}`", char::from(*other))).into())
                    }
                };
            }
        }
        Ok(out)
    }

    /// One script call per queue of the batch.
    pub(crate) async fn extend(&self, leases: &[(JobId, u64)], lease: Duration) -> Result<Vec<LeaseState>, Error> {
        const OP: &str = "extend_leases";
        let mut out = vec![LeaseState::Lost; leases.len()];
        for (queue, idx) in by_queue(leases, |(id, _)| id.queue()) {
            if validate_queue_name(queue).is_err() {
                continue;
            }
            let mut cmd = evalsha(&SCRIPTS.extend, self.keys(queue).base());
            cmd.arg(dur_ms(lease));
            for &i in &idx {
                let mut ulid = [0u8; ulid::ULID_LEN];
                cmd.arg(&*leases[i].0.ulid().array_to_str(&mut ulid)).arg(leases[i].1);
            }
            let codes = bytes(OP, self.eval(&SCRIPTS.extend, &cmd, OP).await?)?;
            if codes.len() != idx.len() {
                return Err(RedisQueueError::reply(OP, format!("{} results", codes.len())).into());
            }
            for (&i, c) in idx.iter().zip(&codes) {
                out[i] = match c {
                    b'h' => LeaseState::Held,
                    b'c' => LeaseState::CancelRequested,
                    _ => LeaseState::Lost,
                };
            }
        }
        Ok(out)
    }
}

/// One leased job from the fetch script's first 3 fields of a job: its
/// ulid, its record (whose allocation becomes the payload's) and its state
/// before the fetch (none: never started, this is attempt 1).
fn leased(
    queue: &str,
    ulid: &[u8],
    mut rec: Vec<u8>,
    token: u64,
    old: Option<&[u8]>,
) -> Result<LeasedJob, RedisQueueError> {
    const OP: &str = "fetch";
    let id = job_id(OP, queue, ulid)?;
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
        crashes: 0,
    };
    let payload = match crate::codec::decode(&rec[r.payload_at..]) {
        // Stored as JSON: the record's buffer becomes the payload, with no
        // copy of it.
        std::borrow::Cow::Borrowed(_) => {
            rec.drain(..r.payload_at);
            rec
        }
        std::borrow::Cow::Owned(json) => json,
    };
    Ok(LeasedJob { payload, ..job })
}

/// Stored headers (a JSON object; absent or unreadable: none).
pub(crate) fn headers(raw: &[u8]) -> jobs_core::Headers {
    if raw.is_empty() {
        return jobs_core::Headers::new();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}
