//! `schedules add` and `schedules trigger`: storing a recurring job from
//! the command line, and running one now.

use std::time::SystemTime;

use jobs_core::{CronSchedule, Error, JobQueue, ScheduleDef, ScheduleInfo, Scheduler, SharedQueue};
use serde::Serialize;

use super::enqueue::{find, resolve};
use super::print_json;
use crate::args::ScheduleAddArgs;
use crate::error::CliError;
use crate::io::Io;
use crate::view::{ago, time};

/// `schedules add NAME --job J --cron EXPR ..` (or `--every DURATION`): the
/// job looked up among the linked ones, the expression and zone parsed, the
/// payload checked with the job's `check`, in that order (the first wrong
/// one is reported); then the schedule's other settings are checked as it
/// is stored, and its next tick printed. Stdout holds one line for
/// people: `--json` is the payload here, as in `enqueue`.
pub(super) async fn add(args: &ScheduleAddArgs, q: &SharedQueue, io: &mut Io<'_>) -> Result<(), CliError> {
    let desc = find(&args.job)?;
    if let Some(cron) = &args.cron {
        CronSchedule::parse(cron, &args.timezone)?;
    }
    let (payload, queue, priority) = resolve(&args.job_args, desc)?;
    let scheduler = Scheduler::new(q.clone());
    let existed = scheduler.list().await?.iter().any(|s| s.name == args.name);
    let cron = args.cron.as_deref().unwrap_or_default();
    // Each tick's job in its group, with the job type's bounds, as an
    // enqueue of the same payload would be.
    let group = (desc.group)(&payload).map(|key| desc.job_group(key));
    let def = ScheduleDef {
        priority,
        payload,
        group,
        max_retries: desc.max_retries,
        timeout: desc.timeout,
        // Its ticks count from here, on the backend's clock, as
        // `Scheduler::add` does.
        created_at: q.now().await?,
        every: args.every,
        starts_at: args.starts_at,
        ends_at: args.ends_at,
        jitter: args.jitter,
        overlap: args.overlap,
        exclude: args.exclude.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
        ..ScheduleDef::new(&args.name, cron, &args.timezone, desc.name, queue)
    };
    scheduler.put(def).await?;
    let info = stored(&scheduler, &args.name).await?;
    let verb = if existed { "replaced" } else { "added" };
    let next = match (info.paused, info.next_fire) {
        (true, _) => format!("paused: no tick until `schedules resume {}`", info.name),
        (false, Some(t)) => format!("next tick {} ({})", time(t), ago(t, SystemTime::now())),
        (false, None) if info.ended => "it has ended: no tick comes after its end".to_owned(),
        (false, None) => "the expression never fires again".to_owned(),
    };
    let when = match info.every {
        Some(every) => format!("every {}", humantime::format_duration(every)),
        None => format!("at `{}`", info.cron),
    };
    let rules = rules(&info);
    let rules = if rules.is_empty() { String::new() } else { format!(", {rules}") };
    writeln!(
        io.out,
        "{verb} schedule `{}`: `{}` on queue `{}` {when} ({}{rules}); {next}",
        info.name, info.job_name, info.queue, info.timezone
    )?;
    if info.orphaned {
        writeln!(io.err, "{}", orphan_note(&info))?;
    }
    Ok(())
}

/// `schedules trigger NAME`: the schedule's job enqueued now, once; prints
/// its id alone on stdout (what scripts read), a note for people on stderr.
pub(super) async fn trigger(q: &SharedQueue, name: &str, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        schedule: &'a str,
        job: &'a str,
        id: String,
    }
    let scheduler = Scheduler::new(q.clone());
    let info = stored(&scheduler, name).await?;
    let id = scheduler.trigger(name).await?;
    if info.orphaned {
        writeln!(io.err, "{}", orphan_note(&info))?;
    }
    if json {
        return print_json(io, &Doc { schedule: name, job: &info.job_name, id: id.to_string() });
    }
    writeln!(io.out, "{id}")?;
    writeln!(
        io.err,
        "enqueued `{}` on queue `{}` from schedule `{name}`, due now; its ticks are unchanged",
        info.job_name,
        id.queue()
    )?;
    Ok(())
}

/// A schedule's settings beyond its cadence, in a few words ("" for none):
/// what `schedules list` and `schedules add` show.
pub(super) fn rules(info: &ScheduleInfo) -> String {
    let mut out = Vec::new();
    if let Some(t) = info.starts_at {
        out.push(format!("from {}", time(t)));
    }
    if let Some(t) = info.ends_at {
        out.push(format!("until {}", time(t)));
    }
    if let Some(j) = info.jitter {
        out.push(format!("jitter {}", humantime::format_duration(j)));
    }
    if info.overlap != jobs_core::Overlap::Allow {
        out.push(format!("overlap {}", info.overlap));
    }
    match info.exclude.len() {
        0 => {}
        1 => out.push(format!("except {}", info.exclude[0])),
        n => out.push(format!("except {n} dates")),
    }
    if info.held_tick.is_some() {
        out.push("1 tick held".to_owned());
    }
    if info.skipped > 0 {
        out.push(format!("{} skipped", info.skipped));
    }
    out.join(", ")
}

/// The stored schedule `name`, as listed.
async fn stored(scheduler: &Scheduler, name: &str) -> Result<ScheduleInfo, CliError> {
    let found = scheduler.list().await?.into_iter().find(|s| s.name == name);
    Ok(found.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?)
}

/// Live pools run none of them: its jobs wait (and its ticks are skipped).
fn orphan_note(info: &ScheduleInfo) -> String {
    format!(
        "note: schedule `{}` is orphaned: no live worker pool runs `{}`, so its ticks are skipped \
         and a job enqueued for it waits until a pool that runs it starts",
        info.name, info.job_name
    )
}
