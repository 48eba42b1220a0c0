//! `cancel`, `queue pause|resume` and `schedules list|pause|resume|remove`.

use std::time::SystemTime;

use jobs_core::{validate_queue_name, CancelResult, CatchUp, Error, JobId, JobStatus, Overlap, Scheduler, SharedQueue};
use serde::Serialize;

use super::print_json;
use crate::args::{AgeArg, BreakerArg, BulkFlags, CountArg, Limit, RateArg};
use crate::error::CliError;
use crate::io::Io;
use crate::table::{Col, Table, WIDTH};
use crate::view::{ago, json_time};

/// `cancel ID`. Cancelling a cancelled job again succeeds (nothing changes);
/// cancelling a job that succeeded or died fails.
pub(super) async fn cancel(q: &SharedQueue, id: &JobId, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc {
        id: String,
        outcome: &'static str,
    }
    let (outcome, text) = match q.cancel(id).await? {
        CancelResult::Cancelled => ("cancelled", format!("cancelled {id}")),
        CancelResult::Requested => {
            ("requested", format!("cancellation requested: {id} is running; its worker is told, and it ends cancelled"))
        }
        CancelResult::AlreadyFinished(JobStatus::Cancelled) => {
            ("already_cancelled", format!("{id} was cancelled already"))
        }
        CancelResult::AlreadyFinished(status) => {
            return Err(CliError::Failed(format!("job `{id}` has finished ({status}): nothing to cancel")))
        }
        // A result the port gained after this crate: say what came back rather than guess.
        other => {
            return Err(CliError::Failed(format!(
                "job `{id}`: the backend answered {other:?}, which this version of jobs-cli does not know"
            )))
        }
    };
    if json {
        return print_json(io, &Doc { id: id.to_string(), outcome });
    }
    writeln!(io.out, "{text}")?;
    Ok(())
}

/// `queue pause|resume NAME`.
pub(super) async fn queue_pause(
    q: &SharedQueue,
    name: &str,
    pause: bool,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        queue: &'a str,
        paused: bool,
    }
    validate_queue_name(name)?;
    if pause {
        q.pause(name).await?;
    } else {
        q.resume(name).await?;
    }
    if json {
        return print_json(io, &Doc { queue: name, paused: pause });
    }
    if pause {
        writeln!(io.out, "paused queue `{name}`: workers take none of its jobs until `queue resume {name}`")?;
    } else {
        writeln!(io.out, "resumed queue `{name}`: workers take its jobs again")?;
    }
    Ok(())
}

/// The limits `queue limits` was given (each `None`: left as it is).
pub(super) struct LimitChange {
    pub(super) max_running: Option<Limit>,
    pub(super) max_jobs: Option<Limit>,
    pub(super) rate: Option<RateArg>,
    pub(super) group_concurrency: Option<Limit>,
    pub(super) group_rate: Option<RateArg>,
    pub(super) breaker: Option<BreakerArg>,
    pub(super) group_breaker: Option<BreakerArg>,
    pub(super) keep_succeeded: Option<AgeArg>,
    pub(super) max_succeeded: Option<CountArg>,
    pub(super) keep_dead: Option<AgeArg>,
    pub(super) max_dead: Option<CountArg>,
    pub(super) archive: Option<bool>,
}

/// `queue limits NAME [--max-running N|none] [--max-jobs N|none] [--rate
/// N/PERIOD|none] [--group-concurrency N|none] [--group-rate
/// N/PERIOD|none] [--breaker ..] [--group-breaker ..]`: changes what is
/// given (the rest of the policy stays), then prints the limits.
pub(super) async fn queue_limits(
    q: &SharedQueue,
    name: &str,
    change: LimitChange,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        queue: &'a str,
        max_running: Option<u64>,
        max_jobs: Option<u64>,
        rate: Option<jobs_core::Rate>,
        group_concurrency: Option<u32>,
        group_rate: Option<jobs_core::Rate>,
        breaker: Option<jobs_core::Breaker>,
        group_breaker: Option<jobs_core::Breaker>,
        priority_levels: Vec<&'static str>,
        retention: jobs_core::QueueRetention,
        archive: bool,
        limited: u64,
        throttled: u64,
        handed: u64,
    }
    validate_queue_name(name)?;
    let mut policy = q.policy(name).await?;
    let changed = change.max_running.is_some()
        || change.max_jobs.is_some()
        || change.rate.is_some()
        || change.group_concurrency.is_some()
        || change.group_rate.is_some()
        || change.breaker.is_some()
        || change.group_breaker.is_some()
        || change.keep_succeeded.is_some()
        || change.max_succeeded.is_some()
        || change.keep_dead.is_some()
        || change.max_dead.is_some()
        || change.archive.is_some();
    if let Some(Limit(n)) = change.max_running {
        policy.max_running = n;
    }
    if let Some(Limit(n)) = change.max_jobs {
        policy.max_jobs = n;
    }
    if let Some(RateArg(r)) = change.rate {
        policy.rate = r;
    }
    if let Some(Limit(n)) = change.group_concurrency {
        policy.group_concurrency = n
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    jobs_core::Error::InvalidArgument(format!("`--group-concurrency` is at most {}", u32::MAX))
                })
            })
            .transpose()?;
    }
    if let Some(RateArg(r)) = change.group_rate {
        policy.group_rate = r;
    }
    if let Some(BreakerArg(b)) = change.breaker {
        policy.breaker = b;
    }
    if let Some(BreakerArg(b)) = change.group_breaker {
        policy.group_breaker = b;
    }
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let r = &mut policy.retention;
    if let Some(AgeArg(d)) = change.keep_succeeded {
        r.succeeded = d;
    }
    if let Some(CountArg(n)) = change.max_succeeded {
        r.succeeded_max = n.map(count);
    }
    if let Some(AgeArg(d)) = change.keep_dead {
        r.dead_age = d;
    }
    if let Some(CountArg(n)) = change.max_dead {
        r.dead_max = n.map(count);
    }
    if let Some(on) = change.archive {
        policy.archive = on;
    }
    if changed {
        q.set_policy(name, policy.clone()).await?;
    }
    let levels: Vec<&'static str> = policy.priority_levels.iter().map(|p| p.as_str()).collect();
    let counts = q.stats().await?.queues.remove(name).unwrap_or_default();
    if json {
        return print_json(
            io,
            &Doc {
                queue: name,
                max_running: policy.max_running,
                max_jobs: policy.max_jobs,
                rate: policy.rate,
                group_concurrency: policy.group_concurrency,
                group_rate: policy.group_rate,
                breaker: policy.breaker,
                group_breaker: policy.group_breaker,
                priority_levels: levels,
                retention: policy.retention,
                archive: policy.archive,
                limited: counts.limited,
                throttled: counts.throttled,
                handed: counts.handed,
            },
        );
    }
    let bound = |n: Option<u64>| n.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let rate = |r: Option<jobs_core::Rate>| r.map_or_else(|| "none".to_owned(), |r| r.to_string());
    let own = |s: String| if s == "none" { "each job's own".to_owned() } else { s };
    let backend = "the backend's";
    let age = |d: Option<std::time::Duration>| {
        d.map_or_else(|| backend.to_owned(), |d| humantime::format_duration(d).to_string())
    };
    let kept = |n: Option<usize>| n.map_or_else(|| backend.to_owned(), |n| n.to_string());
    let levels = if levels.is_empty() { "all".to_owned() } else { levels.join(", ") };
    writeln!(io.out, "queue `{name}`{}", if changed { ": limits set" } else { "" })?;
    for (key, value) in [
        ("max_running", bound(policy.max_running)),
        ("max_jobs", bound(policy.max_jobs)),
        ("rate", rate(policy.rate)),
        ("group_concurrency", own(bound(policy.group_concurrency.map(u64::from)))),
        ("group_rate", own(rate(policy.group_rate))),
        ("breaker", policy.breaker.map_or_else(|| "none".to_owned(), |b| b.to_string())),
        ("group_breaker", policy.group_breaker.map_or_else(|| "none".to_owned(), |b| b.to_string())),
        ("priority_levels", levels),
        ("keep_succeeded", age(policy.retention.succeeded)),
        ("max_succeeded", kept(policy.retention.succeeded_max)),
        ("keep_dead", age(policy.retention.dead_age)),
        ("max_dead", kept(policy.retention.dead_max)),
        ("archive", if policy.archive { "on".to_owned() } else { "off".to_owned() }),
        ("held back", format!("{} times by a bound, {} by a rate", counts.limited, counts.throttled)),
        ("handed over", format!("{} jobs to an idle pool by their enqueue", counts.handed)),
    ] {
        writeln!(io.out, "{key:<18} {value}")?;
    }
    Ok(())
}

/// `queue breaker NAME [--group KEY] [--open DURATION | --close]`: applies
/// the change, if any (to the group's breaker with `--group`), then prints
/// the queue's breaker and its groups' open ones.
pub(super) async fn queue_breaker(
    q: &SharedQueue,
    name: &str,
    group: Option<&str>,
    action: Option<jobs_core::BreakerAction>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        queue: &'a str,
        breaker: Option<jobs_core::Breaker>,
        group_breaker: Option<jobs_core::Breaker>,
        #[serde(flatten)]
        info: jobs_core::BreakerInfo,
    }
    validate_queue_name(name)?;
    match (group, action) {
        (Some(g), Some(a)) => q.set_group_breaker(name, g, a).await?,
        (None, Some(a)) => q.set_breaker(name, a).await?,
        // (`--group` requires `--open` or `--close`: clap checks it.)
        (_, None) => {}
    }
    let policy = q.policy(name).await?;
    let (breaker, group_breaker) = (policy.breaker, policy.group_breaker);
    let info = q.breaker(name).await?;
    if json {
        return print_json(io, &Doc { queue: name, breaker, group_breaker, info });
    }
    let now = std::time::SystemTime::now();
    let left = |until: std::time::SystemTime| {
        let d = until.duration_since(now).unwrap_or_default();
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    };
    let describe = |state: &jobs_core::BreakerState| match state {
        jobs_core::BreakerState::Closed => "closed: jobs start as usual".to_owned(),
        jobs_core::BreakerState::Open { until } if *until > now => {
            format!("open: no job starts for {}, then one probe", left(*until))
        }
        jobs_core::BreakerState::Open { .. } => "open: the next job is a probe".to_owned(),
        jobs_core::BreakerState::Probing { job, .. } => {
            format!("probing: job {job} runs; no other starts until it ends")
        }
    };
    let configured = |b: Option<jobs_core::Breaker>| b.map_or_else(|| "none configured".to_owned(), |b| b.to_string());
    writeln!(io.out, "queue `{name}`")?;
    writeln!(io.out, "breaker          {}", configured(breaker))?;
    writeln!(io.out, "state            {}", describe(&info.state))?;
    writeln!(io.out, "recent failures  {}", info.recent_failures)?;
    writeln!(io.out, "opened           {} times", info.opened)?;
    writeln!(io.out, "group breaker    {}", configured(group_breaker))?;
    writeln!(io.out, "groups open      {} (opened {} times)", info.groups_open, info.groups_opened)?;
    for g in &info.groups {
        writeln!(io.out, "  {:<14} {}", g.group, describe(&g.state))?;
    }
    if info.groups_open > info.groups.len() as u64 {
        writeln!(io.out, "  ({} more not listed)", info.groups_open - info.groups.len() as u64)?;
    }
    Ok(())
}

/// `queue groups NAME [--limit N]`: the busiest groups, most pending first.
pub(super) async fn queue_groups(
    q: &SharedQueue,
    name: &str,
    limit: usize,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        queue: &'a str,
        groups: &'a [jobs_core::GroupInfo],
    }
    validate_queue_name(name)?;
    let groups = q.groups(name, limit).await?;
    if json {
        return print_json(io, &Doc { queue: name, groups: &groups });
    }
    if groups.is_empty() {
        writeln!(io.out, "no group of queue `{name}` has pending jobs")?;
        return Ok(());
    }
    let mut t =
        Table::new(&[("GROUP", Col::Shrink), ("PENDING", Col::Num), ("RUNNING", Col::Num), ("CONCURRENCY", Col::Num)]);
    for g in &groups {
        let bound = g.concurrency.map_or_else(|| "none".to_owned(), |n| n.to_string());
        t.row(vec![g.key.clone(), g.pending.to_string(), g.running.to_string(), bound]);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    Ok(())
}

/// `schedules list --json`: one entry per schedule.
#[derive(Serialize)]
struct ScheduleJson {
    name: String,
    cron: String,
    /// Humantime, for an interval schedule.
    every: Option<String>,
    timezone: String,
    job: String,
    queue: String,
    catch_up: CatchUp,
    paused: bool,
    /// No live pool runs its job: its ticks are skipped.
    orphaned: bool,
    starts_at: Option<String>,
    ends_at: Option<String>,
    /// Past its end: no tick comes.
    ended: bool,
    jitter: Option<String>,
    overlap: Overlap,
    exclude: Vec<String>,
    /// A tick waiting for the last job to end (overlap `queue`).
    held_tick: Option<String>,
    /// Ticks skipped while the last job had not ended.
    skipped: u64,
    last_skipped: Option<String>,
    next_fire: Option<String>,
    last_run: Option<String>,
    last_job: Option<String>,
}

/// `schedules list`: the table leaves out the queue (in `--json`), which
/// is nearly always the job's own; CRON shows `every <interval>` for an
/// interval schedule, NEXT `ended` past a schedule's end, and a RULES
/// column (when any schedule has one) its bounds, jitter, overlap policy,
/// exclusion dates, held and skipped ticks. NEXT says `paused` or `orphaned` instead
/// of a time when the schedule enqueues nothing at its next tick (an
/// orphaned schedule's ticks are skipped until a pool runs its job again),
/// and a note on stderr says what orphaned means and how to remove one.
pub(super) async fn schedules(q: &SharedQueue, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let mut list = Scheduler::new(q.clone()).list().await?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        #[derive(Serialize)]
        struct Doc {
            schedules: Vec<ScheduleJson>,
        }
        let schedules = list
            .into_iter()
            .map(|s| ScheduleJson {
                name: s.name,
                cron: s.cron,
                every: s.every.map(|d| humantime::format_duration(d).to_string()),
                timezone: s.timezone,
                job: s.job_name,
                queue: s.queue,
                catch_up: s.catch_up,
                paused: s.paused,
                orphaned: s.orphaned,
                starts_at: s.starts_at.map(json_time),
                ends_at: s.ends_at.map(json_time),
                ended: s.ended,
                jitter: s.jitter.map(|d| humantime::format_duration(d).to_string()),
                overlap: s.overlap,
                exclude: s.exclude,
                held_tick: s.held_tick.map(json_time),
                skipped: s.skipped,
                last_skipped: s.last_skipped.map(json_time),
                next_fire: s.next_fire.map(json_time),
                last_run: s.last_run.map(json_time),
                last_job: s.last_job.map(|j| j.to_string()),
            })
            .collect();
        return print_json(io, &Doc { schedules });
    }
    if list.is_empty() {
        writeln!(io.out, "no schedules")?;
        return Ok(());
    }
    let now = SystemTime::now();
    // RULES only when a schedule has any: a plain list stays as narrow.
    let rules: Vec<String> = list.iter().map(super::schedules::rules).collect();
    let with_rules = rules.iter().any(|r| !r.is_empty());
    let mut columns = vec![
        ("NAME", Col::Keep),
        ("JOB", Col::Shrink),
        ("CRON", Col::Keep),
        ("ZONE", Col::Shrink),
        ("NEXT", Col::Keep),
        ("LAST", Col::Keep),
    ];
    if with_rules {
        columns.push(("RULES", Col::Shrink));
    }
    let mut t = Table::new(&columns);
    for (s, rules) in list.iter().zip(rules) {
        let next = match (s.paused, s.orphaned, s.next_fire) {
            (true, true, _) => "paused, orphaned".to_owned(),
            (true, false, _) => "paused".to_owned(),
            (false, true, _) => "orphaned".to_owned(),
            (false, false, Some(t)) => ago(t, now),
            (false, false, None) if s.ended => "ended".to_owned(),
            (false, false, None) => "never".to_owned(),
        };
        let last = s.last_run.map(|t| ago(t, now)).unwrap_or_else(|| "never".into());
        let cadence = match s.every {
            Some(every) => format!("every {}", humantime::format_duration(every)),
            None => s.cron.clone(),
        };
        let mut row = vec![s.name.clone(), s.job_name.clone(), cadence, s.timezone.clone(), next, last];
        if with_rules {
            row.push(if rules.is_empty() { "-".to_owned() } else { rules });
        }
        t.row(row);
    }
    write!(io.out, "{}", t.render(WIDTH))?;
    let orphans = list.iter().filter(|s| s.orphaned).count();
    match orphans {
        0 => {}
        1 => writeln!(
            io.err,
            "1 schedule is orphaned: no live worker pool runs its job, so its ticks are skipped \
             (`schedules remove NAME` deletes it)"
        )?,
        n => writeln!(
            io.err,
            "{n} schedules are orphaned: no live worker pool runs their jobs, so their ticks are skipped \
             (`schedules remove NAME` deletes one)"
        )?,
    }
    Ok(())
}

/// `schedules pause|resume NAME`.
pub(super) async fn schedule_pause(
    q: &SharedQueue,
    name: &str,
    pause: bool,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        schedule: &'a str,
        paused: bool,
    }
    let scheduler = Scheduler::new(q.clone());
    if pause {
        scheduler.pause(name).await?;
    } else {
        scheduler.resume(name).await?;
    }
    if json {
        return print_json(io, &Doc { schedule: name, paused: pause });
    }
    if pause {
        writeln!(io.out, "paused schedule `{name}`: it enqueues nothing until `schedules resume {name}`")?;
    } else {
        writeln!(io.out, "resumed schedule `{name}`: ticks missed while paused are skipped")?;
    }
    Ok(())
}

/// `schedules remove NAME`: deletes a schedule once the operator confirmed.
/// The prompt names the schedule's job and says whether a live pool still
/// runs it; an unknown name fails before anything is asked.
pub(super) async fn schedule_remove(
    q: &SharedQueue,
    name: &str,
    flags: BulkFlags,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        schedule: &'a str,
        job: &'a str,
        removed: bool,
    }
    let scheduler = Scheduler::new(q.clone());
    let info = scheduler
        .list()
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    let job = info.job_name.as_str();
    let state = if info.orphaned { "orphaned: no live pool runs it" } else { "still run by a live pool" };
    io.confirm(
        flags.yes,
        &format!("Remove schedule `{name}` (job `{job}`, {state})? This cannot be undone."),
        &format!("remove schedule `{name}`"),
    )?;
    // Gone meanwhile (another operator): say so rather than claim the removal.
    if !scheduler.remove(name).await? {
        return Err(Error::ScheduleNotFound(name.to_owned()).into());
    }
    if flags.json {
        return print_json(io, &Doc { schedule: name, job, removed: true });
    }
    writeln!(io.out, "removed schedule `{name}`: it enqueues no more `{job}` jobs")?;
    Ok(())
}
