//! Recurring jobs: [`Scheduler`] stores named schedules (a cron expression
//! or an interval, with optional bounds, jitter, overlap policy and
//! exclusion dates) in the backend, so every process sees them, and turns
//! their ticks into jobs, each tick
//! exactly once however many processes run a scheduler (the backend's
//! [`ScheduleStore::fire_schedule`](crate::ScheduleStore::fire_schedule) claims a tick atomically; there is no leader).

mod cron;
mod orphans;
mod runner;
mod timing;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use cron::CronSchedule;
pub use runner::SchedulerHandle;
pub(crate) use runner::{start_for_pool, LatenessHook};
pub(crate) use timing::Timing;
pub use timing::MIN_EVERY;

use crate::error::Error;
use crate::job::Job;
use crate::parse::validate_queue_name;
use crate::queue::{CatchUp, Overlap, ScheduleDef, ScheduleStore};
use crate::vocab::{JobId, Priority};

/// Per-schedule settings beyond the expression (or interval) and zone.
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// use jobs_core::{Overlap, ScheduleOptions};
/// let options = ScheduleOptions::new()
///     .jitter(Duration::from_secs(30))
///     .overlap(Overlap::Skip)
///     .ends_at(SystemTime::now() + Duration::from_secs(90 * 24 * 3600))
///     .exclude(chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
/// assert_eq!(options.overlap, Overlap::Skip);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleOptions {
    /// Missed ticks policy (default [`CatchUp::One`]).
    pub catch_up: CatchUp,
    /// Queue override (default the job's attribute queue).
    pub queue: Option<String>,
    /// Priority override.
    pub priority: Option<Priority>,
    /// No tick before this instant.
    pub starts_at: Option<SystemTime>,
    /// No tick after this instant.
    pub ends_at: Option<SystemTime>,
    /// Each tick's job is due at the tick plus a random delay below this.
    pub jitter: Option<Duration>,
    /// What a tick does while the previous tick's job has not ended
    /// (default [`Overlap::Allow`]).
    pub overlap: Overlap,
    /// Dates, in the schedule's zone, on which no tick fires.
    pub exclude: Vec<chrono::NaiveDate>,
}

impl ScheduleOptions {
    /// The defaults: catch up once, the job's own queue and priority, no
    /// bounds, no jitter, overlapping runs allowed, no exclusion dates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the missed ticks policy.
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Enqueues on `queue` instead of the job's attribute queue.
    pub fn queue(mut self, queue: &str) -> Self {
        self.queue = Some(queue.to_owned());
        self
    }

    /// Enqueues with `priority` instead of the job's own.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// No tick before `at` (an interval counts from it).
    pub fn starts_at(mut self, at: impl Into<SystemTime>) -> Self {
        self.starts_at = Some(at.into());
        self
    }

    /// No tick after `at`; later the schedule is listed as ended.
    pub fn ends_at(mut self, at: impl Into<SystemTime>) -> Self {
        self.ends_at = Some(at.into());
        self
    }

    /// Each tick's job is due at the tick plus a random whole
    /// number of milliseconds in `[0, jitter)`; still one job per tick.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// What a tick does while the previous tick's job has not ended.
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// No tick fires on `date` (in the schedule's zone); call once per date.
    pub fn exclude(mut self, date: chrono::NaiveDate) -> Self {
        self.exclude.push(date);
        self
    }
}

/// A schedule as listed: its definition, state and next fire time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The schedule's name.
    pub name: String,
    /// Its cron expression (empty for an interval schedule).
    pub cron: String,
    /// Its interval, for an interval schedule.
    #[serde(default, with = "opt_humantime")]
    pub every: Option<Duration>,
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
    /// No tick before this instant.
    #[serde(default)]
    pub starts_at: Option<SystemTime>,
    /// No tick after this instant.
    #[serde(default)]
    pub ends_at: Option<SystemTime>,
    /// It is past its end: it will never tick again.
    #[serde(default)]
    pub ended: bool,
    /// The most each tick's job is delayed by, at random.
    #[serde(default, with = "opt_humantime")]
    pub jitter: Option<Duration>,
    /// What a tick does while the previous job has not ended.
    #[serde(default)]
    pub overlap: Overlap,
    /// Dates (`YYYY-MM-DD`, in its zone) on which no tick fires.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// A tick held until the last job ends ([`Overlap::Queue`]).
    #[serde(default)]
    pub held_tick: Option<SystemTime>,
    /// Ticks skipped because the previous job had not ended.
    #[serde(default)]
    pub skipped: u64,
    /// The last tick skipped that way.
    #[serde(default)]
    pub last_skipped: Option<SystemTime>,
    /// The next tick (none when paused, ended, or it never fires again).
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

    /// Adds (or replaces) a schedule `name` that enqueues `payload` every
    /// `every` (at least [`MIN_EVERY`]), counted from `options.starts_at`
    /// or else from now; `timezone` is the zone its exclusion dates are
    /// read in.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use jobs_core::prelude::*;
    /// # use jobs_core::{ScheduleOptions, Scheduler};
    /// #[job]
    /// async fn sync_prices() -> Result<(), JobError> { Ok(()) }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
    /// let scheduler = Scheduler::new(MemoryQueue::new());
    /// let options = ScheduleOptions::new().jitter(Duration::from_secs(10));
    /// scheduler.add_every("prices", Duration::from_secs(90), "UTC", SyncPrices {}, options).await?;
    /// assert_eq!(scheduler.list().await?[0].every, Some(Duration::from_secs(90)));
    /// # Ok(()) }
    /// ```
    pub async fn add_every<J: Job>(
        &self,
        name: &str,
        every: Duration,
        timezone: &str,
        payload: J,
        options: ScheduleOptions,
    ) -> Result<(), Error> {
        let def = self.def_for(name, "", timezone, payload, options).await?;
        self.put(ScheduleDef { every: Some(every), ..def }).await
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
        let def = self.def_for(name, cron, timezone, payload, options).await?;
        self.put(def).await
    }

    async fn def_for<J: Job>(
        &self,
        name: &str,
        cron: &str,
        timezone: &str,
        payload: J,
        options: ScheduleOptions,
    ) -> Result<ScheduleDef, Error> {
        payload.validate()?;
        // Each tick's job goes in the group an enqueue of this payload would.
        let group =
            payload.group().map(|key| crate::queue::JobGroup { key, concurrency: J::CONCURRENCY, rate: J::RATE });
        let payload = serde_json::to_vec(&payload).map_err(|e| Error::Serialize(e.to_string()))?;
        Ok(ScheduleDef {
            queue: options.queue.unwrap_or_else(|| J::QUEUE.to_owned()),
            priority: options.priority.unwrap_or(J::PRIORITY),
            payload,
            max_retries: J::MAX_RETRIES,
            timeout: J::TIMEOUT,
            catch_up: options.catch_up,
            // Its ticks count from here, on the backend's clock.
            created_at: self.queue.now().await?,
            starts_at: options.starts_at,
            ends_at: options.ends_at,
            jitter: options.jitter,
            overlap: options.overlap,
            exclude: options.exclude.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
            group,
            ..ScheduleDef::new(name, cron, timezone, J::NAME, J::QUEUE)
        })
    }

    /// Stores a schedule definition after checking it.
    pub async fn put(&self, def: ScheduleDef) -> Result<(), Error> {
        validate_schedule_name(&def.name)?;
        validate_queue_name(&def.queue)?;
        Timing::of(&def)?;
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
                let timing = Timing::of(&s.def).ok();
                let ended = timing.as_ref().is_some_and(|t| t.ended(now));
                let next_fire = if s.paused { None } else { timing.and_then(|t| t.next_after(now)) };
                ScheduleInfo {
                    orphaned: orphans::is_orphaned(runnable.as_ref(), &s.def.job_name),
                    name: s.def.name,
                    cron: s.def.cron,
                    every: s.def.every,
                    timezone: s.def.timezone,
                    job_name: s.def.job_name,
                    queue: s.def.queue,
                    catch_up: s.def.catch_up,
                    paused: s.paused,
                    starts_at: s.def.starts_at,
                    ends_at: s.def.ends_at,
                    ended,
                    jitter: s.def.jitter,
                    overlap: s.def.overlap,
                    exclude: s.def.exclude,
                    held_tick: s.held_tick,
                    skipped: s.skipped,
                    last_skipped: s.last_skipped,
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
        runner::run_due(&self.queue, now, None, "").await.map(|(ids, _)| ids)
    }

    /// [`Scheduler::run_due`] for the schedules whose names start with
    /// `prefix` only: a conformance case moves its own schedules' clock
    /// without firing those of the other cases sharing its server.
    #[cfg(feature = "testing")]
    pub(crate) async fn run_due_named(&self, prefix: &str, now: SystemTime) -> Result<Vec<JobId>, Error> {
        runner::run_due(&self.queue, now, None, prefix).await.map(|(ids, _)| ids)
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

/// `Option<Duration>` as humantime text (`"1m 30s"`), as operators read it.
mod opt_humantime {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
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
