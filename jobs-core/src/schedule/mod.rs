//! Recurring jobs: [`Scheduler`] stores named cron schedules in the backend,
//! so every process sees them, and turns their ticks into jobs, each tick
//! exactly once however many processes run a scheduler (the backend's
//! [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule) claims a tick atomically; there is no leader).

mod cron;
mod orphans;
mod runner;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use cron::CronSchedule;
pub use runner::SchedulerHandle;
pub(crate) use runner::{start_for_pool, LatenessHook};

use crate::error::Error;
use crate::job::Job;
use crate::parse::validate_queue_name;
use crate::queue::{CatchUp, ScheduleDef, ScheduleStore};
use crate::vocab::{JobId, Priority};

/// Per-schedule settings beyond the expression and zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleOptions {
    /// Missed ticks policy (default [`CatchUp::One`]).
    pub catch_up: CatchUp,
    /// Queue override (default the job's attribute queue).
    pub queue: Option<String>,
    /// Priority override.
    pub priority: Option<Priority>,
}

/// A schedule as listed: its definition, state and next fire time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The schedule's name.
    pub name: String,
    /// Its cron expression.
    pub cron: String,
    /// Its time zone.
    pub timezone: String,
    /// The job it enqueues.
    pub job_name: String,
    /// The queue it enqueues on.
    pub queue: String,
    /// Missed ticks policy.
    pub catch_up: CatchUp,
    /// Whether it is paused.
    pub paused: bool,
    /// The next tick (none when paused or the expression never fires again).
    pub next_fire: Option<SystemTime>,
    /// When it last enqueued a job.
    pub last_run: Option<SystemTime>,
    /// The last job it enqueued.
    pub last_job: Option<JobId>,
    /// No live pool can run its job (the job's code was removed or
    /// renamed): its ticks are skipped until a pool that runs the job is
    /// back, or an operator removes it.
    #[serde(default)]
    pub orphaned: bool,
}

/// Recurring jobs over any backend.
///
/// ```
/// # use jobs_core::prelude::*;
/// # use jobs_core::Scheduler;
/// #[job]
/// async fn nightly_report() -> Result<(), JobError> { Ok(()) }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
/// let queue = MemoryQueue::new();
/// let scheduler = Scheduler::new(queue.clone());
/// scheduler.add("nightly", "0 0 3 * * *", "Europe/Berlin", NightlyReport {}).await?;
/// let listed = scheduler.list().await?;
/// assert_eq!(listed[0].name, "nightly");
/// assert!(listed[0].next_fire.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Scheduler {
    queue: Arc<dyn ScheduleStore>,
    wake: Arc<tokio::sync::Notify>,
}

impl Scheduler {
    /// A scheduler over `queue` (a clone of the handle the pool uses).
    pub fn new<Q: ScheduleStore>(queue: Q) -> Self {
        Scheduler { queue: Arc::new(queue), wake: Arc::new(tokio::sync::Notify::new()) }
    }

    pub(crate) fn from_shared(queue: Arc<dyn ScheduleStore>) -> Self {
        Scheduler { queue, wake: Arc::new(tokio::sync::Notify::new()) }
    }

    /// Adds (or replaces) a schedule `name` that enqueues `payload` at every
    /// tick of `cron` (5 or 6 fields) read in `timezone` (IANA name).
    pub async fn add<J: Job>(&self, name: &str, cron: &str, timezone: &str, payload: J) -> Result<(), Error> {
        self.add_with(name, cron, timezone, payload, ScheduleOptions::default()).await
    }

    /// [`Scheduler::add`] with options.
    pub async fn add_with<J: Job>(
        &self,
        name: &str,
        cron: &str,
        timezone: &str,
        payload: J,
        options: ScheduleOptions,
    ) -> Result<(), Error> {
        payload.validate()?;
        let payload = serde_json::to_vec(&payload).map_err(|e| Error::Serialize(e.to_string()))?;
        let def = ScheduleDef {
            name: name.to_owned(),
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
            job_name: J::NAME.to_owned(),
            queue: options.queue.unwrap_or_else(|| J::QUEUE.to_owned()),
            priority: options.priority.unwrap_or(J::PRIORITY),
            payload,
            max_retries: J::MAX_RETRIES,
            timeout: J::TIMEOUT,
            catch_up: options.catch_up,
            // Its ticks count from here, on the backend's clock.
            created_at: self.queue.now().await?,
        };
        self.put(def).await
    }

    /// Stores a schedule definition after checking it.
    pub async fn put(&self, def: ScheduleDef) -> Result<(), Error> {
        validate_schedule_name(&def.name)?;
        validate_queue_name(&def.queue)?;
        CronSchedule::parse(&def.cron, &def.timezone)?;
        self.queue.put_schedule(def).await?;
        self.wake.notify_waiters();
        Ok(())
    }

    /// Every schedule, with its next fire time (after the backend's now) and
    /// last run.
    pub async fn list(&self) -> Result<Vec<ScheduleInfo>, Error> {
        let now = self.queue.now().await?;
        let runnable = orphans::runnable_jobs(&*self.queue).await;
        Ok(self
            .queue
            .schedules()
            .await?
            .into_iter()
            .map(|s| {
                let next_fire = if s.paused {
                    None
                } else {
                    CronSchedule::parse(&s.def.cron, &s.def.timezone).ok().and_then(|c| c.next_after(now))
                };
                ScheduleInfo {
                    orphaned: orphans::is_orphaned(runnable.as_ref(), &s.def.job_name),
                    name: s.def.name,
                    cron: s.def.cron,
                    timezone: s.def.timezone,
                    job_name: s.def.job_name,
                    queue: s.def.queue,
                    catch_up: s.def.catch_up,
                    paused: s.paused,
                    next_fire,
                    last_run: s.last_run,
                    last_job: s.last_job,
                }
            })
            .collect())
    }

    /// Holds a schedule's ticks.
    pub async fn pause(&self, name: &str) -> Result<(), Error> {
        self.queue.set_schedule_paused(name, true).await
    }

    /// Lets a paused schedule tick again; ticks that passed while it was
    /// paused are skipped, not caught up.
    pub async fn resume(&self, name: &str) -> Result<(), Error> {
        let now = self.queue.now().await?;
        self.queue.fire_schedule(name, now, None).await?;
        self.queue.set_schedule_paused(name, false).await?;
        self.wake.notify_waiters();
        Ok(())
    }

    /// Deletes a schedule; `false` when there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, Error> {
        self.queue.remove_schedule(name).await
    }

    /// Enqueues schedule `name`'s job now, once, as its next tick would (same
    /// job name, payload, queue, priority, retries and timeout), and returns
    /// its id. The schedule's ticks do not move: its last tick, last run and
    /// last job stay as they were, and the tick due next still fires. A
    /// paused schedule can be triggered too (pausing holds ticks, not
    /// operators). [`Error::ScheduleNotFound`] when there is no such
    /// schedule.
    pub async fn trigger(&self, name: &str) -> Result<JobId, Error> {
        let state = self
            .queue
            .schedules()
            .await?
            .into_iter()
            .find(|s| s.def.name == name)
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
        // Stamped on the backend's clock, like a tick's job.
        let now = self.queue.now().await?;
        let mut ids = self.queue.enqueue_many(vec![runner::job_for(&state.def, now)]).await?;
        ids.pop()
            .ok_or_else(|| Error::Backend(format!("the backend returned no id for schedule `{name}`'s job").into()))
    }

    /// Handles every tick due at `now` once; returns the jobs this call
    /// enqueued. Ticks another process handled already are not enqueued
    /// again. The running scheduler ([`Scheduler::start`]) calls it at each
    /// timer with the backend's clock ([`JobQueue::now`](crate::JobQueue::now)).
    pub async fn run_due(&self, now: SystemTime) -> Result<Vec<JobId>, Error> {
        runner::run_due(&self.queue, now, None).await.map(|(ids, _)| ids)
    }

    /// Runs the scheduler until the handle is stopped: a timer to the next
    /// tick of any schedule, due by the backend's clock (refreshed at most every 30 s, and at once when
    /// this handle adds or resumes a schedule).
    pub fn start(&self) -> SchedulerHandle {
        runner::start(self.clone(), None)
    }

    pub(crate) fn queue(&self) -> &Arc<dyn ScheduleStore> {
        &self.queue
    }

    pub(crate) fn wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }
}

fn validate_schedule_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid schedule name `{name}`: use 1 to 128 letters, digits, `_`, `-`, `.` or `:`"
        )))
    }
}

/// How late a tick may be handled and still count as "due now" for
/// [`CatchUp::None`].
pub(crate) const ON_TIME: Duration = Duration::from_secs(60);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;
    use crate::memory::MemoryQueue;
    use crate::queue::QueueInspect;
    use crate::vocab::JobStatus;

    #[tokio::test]
    async fn trigger_enqueues_the_schedules_job_without_moving_its_ticks() {
        let q = MemoryQueue::new();
        let scheduler = Scheduler::new(q.clone());
        let def = ScheduleDef {
            priority: Priority::High,
            payload: br#"{"day":3}"#.to_vec(),
            max_retries: Some(4),
            ..ScheduleDef::new("nightly", "0 0 3 * * *", "UTC", "build_report", "reports")
        };
        scheduler.put(def).await.unwrap();
        scheduler.pause("nightly").await.unwrap();
        let before = q.schedules().await.unwrap();

        let id = scheduler.trigger("nightly").await.unwrap();
        assert_eq!(id.queue(), "reports");
        let job = q.job(&id).await.unwrap().unwrap();
        assert_eq!((job.name.as_str(), job.status, job.priority), ("build_report", JobStatus::Pending, Priority::High));
        assert_eq!((job.payload, job.max_retries), (serde_json::json!({ "day": 3 }), Some(4)));
        assert_eq!(q.schedules().await.unwrap(), before, "last tick, run and job unchanged, still paused");

        let again = scheduler.trigger("nightly").await.unwrap();
        assert_ne!(again, id, "each trigger enqueues a job of its own");
        let e = scheduler.trigger("nope").await.unwrap_err();
        assert!(matches!(&e, Error::ScheduleNotFound(n) if n == "nope"), "{e:?}");
    }
}
