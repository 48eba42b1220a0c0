//! Richer schedules: intervals, start and end bounds, jitter, overlap
//! policies and exclusion dates, each driven by an explicit clock
//! (`Scheduler::run_due(now)`, for the case's own schedules), never by
//! waiting.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::queue::{
    FetchRequest, Finish, FinishResult, JobQueue, Outcome, Overlap, QueueAdmin, QueueInspect, ScheduleDef,
    ScheduleState, ScheduleStore,
};
use crate::schedule::{CronSchedule, ScheduleOptions, Scheduler};
use crate::testing::harness::unique_queue;
use crate::testing::jobs::Act;
use crate::vocab::{JobId, JobStatus};

use super::probe_job;

const MINUTE: Duration = Duration::from_secs(60);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The prefix of the names of a case's own schedules (`<queue>.<name>`).
fn own(queue: &str) -> String {
    format!("{queue}.")
}

/// The stored state of schedule `name`.
async fn state_of<Q: ScheduleStore>(q: &Q, name: &str) -> ScheduleState {
    q.schedules().await.unwrap().into_iter().find(|s| s.def.name == name).expect("the schedule is stored")
}

/// Both schedulers handle the ticks due at `at` at the same time; the jobs
/// the two enqueued between them. Only the schedules named after `prefix`
/// (a case's own queue) are handled: cases share a server, and a case's
/// clock must not move another case's schedules.
async fn race(a: &Scheduler, b: &Scheduler, prefix: &str, at: SystemTime) -> Vec<JobId> {
    let (x, y) = tokio::join!(a.run_due_named(prefix, at), b.run_due_named(prefix, at));
    let mut fired = x.expect("a pass works");
    fired.extend(y.expect("a pass works"));
    fired
}

/// The first tick of interval schedule `name`, as listed (ticks are whole
/// milliseconds, counted from the creation time).
async fn first_tick(s: &Scheduler, name: &str) -> SystemTime {
    let info = s.list().await.unwrap().into_iter().find(|i| i.name == name).expect("listed");
    info.next_fire.expect("a next tick")
}

/// `t` rounded down to a whole second.
fn whole_second(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + secs(since.as_secs())
}

/// Takes the one pending job of `queue` as a worker would: it is running.
async fn take<Q: JobQueue>(q: &Q, queue: &str, id: &JobId) -> Finish {
    let req = FetchRequest {
        queues: vec![queue.to_owned()],
        max: 1,
        lease: secs(300),
        default_max_retries: 3,
        max_crashes: 0,
    };
    let mut taken = q.fetch(&req).await.unwrap().jobs;
    assert_eq!(taken.len(), 1, "one job to take");
    let job = taken.remove(0);
    assert_eq!(&job.id, id, "the schedule's job is the one taken");
    Finish { id: job.id, token: job.token, outcome: Outcome::Succeeded { result: None } }
}

async fn succeed<Q: JobQueue>(q: &Q, done: Finish) {
    assert_eq!(q.finish(vec![done]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Succeeded)]);
}

/// `every = 90s` ticks once per interval counted from the schedule's
/// creation, however many schedulers race for each tick; between ticks
/// nothing fires. Bad intervals are refused by name.
pub async fn interval_ticks_once_per_interval_across_schedulers<
    Q: ScheduleStore + QueueInspect + QueueAdmin + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("every");
    let name = format!("{queue}.s");
    let (a, b) = (Scheduler::new(q.clone()), Scheduler::new(q.clone()));
    let job = || probe_job(&queue, 1, Act::Succeed);
    let opts = || ScheduleOptions::new().queue(&queue);
    let bad = a.add_every(&name, Duration::ZERO, "UTC", job(), opts()).await.unwrap_err();
    assert!(matches!(&bad, Error::InvalidSchedule(e) if e.field == "every" && e.value == "0s"), "{bad:?}");
    let both = ScheduleDef {
        every: Some(secs(90)),
        ..ScheduleDef::new(&name, "* * * * *", "UTC", "conformance.probe", &queue)
    };
    let bad = a.put(both).await.unwrap_err();
    assert!(matches!(&bad, Error::InvalidSchedule(e) if e.field == "every"), "{bad:?}");
    assert!(q.schedules().await.unwrap().iter().all(|s| s.def.name != name), "nothing stored");

    a.add_every(&name, secs(90), "UTC", job(), opts()).await.unwrap();
    let created = state_of(&q, &name).await.def.created_at;
    let info = a.list().await.unwrap().into_iter().find(|i| i.name == name).unwrap();
    assert_eq!((info.every, info.cron.as_str()), (Some(secs(90)), ""));
    let first = info.next_fire.expect("a next tick");
    let after = first.duration_since(created + secs(90)).expect("not before one interval after creation");
    assert!(after < Duration::from_millis(1), "one interval after creation (to the millisecond): {after:?}");

    assert!(race(&a, &b, &own(&queue), first - secs(1)).await.is_empty(), "no tick before the first interval");
    for k in 1..=4u32 {
        let tick = first + secs(90) * (k - 1);
        let fired = race(&a, &b, &own(&queue), tick + secs(1)).await;
        assert_eq!(fired.len(), 1, "tick {k}: one job across both schedulers: {fired:?}");
        assert!(race(&a, &b, &own(&queue), tick + secs(60)).await.is_empty(), "tick {k}: nothing between ticks");
        assert_eq!(state_of(&q, &name).await.last_tick, Some(tick));
    }
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 4, "four intervals, four jobs");
}

/// No tick before `starts_at` (which itself ticks) nor after `ends_at`
/// (which itself ticks too); a schedule past its end is listed as ended,
/// with no next tick, and never fires.
pub async fn schedule_bounds_hold_ticks_to_their_window<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("bounds");
    let s = Scheduler::new(q.clone());
    let now = whole_second(q.now().await.unwrap());
    let (start, end) = (now + 10 * MINUTE, now + 13 * MINUTE);
    let name = format!("{queue}.window");
    let opts = ScheduleOptions::new().queue(&queue).starts_at(start).ends_at(end);
    s.add_every(&name, MINUTE, "UTC", probe_job(&queue, 1, Act::Succeed), opts).await.unwrap();
    let bad = ScheduleOptions::new().queue(&queue).starts_at(end).ends_at(start);
    let e = s.add_every(&format!("{queue}.bad"), MINUTE, "UTC", probe_job(&queue, 1, Act::Succeed), bad).await;
    assert!(matches!(&e, Err(Error::InvalidSchedule(e)) if e.field == "ends_at"), "{e:?}");

    assert!(s.run_due_named(&own(&queue), start - secs(1)).await.unwrap().is_empty(), "nothing before the start");
    for k in 0..=3u32 {
        let tick = start + MINUTE * k;
        assert_eq!(s.run_due_named(&own(&queue), tick).await.unwrap().len(), 1, "tick {k} inside the window fires");
        assert_eq!(state_of(&q, &name).await.last_tick, Some(tick));
    }
    assert!(s.run_due_named(&own(&queue), end + 5 * MINUTE).await.unwrap().is_empty(), "nothing after the end");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 4);

    let past = format!("{queue}.past");
    let opts = ScheduleOptions::new().queue(&queue).starts_at(now - 120 * MINUTE).ends_at(now - 60 * MINUTE);
    s.add_with(&past, "* * * * *", "UTC", probe_job(&queue, 2, Act::Succeed), opts).await.unwrap();
    let listed = s.list().await.unwrap();
    let info = |n: &str| listed.iter().find(|i| i.name == n).unwrap().clone();
    assert!(info(&past).ended && info(&past).next_fire.is_none(), "{:?}", info(&past));
    assert_eq!(info(&past).ends_at, Some(now - 60 * MINUTE));
    assert!(!info(&name).ended, "a schedule inside its window has not ended");
    assert!(
        s.run_due_named(&own(&queue), now + 30 * MINUTE).await.unwrap().is_empty(),
        "an ended schedule never fires"
    );
}

/// With `jitter = 30s` each tick's job is due at the tick plus less than
/// 30 s, and there is still exactly one job per tick across two racing
/// schedulers.
pub async fn jitter_delays_each_tick_within_bounds_once<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("jitter");
    let name = format!("{queue}.s");
    let (a, b) = (Scheduler::new(q.clone()), Scheduler::new(q.clone()));
    let opts = ScheduleOptions::new().queue(&queue).jitter(secs(30));
    a.add_every(&name, MINUTE, "UTC", probe_job(&queue, 1, Act::Succeed), opts).await.unwrap();
    let first = first_tick(&a, &name).await;
    let mut delays = Vec::new();
    for k in 0..6u32 {
        let tick = first + MINUTE * k;
        let fired = race(&a, &b, &own(&queue), tick).await;
        assert_eq!(fired.len(), 1, "tick {k}: one job: {fired:?}");
        let job = q.job(&fired[0]).await.unwrap().unwrap();
        // A zero delay leaves the job due at once.
        let due = job.run_at.unwrap_or(tick);
        let delay = due.duration_since(tick).expect("never due before its tick");
        assert!(delay < secs(30), "tick {k}: due {delay:?} after its tick, jitter 30s");
        if job.run_at.is_some() {
            assert_eq!(job.status, JobStatus::Scheduled);
        }
        delays.push(delay);
    }
    assert!(delays.iter().any(|d| *d >= Duration::from_millis(1)), "the jitter delays jobs: {delays:?}");
    assert_eq!(q.stats().await.unwrap().queue(&queue).scheduled + q.stats().await.unwrap().queue(&queue).pending, 6);
}

/// `overlap = skip`: ticks that come while the previous job runs are
/// recorded as skipped and enqueue nothing; once it has ended the next tick
/// fires again.
pub async fn overlap_skip_records_skipped_ticks_while_a_job_runs<
    Q: ScheduleStore + QueueInspect + QueueAdmin + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("oskip");
    let name = format!("{queue}.s");
    let s = Scheduler::new(q.clone());
    let opts = ScheduleOptions::new().queue(&queue).overlap(Overlap::Skip);
    s.add_every(&name, MINUTE, "UTC", probe_job(&queue, 1, Act::Succeed), opts).await.unwrap();
    let first = first_tick(&s, &name).await;
    let tick = |k: u32| first + MINUTE * (k - 1);

    let first = s.run_due_named(&own(&queue), tick(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    let running = take(&q, &queue, &first[0]).await;
    for k in 2..=3 {
        assert!(
            s.run_due_named(&own(&queue), tick(k)).await.unwrap().is_empty(),
            "tick {k} skipped while the job runs"
        );
        let st = state_of(&q, &name).await;
        assert_eq!((st.skipped, st.last_skipped, st.last_tick), (u64::from(k) - 1, Some(tick(k)), Some(tick(k))));
        assert_eq!(st.last_job.as_ref(), Some(&first[0]), "the running job is still the last");
    }
    let listed = s.list().await.unwrap().into_iter().find(|i| i.name == name).unwrap();
    assert_eq!((listed.overlap, listed.skipped, listed.last_skipped), (Overlap::Skip, 2, Some(tick(3))));
    succeed(&q, running).await;
    let next = s.run_due_named(&own(&queue), tick(4)).await.unwrap();
    assert_eq!(next.len(), 1, "the job ended: the next tick fires");
    let st = state_of(&q, &name).await;
    assert_eq!((st.skipped, st.last_job.as_ref()), (2, Some(&next[0])));
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}

/// `overlap = queue`: a tick that comes while the previous job runs is held
/// (a later one is skipped: one waits at most), its job is not enqueued
/// while the previous one runs, and it is enqueued once, by one of two
/// racing schedulers, after the previous job ended.
pub async fn overlap_queue_runs_the_held_tick_after_the_previous_ends<
    Q: ScheduleStore + QueueInspect + QueueAdmin + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("oqueue");
    let name = format!("{queue}.s");
    let (a, b) = (Scheduler::new(q.clone()), Scheduler::new(q.clone()));
    let opts = ScheduleOptions::new().queue(&queue).overlap(Overlap::Queue);
    a.add_every(&name, MINUTE, "UTC", probe_job(&queue, 1, Act::Succeed), opts).await.unwrap();
    let first = first_tick(&a, &name).await;
    let tick = |k: u32| first + MINUTE * (k - 1);

    let first = a.run_due_named(&own(&queue), tick(1)).await.unwrap();
    let running = take(&q, &queue, &first[0]).await;
    assert!(race(&a, &b, &own(&queue), tick(2)).await.is_empty(), "tick 2 waits for the running job");
    assert_eq!(state_of(&q, &name).await.held_tick, Some(tick(2)));
    assert!(race(&a, &b, &own(&queue), tick(3)).await.is_empty(), "tick 3 comes while tick 2 waits");
    let st = state_of(&q, &name).await;
    assert_eq!((st.held_tick, st.skipped), (Some(tick(2)), 1), "one tick waits at most; the other is skipped");
    assert!(race(&a, &b, &own(&queue), tick(3) + secs(30)).await.is_empty(), "not before the previous job ends");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 0, "nothing enqueued while it runs");
    let listed = a.list().await.unwrap().into_iter().find(|i| i.name == name).unwrap();
    assert_eq!(listed.held_tick, Some(tick(2)));

    succeed(&q, running).await;
    let released = race(&a, &b, &own(&queue), tick(3) + secs(40)).await;
    assert_eq!(released.len(), 1, "the held tick runs once, after the previous job: {released:?}");
    let st = state_of(&q, &name).await;
    assert_eq!((st.held_tick, st.last_job.as_ref()), (None, Some(&released[0])));
    assert_eq!(q.job(&released[0]).await.unwrap().unwrap().status, JobStatus::Pending);
    // The released job has not run yet: the next tick waits for it in turn.
    assert!(race(&a, &b, &own(&queue), tick(4)).await.is_empty());
    assert_eq!(state_of(&q, &name).await.held_tick, Some(tick(4)));
}

/// Exclusion dates, read in the schedule's zone: a daily schedule fires on
/// every day but exactly the excluded ones.
pub async fn exclusion_dates_skip_exactly_those_days<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("holiday");
    let name = format!("{queue}.s");
    let (cron, zone) = ("0 30 9 * * *", "Europe/Berlin");
    let s = Scheduler::new(q.clone());
    let now = q.now().await.unwrap();
    let ticks = CronSchedule::parse(cron, zone).unwrap().ticks_between(now, now + secs(8 * 24 * 3600), 7);
    assert_eq!(ticks.len(), 7);
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let date = |t: SystemTime| DateTime::<Utc>::from(t).with_timezone(&tz).date_naive();
    let excluded = [date(ticks[1]), date(ticks[4]), date(ticks[5])];
    let mut opts = ScheduleOptions::new().queue(&queue);
    for d in excluded {
        opts = opts.exclude(d);
    }
    s.add_with(&name, cron, zone, probe_job(&queue, 1, Act::Succeed), opts).await.unwrap();
    let listed = s.list().await.unwrap().into_iter().find(|i| i.name == name).unwrap();
    assert_eq!(listed.exclude.len(), 3, "{listed:?}");
    let bad = ScheduleDef {
        exclude: vec!["24/12/2026".into()],
        ..ScheduleDef::new(&format!("{queue}.bad"), cron, zone, "conformance.probe", &queue)
    };
    let e = s.put(bad).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidSchedule(e) if e.field == "exclude" && e.value == "24/12/2026"), "{e:?}");

    for (i, t) in ticks.iter().enumerate() {
        let fired = s.run_due_named(&own(&queue), *t + secs(1)).await.unwrap();
        let expected = usize::from(!excluded.contains(&date(*t)));
        assert_eq!(fired.len(), expected, "day {i} ({}), excluded: {excluded:?}", date(*t));
    }
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 4, "seven days, three of them excluded");
}
