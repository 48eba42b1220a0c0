//! The hot path of [`MemoryQueue`]: enqueue, fetch, finish, and the
//! bookkeeping they share.

use std::collections::HashMap;
use std::time::SystemTime;

use super::events::emit;
use super::idents::{self, Held};
use super::retention::{sweep, trim_dead};
use super::{AttemptLog, Finished, MemoryQueue, Record, State, PROMOTE_BATCH, RECLAIM_BATCH};
use crate::error::Error;
use crate::events::EventKind;
use crate::parse::validate_queue_name;
use crate::queue::{
    snooze_limit_error, AttemptInfo, ExpiredJob, FetchRequest, Fetched, Finish, FinishResult, LeasedJob, NewJob,
    Outcome, QueuePolicy, When, EXPIRE_BATCH,
};
use crate::vocab::{JobId, JobStatus, Priority};

/// The error of an attempt whose lease expired (its handler had started).
const LEASE_LOST: &str = "lease expired: the worker stopped responding (crashed, killed or stalled)";

/// The error of a job that ran out of its crash budget.
pub(crate) fn crash_budget_error(crashes: u32) -> String {
    format!(
        "lost its lease {crashes} times before its handler started (its workers died while it waited to run): \
         out of its crash budget"
    )
}

impl MemoryQueue {
    pub(super) fn fetch_now(&self, req: &FetchRequest) -> Fetched {
        let now = self.clock();
        let cap = self.event_history();
        let mut st = self.lock();
        let st = &mut *st;
        let mut out = Fetched::default();
        sweep(st, now, &self.shared.retention, &mut out.archived);
        let mut cut_short = false;
        for qname in &req.queues {
            let Some(q) = st.queues.get_mut(qname) else { continue };
            out.groups |= q.ready.takes_turns();
            // Promote due scheduled and retrying jobs, oldest due first.
            for _ in 0..PROMOTE_BATCH {
                let Some((t, id)) = q.scheduled.first().cloned() else { break };
                if t > now {
                    break;
                }
                q.scheduled.pop_first();
                if let Some(r) = st.jobs.get_mut(&id) {
                    r.status = JobStatus::Pending;
                    r.run_at = None;
                    q.ready.push(id, r.job.priority.rank(), r.job.group.as_ref(), false);
                }
            }
            // Reclaim leases of workers that stopped heartbeating: the
            // attempt counts when the handler is known to have started (a
            // job that keeps killing workers ends dead when its retries run
            // out); before that the job never ran, and the loss counts
            // against its crash budget instead.
            for _ in 0..RECLAIM_BATCH {
                let Some((t, id)) = q.leased.first().cloned() else { break };
                if t > now {
                    break;
                }
                q.leased.pop_first();
                let Some(r) = st.jobs.get_mut(&id) else { continue };
                r.lease_until = None;
                if let Some(g) = &r.job.group {
                    q.ready.ended(&g.key, &id, now);
                }
                let started = std::mem::take(&mut r.started);
                let mut error = LEASE_LOST.to_owned();
                let mut out_of_crashes = false;
                if !started && !r.cancel_requested {
                    r.crashes += 1;
                    out_of_crashes = r.crashes > req.max_crashes;
                    if out_of_crashes {
                        error = crash_budget_error(r.crashes);
                    } else {
                        // Not an attempt: it never ran.
                        r.attempts = r.attempts.saturating_sub(1);
                        r.log.pop();
                        r.status = JobStatus::Pending;
                        q.ready.push(id, r.job.priority.rank(), r.job.group.as_ref(), false);
                        continue;
                    }
                }
                q.count(r.job.priority.rank(), false, now);
                let max = r.job.max_retries.unwrap_or(req.default_max_retries);
                let kind = if r.cancel_requested {
                    EventKind::Cancelled
                } else if out_of_crashes || r.attempts > max {
                    EventKind::Dead
                } else {
                    EventKind::Retrying
                };
                emit(&mut st.events, cap, now, kind, &id, &r.job.name, r.attempts, Some(&error));
                if let Some(a) = r.log.last_mut() {
                    a.finished_at = Some(now);
                    a.error = Some(error.clone());
                }
                match kind {
                    EventKind::Cancelled => finish_record(r, JobStatus::Cancelled, now, &mut st.finished),
                    EventKind::Dead => {
                        r.status = JobStatus::Dead;
                        r.finished_at = Some(now);
                        // Its pool died with it: this fetch's pool reports it.
                        out.dead.push(crate::queue::DeadJob::new(id.clone(), r.job.name.clone(), r.attempts, error));
                        st.finished.flow_end(r, now);
                        q.dead.insert((now, id));
                    }
                    _ => {
                        r.status = JobStatus::Pending;
                        q.ready.push(id, r.job.priority.rank(), r.job.group.as_ref(), false);
                    }
                }
            }
            if q.paused {
                continue;
            }
            let mut expired = 0;
            // Slots left under the queue's `max_running`, across every pool.
            let slots = q
                .policy
                .max_running
                .map_or(usize::MAX, |m| usize::try_from(m.saturating_sub(q.leased.len() as u64)).unwrap_or(usize::MAX));
            // And the starts left in the queue's `rate` window.
            let starts = q.policy.rate.map_or(usize::MAX, |rate| q.starts.room(&rate, now));
            // An open breaker starts nothing; once its cool-down ends, one probe.
            let breaker_room = q.breaker.room(now).0;
            let probe = breaker_room == Some(1);
            let breaker_room = breaker_room.unwrap_or(usize::MAX);
            let mut room = slots.min(starts).min(breaker_room);
            let asked = req.max - out.jobs.len();
            {
                while out.jobs.len() < req.max && expired < EXPIRE_BATCH && room > 0 {
                    let Some((id, rank, group)) = q.ready.pop(now) else { break };
                    let Some(r) = st.jobs.get_mut(&id) else {
                        if let Some(g) = group {
                            q.ready.offer(&g);
                        }
                        continue;
                    };
                    // Only a job none of whose attempts counted expires: one
                    // that ran (and failed) has started.
                    if r.attempts == 0 && r.expires_at.is_some_and(|t| t <= now) {
                        expired += 1;
                        q.expired[rank] += 1;
                        finish_record(r, JobStatus::Expired, now, &mut st.finished);
                        emit(&mut st.events, cap, now, EventKind::Expired, &id, &r.job.name, 0, None);
                        out.expired.push(ExpiredJob { id, name: r.job.name.clone() });
                        if let Some(g) = group {
                            // Not started: its group's slot stays free.
                            q.ready.offer(&g);
                        }
                        cut_short |= expired >= EXPIRE_BATCH && out.jobs.len() < req.max;
                        continue;
                    }
                    st.next_token += 1;
                    r.token = st.next_token;
                    r.attempts += 1;
                    r.started = false;
                    r.status = JobStatus::Running;
                    let until = now + req.lease;
                    r.lease_until = Some(until);
                    r.log.push(AttemptInfo {
                        attempt: r.attempts,
                        started_at: now,
                        finished_at: None,
                        error: None,
                        snoozed_for: None,
                    });
                    q.leased.insert((until, id.clone()));
                    room -= 1;
                    if probe {
                        q.breaker.probe_started(id.clone(), until);
                    }
                    if q.policy.rate.is_some() {
                        q.starts.push(now);
                    }
                    if let Some(g) = group {
                        q.ready.started(&g, &id, until);
                    }
                    emit(&mut st.events, cap, now, EventKind::Started, &id, &r.job.name, r.attempts, None);
                    out.jobs.push(LeasedJob {
                        id,
                        name: r.job.name.clone(),
                        payload: r.job.payload.clone(),
                        format: r.job.format,
                        priority: r.job.priority,
                        attempt: r.attempts,
                        max_retries: r.job.max_retries,
                        timeout: r.job.timeout,
                        enqueued_at: r.job.enqueued_at,
                        token: r.token,
                        headers: r.job.headers.clone(),
                        crashes: r.crashes,
                    });
                }
            }
            if room == 0 && breaker_room > 0 && slots.min(starts) < asked && q.ready.len() > 0 {
                // A bound of the queue left jobs waiting: the tighter one.
                if starts <= slots {
                    q.throttled += 1;
                } else {
                    q.limited += 1;
                }
            }
        }
        for q in &req.queues {
            trim_dead(st, q, &self.shared.retention, now, &mut out.archived);
        }
        out.next_due = req
            .queues
            .iter()
            .filter_map(|n| st.queues.get(n))
            .flat_map(|q| {
                // A rate that holds jobs back: look again when it lets one go.
                let rate_wait = q.policy.rate.and_then(|r| q.starts.next_start(&r, now)).filter(|_| q.ready.len() > 0);
                // An open breaker: look again when its cool-down ends.
                let breaker_wait = q.breaker.room(now).1.filter(|_| q.ready.len() > 0);
                [
                    q.scheduled.first().map(|e| e.0),
                    q.leased.first().map(|e| e.0),
                    q.ready.next_allowed(),
                    rate_wait,
                    breaker_wait,
                ]
            })
            .flatten()
            .min()
            .map(|t| t.duration_since(now).unwrap_or_default());
        if cut_short {
            // Expired jobs filled this fetch's budget: more may wait behind
            // them, so the fetcher looks again at once.
            out.next_due = Some(std::time::Duration::ZERO);
        }
        out
    }

    pub(super) fn finish_now(&self, batch: Vec<Finish>) -> Vec<FinishResult> {
        let now = self.clock();
        let cap = self.event_history();
        let mut st = self.lock();
        let st = &mut *st;
        let mut woke = false;
        let mut dead_touched = Vec::new();
        let out = batch
            .into_iter()
            .map(|f| {
                let Some(r) = st.jobs.get_mut(&f.id) else { return FinishResult::Stale };
                if r.status != JobStatus::Running || r.token != f.token {
                    return FinishResult::Stale;
                }
                if f.outcome == Outcome::Started {
                    // A mark, not an end: the job keeps running and its lease.
                    r.started = true;
                    return FinishResult::Applied(JobStatus::Running);
                }
                let q = st.queues.entry(f.id.queue().to_owned()).or_default();
                // The group's slot frees once the outcome is applied: a probe's
                // verdict must reach its group's breaker first.
                let mut slot_of = None;
                if let Some(until) = r.lease_until.take() {
                    q.leased.remove(&(until, f.id.clone()));
                    // A slot of a bounded queue freed: pools may wait for it.
                    woke |= q.policy.max_running.is_some();
                    slot_of = r.job.group.as_ref().map(|g| g.key.clone());
                }
                let rank = r.job.priority.rank();
                // A snooze past the limit ends the job like a permanent failure.
                let outcome = match f.outcome {
                    Outcome::Snooze { limit, reason, .. }
                        if !r.cancel_requested && r.snoozes.saturating_add(1) > limit =>
                    {
                        r.snoozes = r.snoozes.saturating_add(1);
                        Outcome::Dead { error: snooze_limit_error(limit, &reason) }
                    }
                    other => other,
                };
                let end_attempt = |r: &mut Record, error: Option<String>| {
                    if let Some(a) = r.log.last_mut() {
                        a.finished_at = Some(now);
                        a.error = error;
                    }
                };
                let mut event = |kind, detail: Option<&str>| {
                    emit(&mut st.events, cap, now, kind, &f.id, &r.job.name, r.attempts, detail)
                };
                let status = match outcome {
                    _ if r.cancel_requested => {
                        event(EventKind::Cancelled, None);
                        end_attempt(r, Some("cancelled".into()));
                        finish_record(r, JobStatus::Cancelled, now, &mut st.finished);
                        JobStatus::Cancelled
                    }
                    Outcome::Succeeded { result } => {
                        // The probe succeeded: pools waiting on the breaker go on.
                        woke |= q.breaker.succeeded(&f.id);
                        if let Some(g) = &r.job.group {
                            woke |= q.ready.group_succeeded(&g.key, &f.id);
                        }
                        event(EventKind::Succeeded, None);
                        end_attempt(r, None);
                        r.result = result;
                        q.count(rank, true, now);
                        finish_record(r, JobStatus::Succeeded, now, &mut st.finished);
                        JobStatus::Succeeded
                    }
                    Outcome::Retry { error, at } => {
                        q.breaker.failed(q.policy.breaker.as_ref(), &f.id, now);
                        if let Some(g) = &r.job.group {
                            q.ready.group_failed(&g.key, &f.id, now);
                        }
                        event(EventKind::Retrying, Some(&error));
                        let at = at.resolve(now);
                        end_attempt(r, Some(error));
                        q.count(rank, false, now);
                        r.status = JobStatus::Retrying;
                        r.run_at = Some(at);
                        q.scheduled.insert((at, f.id.clone()));
                        woke = true;
                        JobStatus::Retrying
                    }
                    Outcome::Dead { error } => {
                        q.breaker.failed(q.policy.breaker.as_ref(), &f.id, now);
                        if let Some(g) = &r.job.group {
                            q.ready.group_failed(&g.key, &f.id, now);
                        }
                        event(EventKind::Dead, Some(&error));
                        end_attempt(r, Some(error));
                        q.count(rank, false, now);
                        r.status = JobStatus::Dead;
                        r.finished_at = Some(now);
                        st.finished.flow_end(r, now);
                        q.dead.insert((now, f.id.clone()));
                        dead_touched.push(f.id.queue().to_owned());
                        JobStatus::Dead
                    }
                    // Answered above, before the lease is touched.
                    Outcome::Started => JobStatus::Running,
                    Outcome::Snooze { at, reason, holds_group, .. } => {
                        r.snoozes = r.snoozes.saturating_add(1);
                        let t = at.resolve(now);
                        if holds_group {
                            // An upstream's rate held the job back.
                            q.throttled += 1;
                        }
                        if let Some(g) = r.job.group.as_ref().filter(|_| holds_group) {
                            q.ready.hold(&g.key, t);
                        }
                        // Not an attempt: the count goes back, and the run
                        // stays in the log as a snooze.
                        if let Some(a) = r.log.last_mut() {
                            a.finished_at = Some(now);
                            a.error = Some(reason);
                            a.snoozed_for = Some(t.duration_since(now).unwrap_or_default());
                        }
                        r.attempts = r.attempts.saturating_sub(1);
                        woke = true;
                        if t > now {
                            r.status = JobStatus::Scheduled;
                            r.run_at = Some(t);
                            q.scheduled.insert((t, f.id.clone()));
                            JobStatus::Scheduled
                        } else {
                            r.status = JobStatus::Pending;
                            q.ready.push(f.id.clone(), rank, r.job.group.as_ref(), false);
                            JobStatus::Pending
                        }
                    }
                    Outcome::Release { at, reason: _ } => {
                        // Not an attempt: forget it was started.
                        r.log.pop();
                        r.attempts = r.attempts.saturating_sub(1);
                        woke = true;
                        match at.map(|w| w.resolve(now)) {
                            Some(t) if t > now => {
                                r.status = JobStatus::Scheduled;
                                r.run_at = Some(t);
                                q.scheduled.insert((t, f.id.clone()));
                                JobStatus::Scheduled
                            }
                            _ => {
                                r.status = JobStatus::Pending;
                                q.ready.push(f.id.clone(), rank, r.job.group.as_ref(), true);
                                JobStatus::Pending
                            }
                        }
                    }
                };
                if let Some(g) = slot_of {
                    woke |= q.ready.ended(&g, &f.id, now);
                }
                FinishResult::Applied(status)
            })
            .collect();
        // What this adds to a backlog is not reported: a finish's answer
        // has no place for it, and the archiver's interval finds it.
        for q in dead_touched {
            trim_dead(st, &q, &self.shared.retention, now, &mut Vec::new());
        }
        if woke {
            self.wake();
        }
        out
    }
}

/// Stores a batch after checking all of it: nothing is written on an error.
/// `now` is the store's clock: delays count from it.
pub(super) fn enqueue_locked(
    st: &mut State,
    jobs: Vec<NewJob>,
    now: SystemTime,
    event_history: usize,
) -> Result<Vec<JobId>, Error> {
    let mut adding: HashMap<&str, u64> = HashMap::new();
    for j in &jobs {
        validate_queue_name(j.queue())?;
        if let Some(q) = st.queues.get(j.queue()) {
            check_policy(j.queue(), &q.policy, j.priority)?;
            let n = adding.entry(j.queue()).or_default();
            *n += 1;
            if let Some(max) = q.policy.max_jobs {
                if q.waiting() + *n > max {
                    return Err(Error::QueueFull { queue: j.queue().to_owned(), max_jobs: max });
                }
            }
        }
    }
    st.idents.conflict(&st.jobs, &jobs)?;
    let mut ids = Vec::with_capacity(jobs.len());
    for j in jobs {
        match st.idents.held(&st.jobs, &j) {
            Some(Held::Existing(id)) => {
                ids.push(id);
                continue;
            }
            Some(Held::Replace(id)) => {
                idents::replace(st, &id, j, now, event_history);
                ids.push(id);
                continue;
            }
            None => {}
        }
        let unique_key = j.unique_for.map(|_| (j.name.clone(), j.payload.clone()));
        if let (Some(window), Some(key)) = (j.unique_for, &unique_key) {
            if let Some((id, at)) = st.unique.get(key) {
                let live = st.jobs.get(id).is_some_and(|r| !r.status.is_finished());
                if live && now.duration_since(*at).unwrap_or_default() < window {
                    ids.push(id.clone());
                    continue;
                }
            }
            st.unique.insert(key.clone(), (j.id.clone(), now));
        }
        let id = j.id.clone();
        let j_expires = j.expires;
        let q = st.queues.entry(j.queue().to_owned()).or_default();
        let (status, run_at) = match j.run_at.map(|w: When| w.resolve(now)) {
            Some(t) if t > now => {
                q.scheduled.insert((t, id.clone()));
                (JobStatus::Scheduled, Some(t))
            }
            _ => {
                q.ready.push(id.clone(), j.priority.rank(), j.group.as_ref(), false);
                (JobStatus::Pending, None)
            }
        };
        emit(&mut st.events, event_history, now, EventKind::Enqueued, &id, &j.name, 0, None);
        st.idents.register(&j);
        let rec = Record {
            job: j,
            status,
            attempts: 0,
            log: AttemptLog::default(),
            token: 0,
            lease_until: None,
            run_at,
            cancel_requested: false,
            result: None,
            finished_at: None,
            unique_key,
            started: false,
            crashes: 0,
            snoozes: 0,
            expires_at: expires_at(j_expires, now),
            progress: None,
        };
        st.jobs.insert(id.clone(), rec);
        ids.push(id);
    }
    Ok(ids)
}

/// An expiry as a time on the store's clock (`now`: when it is stored).
fn expires_at(w: Option<When>, now: SystemTime) -> Option<SystemTime> {
    w.map(|w| w.resolve(now))
}

fn check_policy(queue: &str, policy: &QueuePolicy, p: Priority) -> Result<(), Error> {
    if !policy.priority_levels.is_empty() && !policy.priority_levels.contains(&p) {
        return Err(Error::PriorityNotAccepted {
            queue: queue.to_owned(),
            priority: p,
            accepted: policy.priority_levels.clone(),
        });
    }
    Ok(())
}

pub(super) fn finish_record(r: &mut Record, status: JobStatus, now: SystemTime, finished: &mut Finished) {
    r.status = status;
    r.finished_at = Some(now);
    r.run_at = None;
    finished.push_back((now, r.job.id.clone()));
    finished.flow_end(r, now);
}

/// Removes a record and its deduplication entry.
pub(super) fn forget(st: &mut State, id: &JobId) {
    if let Some(r) = st.jobs.remove(id) {
        st.idents.forget(&r.job);
        if let Some(k) = r.unique_key {
            if st.unique.get(&k).is_some_and(|(u, _)| u == id) {
                st.unique.remove(&k);
            }
        }
    }
}
