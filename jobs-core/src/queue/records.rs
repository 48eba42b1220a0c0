//! Records beside jobs: pool presence, throughput history, schedules.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::vocab::{JobId, Priority};

/// A running pool's presence record, refreshed by its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// Unique per pool instance.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Its concurrency.
    pub workers: usize,
    /// Jobs running at the last heartbeat.
    pub running: usize,
    /// Ids of the jobs running at the last heartbeat.
    pub running_jobs: Vec<JobId>,
    /// Jobs the pool held at the last heartbeat that were taken ahead of
    /// its free workers: leased (a queue counts them as running) and
    /// waiting in the pool for a worker (`WorkerPoolBuilder::prefetch`).
    #[serde(default)]
    pub ahead: usize,
    /// When it started.
    pub started_at: SystemTime,
    /// Its last heartbeat.
    pub last_seen: SystemTime,
    /// The names of the jobs it can run (its linked handlers): a schedule
    /// whose job no live pool knows is shown orphaned and does not fire.
    #[serde(default)]
    pub jobs: Vec<String>,
}

/// Attempts that ended in one minute on one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// The minute's start, in seconds since the Unix epoch.
    pub minute: u64,
    /// Attempts that succeeded.
    pub processed: u64,
    /// Attempts that failed (retried, dead, or lost with their worker).
    pub failed: u64,
}

/// What a scheduler does with ticks it missed while no process ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CatchUp {
    /// Enqueue every missed tick (bounded to 1,000 per pass).
    All,
    /// Skip missed ticks but run once for them (the default).
    #[default]
    One,
    /// Skip missed ticks; run only ticks that are due now.
    None,
}

/// What a schedule's tick does while the job of its previous tick has not
/// ended (is pending, scheduled, running or retrying). The check is made by
/// the backend in the same atomic step that fires the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Overlap {
    /// Enqueue the tick's job anyway (the default).
    #[default]
    Allow,
    /// Skip the tick; it is counted in [`ScheduleState::skipped`].
    Skip,
    /// Hold the tick ([`ScheduleState::held_tick`]) and enqueue its job
    /// once the previous job has ended. At most one tick is held: ticks
    /// that come while one is held are skipped.
    Queue,
}

impl Overlap {
    /// Lowercase name, as written in the CLI and stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
        }
    }
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Overlap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Overlap::Allow),
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            other => Err(format!("unknown overlap policy `{other}`: use `allow`, `skip` or `queue`")),
        }
    }
}

/// A recurring job as stored in the backend, so every process sees it.
///
/// Its ticks come from exactly one of [`cron`](ScheduleDef::cron) (a
/// non-empty expression) or [`every`](ScheduleDef::every); the fields after
/// `created_at` narrow them down. Definitions stored before those fields
/// existed read them as unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDef {
    /// Unique name of the schedule.
    pub name: String,
    /// Cron expression, 5 fields (minutes) or 6 (seconds first); empty for
    /// an interval schedule ([`ScheduleDef::every`]).
    pub cron: String,
    /// IANA time zone the expression and the exclusion dates are read in.
    pub timezone: String,
    /// The job name to enqueue.
    pub job_name: String,
    /// The queue to enqueue on.
    pub queue: String,
    /// The priority of each enqueued job.
    pub priority: Priority,
    /// The payload of each enqueued job.
    pub payload: Vec<u8>,
    /// Retries of each job (`None`: the job's attribute or pool default).
    pub max_retries: Option<u32>,
    /// Per-attempt timeout of each job.
    pub timeout: Option<Duration>,
    /// Missed ticks policy.
    pub catch_up: CatchUp,
    /// When the schedule was first stored: ticks before it never fire.
    pub created_at: SystemTime,
    /// An interval instead of a cron expression: ticks at `starts_at` (or
    /// the creation time) plus every whole multiple of it. At least 1 s.
    #[serde(default)]
    pub every: Option<Duration>,
    /// No tick before this instant.
    #[serde(default)]
    pub starts_at: Option<SystemTime>,
    /// No tick after this instant; past it the schedule has ended.
    #[serde(default)]
    pub ends_at: Option<SystemTime>,
    /// Each tick's job is due at the tick plus a random whole
    /// number of milliseconds in `[0, jitter)`, spreading schedules that share a tick.
    #[serde(default)]
    pub jitter: Option<Duration>,
    /// What a tick does while the previous tick's job has not ended.
    #[serde(default)]
    pub overlap: Overlap,
    /// Dates (`YYYY-MM-DD`, in [`ScheduleDef::timezone`]) on which no tick
    /// fires, such as holidays.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The group of each tick's job (its payload's group field and the job
    /// type's bounds, as an enqueue would give it); `None`: ungrouped.
    #[serde(default)]
    pub group: Option<super::JobGroup>,
}

impl ScheduleDef {
    /// A definition with the usual rest: normal priority, an empty JSON
    /// object as payload, the job's own retries and timeout, catch-up
    /// [`CatchUp::One`], created now (on this host's clock: the backend
    /// keeps the first creation time it stores), no interval, bounds,
    /// jitter or exclusion dates, overlap [`Overlap::Allow`].
    pub fn new(name: &str, cron: &str, timezone: &str, job_name: &str, queue: &str) -> Self {
        ScheduleDef {
            name: name.to_owned(),
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
            job_name: job_name.to_owned(),
            queue: queue.to_owned(),
            priority: Priority::Normal,
            payload: b"{}".to_vec(),
            max_retries: None,
            timeout: None,
            catch_up: CatchUp::One,
            created_at: SystemTime::now(),
            every: None,
            starts_at: None,
            ends_at: None,
            jitter: None,
            overlap: Overlap::Allow,
            exclude: Vec::new(),
            group: None,
        }
    }
}

/// A stored schedule with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Its definition.
    pub def: ScheduleDef,
    /// Whether ticks are held.
    pub paused: bool,
    /// The last tick handled (fired or skipped), as its scheduled instant.
    pub last_tick: Option<SystemTime>,
    /// When a job was last enqueued for it (wall clock).
    pub last_run: Option<SystemTime>,
    /// The last job enqueued for it.
    pub last_job: Option<JobId>,
    /// A tick held by [`Overlap::Queue`] until the last job ends.
    #[serde(default)]
    pub held_tick: Option<SystemTime>,
    /// How many ticks [`Overlap::Skip`] (or a full [`Overlap::Queue`])
    /// skipped because the previous job had not ended.
    #[serde(default)]
    pub skipped: u64,
    /// The last tick skipped that way.
    #[serde(default)]
    pub last_skipped: Option<SystemTime>,
}
