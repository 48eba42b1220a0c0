//! Recurring jobs stored in the backend.

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::job::{JobExt, JobOptions};
use crate::queue::{
    CancelResult, CatchUp, PoolPresence, QueueAdmin, QueueInspect, QueuePolicy, ScheduleDef, ScheduleStore,
};
use crate::schedule::{CronSchedule, ScheduleOptions, Scheduler};
use crate::testing::harness::{eventually, eventually_some, unique_queue};
use crate::testing::jobs::Act;

use super::probe_job;

fn opts(queue: &str, catch_up: CatchUp) -> ScheduleOptions {
    ScheduleOptions::new().catch_up(catch_up).queue(queue)
}

/// Schedules are stored, listed with their next fire time, paused, resumed
/// and removed; bad expressions, zones and names are refused.
pub async fn schedules_are_stored_and_listed<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("sched");
    let name = format!("{queue}.nightly");
    let s = Scheduler::new(q.clone());
    let job = || probe_job(&queue, 1, Act::Succeed);
    let bad = s.add_with(&name, "0 61 * * *", "UTC", job(), opts(&queue, CatchUp::One)).await.unwrap_err();
    assert!(bad.to_string().contains("invalid cron expression"), "{bad}");
    let bad = s.add_with(&name, "0 3 * * *", "Mars/Base", job(), opts(&queue, CatchUp::One)).await.unwrap_err();
    assert!(bad.to_string().contains("unknown time zone `Mars/Base`"), "{bad}");
    assert!(s.add_with("bad name!", "0 3 * * *", "UTC", job(), opts(&queue, CatchUp::One)).await.is_err());
    s.add_with(&name, "0 0 3 * * *", "Europe/Berlin", job(), opts(&queue, CatchUp::One)).await.unwrap();
    let find = |list: Vec<crate::ScheduleInfo>| list.into_iter().find(|i| i.name == name).expect("listed");
    let info = find(s.list().await.unwrap());
    assert_eq!(
        (info.cron.as_str(), info.timezone.as_str(), info.queue.as_str()),
        ("0 0 3 * * *", "Europe/Berlin", queue.as_str())
    );
    assert_eq!(info.job_name, "conformance.probe");
    let next = info.next_fire.expect("a next fire time");
    assert!(next > SystemTime::now() && next < SystemTime::now() + Duration::from_secs(25 * 3600));
    s.pause(&name).await.unwrap();
    let info = find(s.list().await.unwrap());
    assert!(info.paused && info.next_fire.is_none());
    s.resume(&name).await.unwrap();
    assert!(!find(s.list().await.unwrap()).paused);
    assert!(s.remove(&name).await.unwrap());
    assert!(!s.remove(&name).await.unwrap());
    assert!(matches!(s.pause(&name).await, Err(Error::ScheduleNotFound(_))));
}

/// Three schedulers on one backend: every tick of a one-second schedule is
/// enqueued exactly once, and none is missed.
pub async fn schedule_ticks_fire_once_across_schedulers<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("ticks");
    let name = format!("{queue}.every-second");
    let s = Scheduler::new(q.clone());
    s.add_with(&name, "* * * * * *", "UTC", probe_job(&queue, 1, Act::Succeed), opts(&queue, CatchUp::One))
        .await
        .unwrap();
    let runners: Vec<_> = (0..3).map(|_| Scheduler::new(q.clone()).start()).collect();
    eventually("five ticks enqueued", || async { q.stats().await.unwrap().queue(&queue).pending >= 5 }).await;
    for r in runners {
        r.stop().await;
    }
    let state = q.schedules().await.unwrap().into_iter().find(|st| st.def.name == name).unwrap();
    let cron = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let ticks = cron.ticks_between(state.def.created_at, state.last_tick.unwrap(), 10_000);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, ticks.len() as u64, "one job per tick, none missed");
}

/// After downtime: `all` enqueues every missed tick, `one` a single run,
/// `none` nothing for ticks more than a minute late; a second pass at the
/// same time enqueues nothing more.
pub async fn schedule_catch_up_policies<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let s = Scheduler::new(q.clone());
    let cron = "0 */5 * * * *";
    let mut queues = Vec::new();
    for policy in [CatchUp::All, CatchUp::One, CatchUp::None] {
        let queue = unique_queue("catchup");
        let name = format!("{queue}.s");
        s.add_with(&name, cron, "UTC", probe_job(&queue, 1, Act::Succeed), opts(&queue, policy)).await.unwrap();
        queues.push((policy, queue));
    }
    let created = SystemTime::now();
    let ticks =
        CronSchedule::parse(cron, "UTC").unwrap().ticks_between(created, created + Duration::from_secs(16 * 60), 10);
    // Two minutes past the third tick: three ticks missed, the last 2 min late.
    let at = ticks[2] + Duration::from_secs(120);
    // Up to 17 minutes ahead: only this case's schedules, so that other
    // cases sharing the server keep their own clocks.
    let own = "t.catchup.";
    s.run_due_named(own, at).await.unwrap();
    assert!(s.run_due_named(own, at).await.unwrap().is_empty(), "a tick is handled once");
    let stats = q.stats().await.unwrap();
    let count = |policy: CatchUp| {
        let queue = &queues.iter().find(|(p, _)| *p == policy).unwrap().1;
        stats.queue(queue).pending
    };
    assert_eq!(count(CatchUp::All), 3);
    assert_eq!(count(CatchUp::One), 1);
    assert_eq!(count(CatchUp::None), 0);
}

/// A paused schedule enqueues nothing; resuming skips the ticks it missed.
pub async fn schedule_pause_skips_ticks<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("spause");
    let name = format!("{queue}.s");
    let s = Scheduler::new(q.clone());
    s.add_with(&name, "* * * * * *", "UTC", probe_job(&queue, 1, Act::Succeed), opts(&queue, CatchUp::All))
        .await
        .unwrap();
    s.pause(&name).await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(10);
    assert!(s.run_due(later).await.unwrap().is_empty());
    // Every tick up to `before` was missed while paused, however long the
    // resume itself takes on a loaded machine.
    let before = SystemTime::now();
    s.resume(&name).await.unwrap();
    assert!(s.run_due(before).await.unwrap().is_empty(), "missed ticks are skipped");
    let until = SystemTime::now() + Duration::from_secs(3);
    let fired = s.run_due(until).await.unwrap();
    // One tick per second after the resume: at least the 2 whole seconds
    // before `until`, at most one per second since `before`.
    let most = until.duration_since(before).unwrap_or_default().as_secs() as usize + 1;
    assert!((2..=most).contains(&fired.len()), "ticks after the resume run: {} (at most {most})", fired.len());
}

/// A pool adds the schedules declared with `#[job(cron = ..)]` when it
/// starts.
pub async fn pool_adds_attribute_schedules<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("cronattr");
    let pool = crate::testing::test_pool(q.clone(), &[&queue]).start().unwrap();
    let s = eventually_some("the nightly schedule is stored", || async {
        q.schedules().await.unwrap().into_iter().find(|s| s.def.name == "conformance.nightly")
    })
    .await;
    pool.shutdown().await.unwrap();
    assert_eq!((s.def.cron.as_str(), s.def.timezone.as_str()), ("0 0 3 * * *", "Europe/Berlin"));
    assert_eq!((s.def.job_name.as_str(), s.def.queue.as_str()), ("conformance.nightly", "conformance.cron"));
    assert_eq!(s.def.payload, b"{}".to_vec());
}

/// A schedule that cannot fire (its queue is full) is skipped: the pass
/// fires every other schedule's due ticks all the same, and the full one's
/// tick fires once its queue has room.
pub async fn failing_schedule_does_not_stop_the_others<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let full = unique_queue("sfull");
    let open = unique_queue("sopen");
    q.set_policy(&full, QueuePolicy { max_jobs: Some(1), priority_levels: vec![], ..Default::default() })
        .await
        .unwrap();
    let blocker = probe_job(&full, 0, Act::Succeed).enqueue_with(&q, JobOptions::new().queue(&full)).await.unwrap();
    let s = Scheduler::new(q.clone());
    for (queue, seq) in [(&full, 1), (&open, 2)] {
        let name = format!("{queue}.s");
        s.add_with(&name, "* * * * * *", "UTC", probe_job(queue, seq, Act::Succeed), opts(queue, CatchUp::One))
            .await
            .unwrap();
    }
    let later = SystemTime::now() + Duration::from_secs(3);
    let fired = s.run_due(later).await.expect("a failing schedule does not fail the pass");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].queue(), open.as_str(), "the open queue's schedule fired");
    assert_eq!(q.cancel(&blocker).await.unwrap(), CancelResult::Cancelled);
    let fired = s.run_due(later).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].queue(), full.as_str(), "the full queue's tick fires once there is room");
}

/// A stored schedule whose job no live pool runs (its code was removed) is
/// listed orphaned and skips its ticks; schedules of jobs a pool runs fire
/// as usual.
pub async fn orphaned_schedule_is_flagged_and_does_not_fire<
    Q: ScheduleStore + QueueInspect + QueueAdmin + PoolPresence + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("orphan");
    let pool = crate::testing::test_pool(q.clone(), &[&queue]).start().unwrap();
    eventually("the pool reported its presence", || async { !q.pools().await.unwrap().is_empty() }).await;
    let s = Scheduler::new(q.clone());
    let known = format!("{queue}.known");
    s.add_with(&known, "* * * * * *", "UTC", probe_job(&queue, 1, Act::Succeed), opts(&queue, CatchUp::One))
        .await
        .unwrap();
    let gone = format!("{queue}.gone");
    q.put_schedule(ScheduleDef::new(&gone, "* * * * * *", "UTC", "conformance.removed_from_code", &queue))
        .await
        .unwrap();
    let listed = s.list().await.unwrap();
    let flag = |name: &str| listed.iter().find(|i| i.name == name).map(|i| i.orphaned);
    assert_eq!((flag(&known), flag(&gone)), (Some(false), Some(true)), "{listed:?}");
    let fired = s.run_due(SystemTime::now() + Duration::from_secs(3)).await.unwrap();
    pool.shutdown().await.unwrap();
    assert_eq!(fired.len(), 1, "only the known job's schedule fired: {fired:?}");
    let info = q.job(&fired[0]).await.unwrap().unwrap();
    assert_eq!(info.name, "conformance.probe");
    assert!(s.remove(&gone).await.unwrap(), "an operator removes it");
}

/// A schedule of a grouped job: each run (a tick, or "run now") is in the
/// group its payload names, with the job type's bound, as an enqueue would
/// be.
pub async fn scheduled_jobs_keep_their_group<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("sgroup");
    let name = format!("{queue}.grouped");
    let s = Scheduler::new(q.clone());
    let job = crate::testing::jobs::GroupedJob { key: queue.clone(), group: "acme".into(), seq: 1, sleep_ms: 0 };
    s.add_with(&name, "0 0 3 * * *", "UTC", job, opts(&queue, CatchUp::One)).await.unwrap();
    let id = s.trigger(&name).await.unwrap();
    assert_eq!(q.job(&id).await.unwrap().unwrap().group.as_deref(), Some("acme"));
    let groups = q.groups(&queue, 10).await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!((groups[0].key.as_str(), groups[0].pending, groups[0].concurrency), ("acme", 1, Some(2)));
}
