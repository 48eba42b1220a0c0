//! The capabilities beside the hot path: inspection, administration,
//! history, pool presence and schedules, over the same locked state.

use std::time::{Duration, SystemTime};

use super::events::emit;
use super::hot::{enqueue_locked, finish_record, forget};
use super::{breaker, info, MemoryQueue};
use crate::error::Error;
use crate::events::{EventKind, RETRIED_DEAD};
use crate::parse::validate_queue_name;
use crate::queue::{
    BoxFuture, BreakerAction, BreakerInfo, CancelResult, Counts, JobInfo, MinuteCounts, NewJob, Overlap, PoolInfo,
    PoolPresence, QueueAdmin, QueueCounts, QueueHistory, QueueInspect, QueuePolicy, QueueStats, ScheduleDef,
    ScheduleState, ScheduleStore, GROUP_BREAKERS_LISTED,
};
use crate::vocab::{JobId, JobStatus, Priority};

impl QueueInspect for MemoryQueue {
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, Error>> {
        let r = self.lock().jobs.get(id).map(info);
        Box::pin(async move { Ok(r) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, Error>> {
        let st = self.lock();
        let mut stats = QueueStats::default();
        for (name, q) in &st.queues {
            let mut qc = QueueCounts {
                paused: q.paused,
                limited: q.limited + q.ready.limited,
                throttled: q.throttled + q.ready.rate_held,
                breaker_open: q.breaker.is_open(),
                breaker_opened: q.breaker.opened(),
                group_breakers_open: q.ready.open_breakers(0).0,
                group_breakers_opened: q.ready.group_breakers_opened,
                ..Default::default()
            };
            for p in Priority::ALL {
                qc.by_priority.insert(
                    p,
                    Counts {
                        processed: q.processed[p.rank()],
                        failed: q.failed[p.rank()],
                        expired: q.expired[p.rank()],
                        ..Default::default()
                    },
                );
            }
            stats.queues.insert(name.clone(), qc);
        }
        for r in st.jobs.values() {
            let Some(qc) = stats.queues.get_mut(r.job.id.queue()) else { continue };
            let Some(c) = qc.by_priority.get_mut(&r.job.priority) else { continue };
            match r.status {
                JobStatus::Pending => c.pending += 1,
                JobStatus::Scheduled => c.scheduled += 1,
                JobStatus::Running => c.running += 1,
                JobStatus::Retrying => c.retrying += 1,
                JobStatus::Dead => c.dead += 1,
                JobStatus::Succeeded | JobStatus::Cancelled | JobStatus::Expired => {}
            }
        }
        Box::pin(async move { Ok(stats) })
    }

    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        let st = self.lock();
        let out = st
            .queues
            .get(queue)
            .map(|q| q.dead.iter().rev().filter_map(|(_, id)| st.jobs.get(id)).take(limit).map(info).collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(out) })
    }

    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, Error>> {
        let st = self.lock();
        let out = match st.queues.get(queue) {
            None => Vec::new(),
            Some(q) => {
                let ids: Box<dyn Iterator<Item = &JobId>> = match status {
                    JobStatus::Pending => Box::new(q.ready.iter()),
                    JobStatus::Scheduled | JobStatus::Retrying => Box::new(q.scheduled.iter().map(|(_, id)| id)),
                    JobStatus::Running => Box::new(q.leased.iter().map(|(_, id)| id)),
                    JobStatus::Dead => Box::new(q.dead.iter().rev().map(|(_, id)| id)),
                    JobStatus::Succeeded | JobStatus::Cancelled | JobStatus::Expired => {
                        Box::new(st.finished.of(queue).rev().map(|(_, id)| id))
                    }
                };
                ids.filter_map(|id| st.jobs.get(id))
                    .filter(|r| r.status == status)
                    .skip(offset)
                    .take(limit)
                    .map(info)
                    .collect()
            }
        };
        Box::pin(async move { Ok(out) })
    }

    fn groups<'a>(
        &'a self,
        queue: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::queue::GroupInfo>, Error>> {
        let out = self.groups_now(queue, limit);
        Box::pin(async move { Ok(out) })
    }
}

impl MemoryQueue {
    fn groups_now(&self, queue: &str, limit: usize) -> Vec<crate::queue::GroupInfo> {
        self.lock().queues.get(queue).map(|q| q.ready.busiest(limit)).unwrap_or_default()
    }
}

impl QueueAdmin for MemoryQueue {
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, Error>> {
        let now = self.clock();
        let mut st = self.lock();
        let st = &mut *st;
        let r = match st.jobs.get_mut(id) {
            None => Err(Error::NotFound(id.clone())),
            Some(r) => Ok(match r.status {
                JobStatus::Running => {
                    r.cancel_requested = true;
                    CancelResult::Requested
                }
                s if s.is_finished() => CancelResult::AlreadyFinished(s),
                _ => {
                    let q = st.queues.entry(id.queue().to_owned()).or_default();
                    if let Some(t) = r.run_at {
                        q.scheduled.remove(&(t, id.clone()));
                    }
                    q.ready.remove(id, r.job.priority.rank(), r.job.group.as_ref(), now);
                    finish_record(r, JobStatus::Cancelled, now, &mut st.finished);
                    let cap = self.event_history();
                    emit(&mut st.events, cap, now, EventKind::Cancelled, id, &r.job.name, r.attempts, None);
                    CancelResult::Cancelled
                }
            }),
        };
        Box::pin(async move { r })
    }

    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), Error>> {
        let (now, cap) = (self.clock(), self.event_history());
        let mut st = self.lock();
        let st = &mut *st;
        let r = match st.jobs.get_mut(id) {
            None => Err(Error::NotFound(id.clone())),
            Some(r) if r.status != JobStatus::Dead => {
                Err(Error::InvalidState { id: id.clone(), status: r.status, action: "retry a job that is not dead" })
            }
            Some(r) => {
                let q = st.queues.entry(id.queue().to_owned()).or_default();
                q.dead.retain(|(_, d)| d != id);
                r.status = JobStatus::Pending;
                r.attempts = 0;
                r.crashes = 0;
                // An operator's retry runs it: a fresh snooze budget, and
                // its expiry (long past, most likely) no longer applies.
                r.snoozes = 0;
                r.expires_at = None;
                r.finished_at = None;
                q.ready.push(id.clone(), r.job.priority.rank(), r.job.group.as_ref(), false);
                emit(&mut st.events, cap, now, EventKind::Enqueued, id, &r.job.name, 0, Some(RETRIED_DEAD));
                Ok(())
            }
        };
        if r.is_ok() {
            self.wake();
        }
        Box::pin(async move { r })
    }

    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        let mut st = self.lock();
        let dead = st.queues.get_mut(queue).map(|q| std::mem::take(&mut q.dead)).unwrap_or_default();
        let n = dead.len() as u64;
        for (_, id) in dead {
            forget(&mut st, &id);
        }
        Box::pin(async move { Ok(n) })
    }

    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).map(|()| {
            self.lock().queues.entry(queue.to_owned()).or_default().paused = true;
        });
        Box::pin(async move { r })
    }

    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).map(|()| {
            self.lock().queues.entry(queue.to_owned()).or_default().paused = false;
        });
        self.wake();
        Box::pin(async move { r })
    }

    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), Error>> {
        let r = validate_queue_name(queue).and_then(|()| policy.check()).map(|()| {
            let mut state = self.lock();
            let q = state.queues.entry(queue.to_owned()).or_default();
            q.ready.set_overrides(policy.group_concurrency, policy.group_rate);
            q.ready.set_group_breaker(policy.group_breaker);
            q.policy = policy;
            drop(state);
            // A raised bound may let waiting pools take jobs now.
            self.wake();
        });
        Box::pin(async move { r })
    }

    fn policy<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueuePolicy, Error>> {
        let r = validate_queue_name(queue)
            .map(|()| self.lock().queues.get(queue).map(|q| q.policy.clone()).unwrap_or_default());
        Box::pin(async move { r })
    }

    fn breaker<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<BreakerInfo, Error>> {
        let now = self.clock();
        let r = validate_queue_name(queue).map(|()| {
            let st = self.lock();
            match st.queues.get(queue) {
                Some(q) => {
                    let (groups_open, groups) = q.ready.open_breakers(GROUP_BREAKERS_LISTED);
                    BreakerInfo {
                        groups_open,
                        groups_opened: q.ready.group_breakers_opened,
                        groups,
                        ..q.breaker.info(q.policy.breaker.as_ref(), now)
                    }
                }
                None => breaker::BreakerRun::default().info(None, now),
            }
        });
        Box::pin(async move { r })
    }

    fn set_breaker<'a>(&'a self, queue: &'a str, action: BreakerAction) -> BoxFuture<'a, Result<(), Error>> {
        let now = self.clock();
        let r = validate_queue_name(queue).map(|()| {
            let mut st = self.lock();
            let q = st.queues.entry(queue.to_owned()).or_default();
            match action {
                BreakerAction::Open(d) => q.breaker.open(now + d),
                BreakerAction::Close => q.breaker.close(),
            }
        });
        // A closed breaker lets waiting pools take jobs now.
        self.wake();
        Box::pin(async move { r })
    }

    fn set_group_breaker<'a>(
        &'a self,
        queue: &'a str,
        group: &'a str,
        action: BreakerAction,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let now = self.clock();
        let r = validate_queue_name(queue).and_then(|()| crate::parse::validate_group_key(group)).map(|()| {
            let mut st = self.lock();
            let q = st.queues.entry(queue.to_owned()).or_default();
            match action {
                BreakerAction::Open(d) => q.ready.open_group_breaker(group, now + d),
                BreakerAction::Close => q.ready.close_group_breaker(group),
            }
        });
        self.wake();
        Box::pin(async move { r })
    }
}

impl QueueHistory for MemoryQueue {
    fn throughput<'a>(&'a self, queue: &'a str, minutes: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, Error>> {
        let now = self.clock().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() / 60 * 60;
        let st = self.lock();
        let history = st.queues.get(queue).map(|q| &q.history);
        let out = (0..minutes as u64)
            .rev()
            .map(|back| {
                let minute = now.saturating_sub(back * 60);
                history
                    .and_then(|h| h.iter().rev().find(|m| m.minute == minute).copied())
                    .unwrap_or(MinuteCounts { minute, ..Default::default() })
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }
}

impl PoolPresence for MemoryQueue {
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let now = self.clock();
        let info = PoolInfo { last_seen: now, ..info };
        let mut st = self.lock();
        // Pools that died without removing themselves go with the next
        // heartbeat of any pool, listed or not.
        st.pools.retain(|_, (_, until)| *until > now);
        st.pools.insert(info.id.clone(), (info, now + ttl));
        Box::pin(async { Ok(()) })
    }

    fn remove_pool<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.lock().pools.remove(id);
        Box::pin(async { Ok(()) })
    }

    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, Error>> {
        let now = self.clock();
        let mut st = self.lock();
        st.pools.retain(|_, (_, until)| *until > now);
        let mut out: Vec<PoolInfo> = st.pools.values().map(|(w, _)| w.clone()).collect();
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.id.cmp(&b.id)));
        Box::pin(async move { Ok(out) })
    }
}

impl ScheduleStore for MemoryQueue {
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        let mut st = self.lock();
        match st.schedules.get_mut(&def.name) {
            Some(existing) => {
                let created_at = existing.def.created_at;
                existing.def = ScheduleDef { created_at, ..def };
            }
            None => {
                let state = ScheduleState {
                    def,
                    paused: false,
                    last_tick: None,
                    last_run: None,
                    last_job: None,
                    held_tick: None,
                    skipped: 0,
                    last_skipped: None,
                };
                st.schedules.insert(state.def.name.clone(), state);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        let out = self.lock().schedules.values().cloned().collect();
        Box::pin(async move { Ok(out) })
    }

    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let removed = self.lock().schedules.remove(name).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        let r = match self.lock().schedules.get_mut(name) {
            Some(s) => {
                s.paused = paused;
                Ok(())
            }
            None => Err(Error::ScheduleNotFound(name.to_owned())),
        };
        Box::pin(async move { r })
    }

    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        let now = self.clock();
        let r = (|| {
            let mut st = self.lock();
            let state = st.schedules.get(name).ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
            // The overlap check and the fire are one step under the lock, as
            // they are one script on Redis (fire_schedule.lua, which says
            // the same rules).
            let busy = state.last_job.as_ref().and_then(|id| st.jobs.get(id)).is_some_and(|r| !r.status.is_finished());
            let releasing = state.held_tick == Some(tick);
            if releasing && (busy || job.is_none()) {
                return Ok(None);
            }
            if !releasing && state.last_tick.is_some_and(|t| t >= tick) {
                return Ok(None);
            }
            let waits = !releasing && job.is_some() && busy && state.def.overlap != Overlap::Allow;
            if waits {
                let state = st.schedules.get_mut(name).ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
                state.last_tick = Some(tick);
                if state.def.overlap == Overlap::Queue && state.held_tick.is_none() {
                    state.held_tick = Some(tick);
                } else {
                    state.skipped += 1;
                    state.last_skipped = Some(tick);
                }
                return Ok(None);
            }
            // Enqueue first: a refused enqueue leaves the tick unhandled.
            let id = match job {
                Some(j) => {
                    crate::queue::check_times(std::slice::from_ref(&j))?;
                    Some(enqueue_locked(&mut st, vec![j], now, self.event_history())?.remove(0))
                }
                None => None,
            };
            let state = st.schedules.get_mut(name).ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
            if !releasing {
                state.last_tick = Some(tick);
            }
            if let Some(id) = &id {
                // The job runs for the held tick too: it waits no longer.
                state.held_tick = None;
                state.last_run = Some(now);
                state.last_job = Some(id.clone());
            }
            Ok(id)
        })();
        if matches!(r, Ok(Some(_))) {
            self.wake();
        }
        Box::pin(async move { r })
    }
}
