//! The command line's grammar: [`Cli`] and its subcommands (clap derive).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use jobs_core::{JobId, Overlap, Priority};

/// The operator command line of `jobs`: inspect queues and jobs, enqueue,
/// retry dead jobs, pause queues and schedules, run a worker pool.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "jobs",
    version,
    about = "Operate background job queues: inspect, enqueue, retry, pause, run workers",
    after_help = "Exit codes: 0 ok, 1 operation failed, 2 usage error, 69 backend unavailable, \
                  74 output error, 78 configuration error."
)]
pub struct Cli {
    /// Where the queues live.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the backend: a configuration file and/or a Redis URL. With
/// neither (and no `JOBS_REDIS_URL`), the embedded in-process `MemoryQueue`.
#[derive(Debug, Clone, Default, Args)]
pub struct BackendArgs {
    /// YAML configuration file (`JOBS_CONFIG` names one too); `JOBS_*`
    /// environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Redis URL, e.g. redis://127.0.0.1:6379 (wins over `JOBS_REDIS_URL` and
    /// the configuration's `jobs.redis.url`).
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
}

/// `--json`: one JSON document on stdout instead of text for people.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonFlag {
    /// Print one JSON document on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// `--yes` and `--json` of the commands that ask for confirmation first:
/// those that change many jobs at once or delete what cannot be restored.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct BulkFlags {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print one JSON document on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Run a worker pool on the configured queues until SIGINT or SIGTERM, then
    /// shut it down gracefully.
    Worker(WorkerArgs),
    /// Validate a payload against a linked job type and enqueue it; prints the
    /// job id on stdout.
    Enqueue(EnqueueArgs),
    /// Counts per queue and priority.
    Stats(JsonFlag),
    /// One line per queue: paused or active, and its counts.
    Queues(JsonFlag),
    /// Everything about one job: status, attempts with their errors, payload,
    /// result.
    Job {
        /// The job id (QUEUE:ULID).
        id: JobId,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Cancel a pending, scheduled or running job.
    Cancel {
        /// The job id (QUEUE:ULID).
        id: JobId,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Inspect, retry or purge dead jobs.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Recurring jobs.
    #[command(subcommand)]
    Schedules(ScheduleCommand),
    /// Hold workers off a queue, or let them take it again.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Live worker pools (those whose heartbeat has not expired).
    Workers(JsonFlag),
    /// Follow a queue's job events as they happen (enqueued, started,
    /// progress, retrying, succeeded, dead, cancelled, expired) until
    /// SIGINT or SIGTERM, or `--count` events.
    Events(EventsArgs),
    /// Read archived jobs back (the JSON-lines files the archivers write
    /// under `jobs.archive.dir`): by id, queue and time range, oldest first.
    Archive(ArchiveArgs),
    /// Workflows (graphs of jobs run in dependency order): list them, show
    /// one with every step by dependency level, cancel one.
    #[command(subcommand)]
    Workflows(FlowCommand),
    /// Batches (sets of jobs with callbacks once every job ended): list
    /// them, show one with its progress, callbacks and jobs, cancel one.
    #[command(subcommand)]
    Batches(FlowCommand),
}

/// `workflows ..` and `batches ..`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum FlowCommand {
    /// Newest first, with status, progress (ended of total) and times.
    List {
        /// Only those in this state: running, succeeded, failed or cancelled.
        #[arg(long, value_name = "S", value_parser = parse_flow_status)]
        status: Option<jobs_core::FlowStatus>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = parse_flow_limit)]
        limit: usize,
        /// Skip this many first (of those the status keeps).
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// One of them: its state and progress, then every member (a
    /// workflow's steps grouped by dependency level; a batch's callbacks,
    /// then its jobs).
    Show {
        /// Its id.
        id: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Cancel it: members not yet enqueued never run, running ones are
    /// cancelled, and a batch fires no callback.
    Cancel {
        /// Its id.
        id: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// The most workflows or batches one `list` prints.
pub(crate) const MAX_FLOWS_LISTED: usize = 1000;

/// `1..=1000`.
fn parse_flow_limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_FLOWS_LISTED).contains(&n) => Ok(n),
        _ => Err(format!("write a number from 1 to {MAX_FLOWS_LISTED}")),
    }
}

/// `running`, `succeeded`, `failed` or `cancelled`.
fn parse_flow_status(s: &str) -> Result<jobs_core::FlowStatus, String> {
    use jobs_core::FlowStatus as S;
    [S::Running, S::Succeeded, S::Failed, S::Cancelled]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| "write running, succeeded, failed or cancelled".to_owned())
}

/// `archive`.
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// The archive folder (default: the configuration's `jobs.archive.dir`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Only this queue's jobs.
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,
    /// Only this job, shown whole (QUEUE:ULID).
    #[arg(long, value_name = "ID")]
    pub id: Option<JobId>,
    /// Only jobs that finished at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Only jobs that finished before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<SystemTime>,
    /// At most this many jobs, the oldest first.
    #[arg(long, value_name = "N", default_value = "100")]
    pub limit: usize,
    /// Output.
    #[command(flatten)]
    pub output: JsonFlag,
}

/// `events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// The queue to follow.
    pub queue: String,
    /// Only jobs of this name (repeatable).
    #[arg(long, value_name = "JOB")]
    pub name: Vec<String>,
    /// Only this job (QUEUE:ULID, repeatable).
    #[arg(long = "job", value_name = "ID")]
    pub jobs: Vec<JobId>,
    /// Only these kinds (comma-separated: enqueued, started, progress,
    /// retrying, succeeded, dead, cancelled, expired).
    #[arg(long, value_delimiter = ',', value_name = "KIND,..")]
    pub kind: Vec<jobs_core::EventKind>,
    /// Start after this cursor (printed with each event by `--json`)
    /// instead of now: what happened since is printed first.
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<jobs_core::EventCursor>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// One JSON object per line (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `worker`.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerArgs {
    /// Queues to serve, in strict order (default: the configuration's
    /// `queues:`, else every queue a linked job declares).
    #[arg(long, value_delimiter = ',', value_name = "Q,..")]
    pub queues: Vec<String>,
    /// Jobs run at once (default: `jobs.worker_pool.worker_count`).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Do not run the recurring-job scheduler in this pool.
    #[arg(long)]
    pub no_scheduler: bool,
}

/// `enqueue`.
#[derive(Debug, Clone, Args)]
pub struct EnqueueArgs {
    /// The job name (`#[job(name = ..)]`, default the function's name).
    pub name: String,
    /// Its payload, queue and priority.
    #[command(flatten)]
    pub job_args: JobArgs,
    /// Run it no earlier than this from now: 30s, 5m, 1h 30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "at")]
    pub delay: Option<Duration>,
    /// Run it no earlier than this time (RFC 3339, e.g. 2030-01-31T09:00:00+01:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<SystemTime>,
    /// Retries after the first attempt (default: the job's, else the pool's).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// How long one attempt may run (default: the job's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Return the id of an equal live job enqueued within this window instead
    /// of adding another.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub unique_for: Option<Duration>,
    /// Not started this long after it is due, it expires and never runs
    /// (default: the job's `expires`, else never).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires_in: Option<Duration>,
    /// Your own id for the job, unique in its queue while the job is kept:
    /// when a job has it already, print that job's id and add nothing.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// With `--id`: fail (exit 1) when a job has the id already.
    #[arg(long, requires = "id")]
    pub fail_if_exists: bool,
    /// A key: while a job of this name with the key waits, print its id
    /// and add nothing (or, with `--replace`, replace its payload and due
    /// time: debounce).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// With `--key`: replace the waiting job instead of keeping it.
    #[arg(long, requires = "key")]
    pub replace: bool,
    /// Put the job in this group (default: the one its payload names, for
    /// a job declared with `group = ..`).
    #[arg(long, value_name = "KEY")]
    pub group: Option<String>,
}

/// `dead ..`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum DeadCommand {
    /// Dead jobs, newest first, with their last error.
    List {
        /// Only this queue (default: every queue).
        #[arg(long, value_name = "Q")]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// One dead job with every attempt's error.
    Show {
        /// The job id (QUEUE:ULID).
        id: JobId,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Put dead jobs back to pending with their attempts reset: one by id, or
    /// every dead job of a queue with `--all --queue Q`.
    #[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all"]))]
    Retry {
        /// The job id (QUEUE:ULID).
        id: Option<JobId>,
        /// Every dead job of `--queue`.
        #[arg(long, requires = "queue")]
        all: bool,
        /// The queue for `--all`.
        #[arg(long, value_name = "Q")]
        queue: Option<String>,
        /// Confirmation and output.
        #[command(flatten)]
        flags: BulkFlags,
    },
    /// Delete every dead job of a queue (cannot be undone).
    Purge {
        /// The queue.
        #[arg(long, value_name = "Q")]
        queue: String,
        /// Confirmation and output.
        #[command(flatten)]
        flags: BulkFlags,
    },
}

/// `schedules ..`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum ScheduleCommand {
    /// Every schedule with its next and last run.
    List(JsonFlag),
    /// Store a schedule: a linked job enqueued at every tick of a cron
    /// expression; prints its next tick.
    ///
    /// The job name, the expression, the time zone and the payload are
    /// checked before anything is stored (the payload with the job's rules,
    /// as `enqueue` does). A schedule of the same name is replaced, keeping
    /// its state (last run, pause).
    Add(Box<ScheduleAddArgs>),
    /// Hold a schedule's ticks.
    Pause {
        /// The schedule's name.
        name: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Let a paused schedule tick again (ticks missed meanwhile are skipped).
    Resume {
        /// The schedule's name.
        name: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Enqueue a schedule's job now, once; prints the job id on stdout.
    ///
    /// The job is built as the schedule's ticks build theirs (payload,
    /// queue, priority, retries); the schedule's ticks, last run and pause
    /// stay as they are, and a paused schedule can be triggered too.
    Trigger {
        /// The schedule's name.
        name: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Delete a schedule (cannot be undone), e.g. an orphaned one whose job
    /// no live pool runs any more.
    Remove {
        /// The schedule's name.
        name: String,
        /// Confirmation and output.
        #[command(flatten)]
        flags: BulkFlags,
    },
}

/// `schedules add`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleAddArgs {
    /// The schedule's name (a schedule of that name is replaced).
    pub name: String,
    /// The linked job it enqueues (`#[job(name = ..)]`, default the
    /// function's name).
    #[arg(long, value_name = "JOB_NAME")]
    pub job: String,
    /// Cron expression: 5 fields (minute hour day month weekday) or 6
    /// (seconds first), e.g. "0 3 * * *".
    #[arg(long, value_name = "EXPR", required_unless_present = "every", conflicts_with = "every")]
    pub cron: Option<String>,
    /// Tick at a fixed interval instead of a cron expression: 90s, 15m,
    /// 1h 30m (at least 1s), counted from --starts-at or from now.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// IANA time zone the expression and the --exclude dates are read in,
    /// e.g. Europe/Berlin.
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    pub timezone: String,
    /// No tick before this time (RFC 3339, e.g. 2030-01-31T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub starts_at: Option<SystemTime>,
    /// No tick after this time (RFC 3339); past it the schedule is listed
    /// as ended.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub ends_at: Option<SystemTime>,
    /// Delay each tick's job by a random time below this: 30s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub jitter: Option<Duration>,
    /// What a tick does while the previous tick's job has not ended:
    /// allow (enqueue anyway), skip (skip the tick), queue (run it once the
    /// previous job ended; one tick waits at most).
    #[arg(long, value_name = "POLICY", default_value = "allow")]
    pub overlap: Overlap,
    /// A date (YYYY-MM-DD, in --timezone) on which no tick fires; repeat for
    /// more dates.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub exclude: Vec<chrono::NaiveDate>,
    /// The payload, queue and priority of every job it enqueues.
    #[command(flatten)]
    pub job_args: JobArgs,
}

/// What `enqueue` and `schedules add` say about the job they enqueue.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// The payload: a JSON object with the job function's parameters.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub json: String,
    /// Enqueue on this queue instead of the job's own.
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// low, normal, high or critical (default: the job's).
    #[arg(long, value_name = "P")]
    pub priority: Option<Priority>,
}

/// `queue ..`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum QueueCommand {
    /// Hold workers off a queue (enqueues are still accepted).
    Pause {
        /// The queue.
        name: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Let workers take a paused queue's jobs again.
    Resume {
        /// The queue.
        name: String,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// The queue's busiest groups: pending and running jobs, and bound.
    Groups {
        /// The queue.
        name: String,
        /// How many groups at most, busiest first.
        #[arg(long, value_name = "N", default_value = "20", value_parser = parse_group_limit)]
        limit: usize,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show a queue's limits, or change them (from the next enqueue and
    /// fetch on, for every pool): `--max-running 5`, `--max-jobs none`.
    Limits {
        /// The queue.
        name: String,
        /// Run at most N of its jobs at once across every pool; `none`
        /// removes the bound.
        #[arg(long, value_name = "N|none", value_parser = parse_limit)]
        max_running: Option<Limit>,
        /// Refuse enqueues past N pending and scheduled jobs; `none`
        /// removes the bound.
        #[arg(long, value_name = "N|none", value_parser = parse_limit)]
        max_jobs: Option<Limit>,
        /// Start at most N of its jobs per period across every pool
        /// (`100/1m`); `none` removes the bound.
        #[arg(long, value_name = "N/PERIOD|none", value_parser = parse_rate)]
        rate: Option<RateArg>,
        /// Run at most N jobs of one group at once, for every group,
        /// overriding the jobs' own `concurrency`; `none`: each job's own.
        #[arg(long, value_name = "N|none", value_parser = parse_limit)]
        group_concurrency: Option<Limit>,
        /// Start at most N jobs of one group per period, for every group,
        /// overriding the jobs' own `rate`; `none`: each job's own.
        #[arg(long, value_name = "N/PERIOD|none", value_parser = parse_rate)]
        group_rate: Option<RateArg>,
        /// A circuit breaker: after N failed attempts within WINDOW, no job
        /// starts for COOLDOWN, then one probe (`5/1m:30s`); `none` removes
        /// it.
        #[arg(long, value_name = "N/WINDOW:COOLDOWN|none", value_parser = parse_breaker)]
        breaker: Option<BreakerArg>,
        /// A circuit breaker of the same form for each group of the queue,
        /// on its own: a failing group stops while the others run on;
        /// `none` removes it.
        #[arg(long, value_name = "N/WINDOW:COOLDOWN|none", value_parser = parse_breaker)]
        group_breaker: Option<BreakerArg>,
        /// Keep its succeeded, cancelled and expired jobs this long
        /// (`1h`); `none`: the backend's retention.
        #[arg(long, value_name = "DURATION|none", value_parser = parse_age)]
        keep_succeeded: Option<AgeArg>,
        /// Keep at most N of its succeeded, cancelled and expired jobs
        /// (0 keeps none); `none`: the backend's retention.
        #[arg(long, value_name = "N|none", value_parser = parse_count)]
        max_succeeded: Option<CountArg>,
        /// Keep its dead jobs this long (`30days`); `none`: the backend's.
        #[arg(long, value_name = "DURATION|none", value_parser = parse_age)]
        keep_dead: Option<AgeArg>,
        /// Keep at most N of its dead jobs; `none`: the backend's.
        #[arg(long, value_name = "N|none", value_parser = parse_count)]
        max_dead: Option<CountArg>,
        /// Archive the jobs its retention deletes before they go (`on`), or
        /// not (`off`).
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        archive: Option<bool>,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show a queue's circuit breaker and its groups' open ones, or open or
    /// close one by hand for every pool: `--open 10m`, `--close`, `--group
    /// acme --close`.
    #[command(group(clap::ArgGroup::new("change").args(["open", "close"])))]
    Breaker {
        /// The queue.
        name: String,
        /// The group whose own breaker `--open` or `--close` changes
        /// (instead of the queue's).
        #[arg(long, value_name = "KEY", requires = "change")]
        group: Option<String>,
        /// Open it for this long (then a probe job), e.g. `10m`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "close")]
        open: Option<Duration>,
        /// Close it: jobs start again at once.
        #[arg(long)]
        close: bool,
        /// Output.
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// How many groups `queue groups` lists at most.
const MAX_GROUPS_LISTED: usize = 1000;

/// `1..=1000`.
fn parse_group_limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_GROUPS_LISTED).contains(&n) => Ok(n),
        _ => Err(format!("write a number from 1 to {MAX_GROUPS_LISTED}")),
    }
}

/// A rate given on the command line, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg(pub Option<jobs_core::Rate>);

/// `100/1m` or `none`.
fn parse_rate(s: &str) -> Result<RateArg, String> {
    if s == "none" {
        return Ok(RateArg(None));
    }
    s.parse().map(|r| RateArg(Some(r)))
}

/// A circuit breaker given on the command line (`None`: remove it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerArg(pub Option<jobs_core::Breaker>);

/// `5/1m:30s` or `none`.
fn parse_breaker(s: &str) -> Result<BreakerArg, String> {
    if s == "none" {
        return Ok(BreakerArg(None));
    }
    s.parse().map(|b| BreakerArg(Some(b)))
}

/// A bound given on the command line: a number of at least 1, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

/// A retention count given on the command line (`None`: the backend's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountArg(pub Option<u64>);

/// `0`, `100` or `none`.
fn parse_count(s: &str) -> Result<CountArg, String> {
    if s == "none" {
        return Ok(CountArg(None));
    }
    s.parse().map(|n| CountArg(Some(n))).map_err(|_| "write a number, or `none` for the backend's".into())
}

/// A retention age given on the command line (`None`: the backend's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeArg(pub Option<Duration>);

/// `1h` or `none`.
fn parse_age(s: &str) -> Result<AgeArg, String> {
    if s == "none" {
        return Ok(AgeArg(None));
    }
    parse_duration(s).map(|d| AgeArg(Some(d)))
}

/// `on` or `off`.
fn parse_switch(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("write `on` or `off`".into()),
    }
}

/// `5` or `none`.
fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "none" {
        return Ok(Limit(None));
    }
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1 (write `none` for no bound)".into()),
        Ok(n) => Ok(Limit(Some(n))),
        Err(_) => Err("write a number of at least 1, or `none`".into()),
    }
}

/// `30s`, `5m`, `1h 30m` (humantime).
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 30s, 5m or 1h 30m)"))
}

/// A calendar date, `YYYY-MM-DD`.
fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{e} (write YYYY-MM-DD, e.g. 2030-12-25)"))
}

/// RFC 3339 with an offset, or `Z`.
fn parse_time(s: &str) -> Result<SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .map_err(|e| format!("{e} (write RFC 3339, e.g. 2030-01-31T09:00:00Z)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        let t = parse_time("2030-01-31T09:00:00+01:00").map_err(|e| e.to_string());
        assert_eq!(t, parse_time("2030-01-31T08:00:00Z"));
        assert!(parse_time("tomorrow").is_err());
    }
}
