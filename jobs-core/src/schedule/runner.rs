//! The scheduler loop: a timer to the next tick, one atomic claim per tick.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use rand::Rng;

use super::{Scheduler, Timing, ON_TIME};
use crate::error::Error;
use crate::queue::{CatchUp, NewJob, ScheduleDef, ScheduleStore, When};
use crate::registry::JobDescriptor;
use crate::vocab::JobId;
use std::collections::HashMap;

/// Most ticks one pass enqueues for one schedule with [`CatchUp::All`].
const MAX_CATCH_UP: usize = 1000;
/// How often the loop re-reads schedules that other processes may have added.
const REFRESH: Duration = Duration::from_secs(30);

/// A running scheduler; [`SchedulerHandle::stop`] ends it.
pub struct SchedulerHandle {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops the loop and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Called with each fired tick's lateness (for metrics).
pub(crate) type LatenessHook = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;

pub(crate) fn start(scheduler: Scheduler, lateness: Option<LatenessHook>) -> SchedulerHandle {
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { run(scheduler, s, lateness).await });
    SchedulerHandle { stop, task }
}

/// The scheduler a pool runs: first stores the schedules declared on linked
/// jobs' attributes, then ticks.
pub(crate) fn start_for_pool(
    queue: Arc<dyn ScheduleStore>,
    registry: &HashMap<&'static str, &'static JobDescriptor>,
    lateness: Option<LatenessHook>,
) -> SchedulerHandle {
    let mut declared: Vec<ScheduleDef> = Vec::new();
    for d in registry.values() {
        let Some(cron) = d.cron else { continue };
        match (d.check)(b"{}") {
            Ok(payload) => declared.push(ScheduleDef {
                priority: d.priority,
                payload,
                max_retries: d.max_retries,
                timeout: d.timeout,
                catch_up: CatchUp::One,
                every: cron.every,
                ..ScheduleDef::new(d.name, cron.expression, cron.timezone, d.name, d.queue)
            }),
            Err(e) => tracing::error!(job = d.name, error = %e, "cannot schedule a cron job"),
        }
    }
    let scheduler = Scheduler::from_shared(queue);
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        for mut def in declared {
            let name = def.name.clone();
            // A schedule starts on the backend's clock, like its ticks.
            let stored = match scheduler.queue().now().await {
                Ok(now) => {
                    def.created_at = now;
                    scheduler.put(def).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                tracing::error!(schedule = %name, error = %e, "could not store the schedule");
            }
        }
        run(scheduler, s, lateness).await
    });
    SchedulerHandle { stop, task }
}

async fn run(scheduler: Scheduler, stop: CancellationToken, lateness: Option<LatenessHook>) {
    let mut err_delay = Duration::from_millis(200);
    loop {
        // Registered before the pass, so an add during the pass is not missed.
        let woken = scheduler.wake().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Ticks are due by the backend's clock, never by this host's: a host
        // whose clock runs ahead fires nothing early, one behind nothing late.
        let started = tokio::time::Instant::now();
        let pass = match scheduler.queue().now().await {
            Ok(now) => run_due(scheduler.queue(), now, lateness.as_ref(), "").await.map(|(_, next)| (now, next)),
            Err(e) => Err(e),
        };
        let wait = match pass {
            Ok((now, next)) => {
                err_delay = Duration::from_millis(200);
                // The time to the next tick on the backend's clock, less what
                // the pass took (measured here, monotonically).
                next.map(|t| t.duration_since(now).unwrap_or_default().saturating_sub(started.elapsed()))
                    .unwrap_or(REFRESH)
                    .min(REFRESH)
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?err_delay, "scheduler pass failed");
                err_delay = (err_delay * 2).min(Duration::from_secs(10));
                err_delay
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = &mut woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// How soon a schedule whose tick could not be fired is tried again.
const FIRE_RETRY: Duration = Duration::from_secs(1);

/// One pass over every schedule: enqueue due ticks per their catch-up
/// policy; returns what this pass enqueued and the next tick of any schedule
/// (or the retry of one that failed to fire). A schedule that fails is
/// logged and skipped: the pass goes on with the others. Only schedules
/// whose names start with `only` are handled (`""`: all).
pub(crate) async fn run_due(
    queue: &dyn ScheduleStore,
    now: SystemTime,
    lateness: Option<&LatenessHook>,
    only: &str,
) -> Result<(Vec<JobId>, Option<SystemTime>), Error> {
    let mut fired = Vec::new();
    let mut next: Option<SystemTime> = None;
    let mut schedules = queue.schedules().await?;
    schedules.retain(|s| s.def.name.starts_with(only));
    let runnable = if schedules.is_empty() { None } else { super::orphans::runnable_jobs(queue).await };
    for s in schedules {
        if s.paused {
            continue;
        }
        let orphaned = super::orphans::is_orphaned(runnable.as_ref(), &s.def.job_name);
        let timing = match Timing::of(&s.def) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(schedule = %s.def.name, error = %e, "skipping a schedule that does not parse");
                continue;
            }
        };
        // A tick held by the overlap policy goes first: when the job before
        // it has ended, the backend enqueues it now (and a due tick below
        // then waits for it); otherwise the call writes nothing.
        if let (Some(held), false) = (s.held_tick, orphaned) {
            match queue.fire_schedule(&s.def.name, held, Some(job_for_tick(&s.def, held, now))).await {
                Ok(Some(id)) => {
                    tracing::debug!(schedule = %s.def.name, job = %id, "held tick enqueued: the previous job ended");
                    fired.push(id);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(schedule = %s.def.name, error = %e, "held tick could not be enqueued"),
            }
        }
        let from = s.last_tick.unwrap_or(s.def.created_at).max(s.def.created_at);
        let due = timing.ticks_between(from, now, MAX_CATCH_UP);
        let plan: Vec<(SystemTime, bool)> = match (s.def.catch_up, due.last()) {
            (_, None) => Vec::new(),
            (CatchUp::All, _) => due.iter().map(|t| (*t, true)).collect(),
            (CatchUp::One, Some(last)) => vec![(*last, true)],
            (CatchUp::None, Some(last)) => {
                let on_time = now.duration_since(*last).unwrap_or_default() <= ON_TIME;
                vec![(*last, on_time)]
            }
        };
        if orphaned && !plan.is_empty() {
            tracing::warn!(
                schedule = %s.def.name,
                job = %s.def.job_name,
                "orphaned schedule: no live pool runs its job; the tick is skipped (remove the schedule if the job is gone)"
            );
        }
        let mut failed = false;
        for (tick, enqueue) in plan {
            let job = (enqueue && !orphaned).then(|| job_for_tick(&s.def, tick, now));
            match queue.fire_schedule(&s.def.name, tick, job).await {
                Ok(Some(id)) => {
                    let late = now.duration_since(tick).unwrap_or_default();
                    if let Some(h) = lateness {
                        h(late);
                    }
                    tracing::debug!(schedule = %s.def.name, job = %id, lateness = ?late, "tick enqueued");
                    fired.push(id);
                }
                Ok(None) => {}
                // One schedule that cannot fire (its queue full, a node
                // down) must not hold up the others; its tick stays due
                // and is tried again soon.
                Err(e) => {
                    tracing::warn!(schedule = %s.def.name, error = %e, retry_in = ?FIRE_RETRY, "schedule could not fire; the others go on");
                    failed = true;
                    break;
                }
            }
        }
        let again = if failed { now.checked_add(FIRE_RETRY) } else { timing.next_after(now) };
        if let Some(t) = again {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    Ok((fired, next))
}

/// The job of `def`'s tick `tick`, handled at `now`: with a jitter, due at
/// the tick plus a random delay below it (at once when that has passed).
fn job_for_tick(def: &ScheduleDef, tick: SystemTime, now: SystemTime) -> NewJob {
    let mut job = job_for(def, now);
    if let Some(slots) = jitter_slots(def.jitter) {
        let delay = Duration::from_millis(rand::rng().random_range(0..slots));
        job.run_at = tick.checked_add(delay).filter(|due| *due > now).map(When::At);
    }
    job
}

/// How many whole-millisecond delays `[0, jitter)` holds, `None` when a
/// jitter below a millisecond leaves no delay to draw. The delay is drawn in
/// whole milliseconds because backends keep due times to the millisecond,
/// rounded up so a job is never early: a finer delay just below the jitter
/// would be stored as the jitter itself.
fn jitter_slots(jitter: Option<Duration>) -> Option<u64> {
    let ms = u64::try_from(jitter?.as_millis()).unwrap_or(u64::MAX);
    (ms > 0).then_some(ms)
}

/// The job one run of schedule `def` enqueues, stamped `now`: a tick's, and
/// [`Scheduler::trigger`]'s.
pub(super) fn job_for(def: &ScheduleDef, now: SystemTime) -> NewJob {
    NewJob {
        id: JobId::new(&def.queue),
        name: def.job_name.clone(),
        // A schedule keeps its payload as JSON (the form operators write).
        payload: def.payload.clone(),
        format: crate::payload::PayloadFormat::Json,
        priority: def.priority,
        max_retries: def.max_retries,
        timeout: def.timeout,
        run_at: None,
        unique_for: None,
        caller_id: None,
        key: None,
        group: def.group.clone(),
        expires: None,
        enqueued_at: now,
        headers: Default::default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;
    use crate::error::JobError;
    use crate::memory::MemoryQueue;

    #[crate::job(crate = crate, register = false, name = "sched.prices", queue = "sync", every = "1m 30s")]
    async fn prices() -> Result<(), JobError> {
        Ok(())
    }

    #[tokio::test]
    async fn a_pool_stores_an_every_schedule_declared_on_the_attribute() {
        let q = MemoryQueue::new();
        let d = Prices::__jobs_descriptor();
        let registry = HashMap::from([(d.name, d)]);
        let handle = start_for_pool(Arc::new(q.clone()), &registry, None);
        let stored = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(s) = q.schedules().await.unwrap().into_iter().find(|s| s.def.name == "sched.prices") {
                    return s;
                }
                // Stored by the pool's task: let it run.
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("stored within the deadline");
        handle.stop().await;
        assert_eq!((stored.def.cron.as_str(), stored.def.every), ("", Some(Duration::from_secs(90))));
        assert_eq!((stored.def.queue.as_str(), stored.def.timezone.as_str()), ("sync", "UTC"));
    }

    #[test]
    fn the_longest_jitter_delay_rounded_up_to_a_millisecond_stays_below_the_jitter() {
        let tick = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        for (jitter, slots) in [(Duration::from_secs(30), 30_000), (Duration::from_micros(2_500), 2)] {
            assert_eq!(jitter_slots(Some(jitter)), Some(slots));
            let longest = tick + Duration::from_millis(slots - 1);
            let since_epoch = longest.duration_since(SystemTime::UNIX_EPOCH).unwrap();
            let stored = Duration::from_millis(u64::try_from(since_epoch.as_nanos().div_ceil(1_000_000)).unwrap());
            let delay = (SystemTime::UNIX_EPOCH + stored).duration_since(tick).unwrap();
            assert!(delay < jitter, "{jitter:?}: the longest delay is stored {delay:?} after its tick");
        }
        assert_eq!(jitter_slots(Some(Duration::from_micros(999))), None, "below a millisecond: no delay");
        assert_eq!(jitter_slots(None), None);
    }
}
