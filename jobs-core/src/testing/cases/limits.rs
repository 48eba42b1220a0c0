//! Bounds: times an enqueue refuses, and what a job's record keeps.

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::job::{JobExt, JobOptions};
use crate::queue::{
    JobQueue, QueueAdmin, QueueInspect, ScheduleDef, ScheduleStore, ATTEMPT_LOG_MAX, MAX_JOB_DURATION,
    MAX_SCHEDULED_AT_SECS,
};
use crate::testing::harness::{test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::JobStatus;
use crate::worker::Backoff;

use super::{probe_job, put, raw_job};

/// Durations past 100 years and instants past the year 9999 are refused with
/// an error naming the option, before anything is written, on every enqueue
/// path (one job, a batch, a schedule's tick); the limits themselves are
/// accepted.
pub async fn out_of_range_times_are_refused<Q: ScheduleStore + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("limits");
    let past_max = MAX_JOB_DURATION + Duration::from_secs(1);
    let far = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 2));
    let year_10000 = SystemTime::UNIX_EPOCH + Duration::from_secs(MAX_SCHEDULED_AT_SECS);
    let mut refused: Vec<(&str, JobOptions)> = vec![
        ("unique_for", JobOptions::new().unique_for(Duration::MAX)),
        ("unique_for", JobOptions::new().unique_for(past_max)),
        ("delay", JobOptions::new().delay(Duration::MAX)),
        ("delay", JobOptions::new().delay(past_max)),
        ("timeout", JobOptions::new().timeout(Duration::MAX)),
        ("timeout", JobOptions::new().timeout(past_max)),
        ("scheduled_at", JobOptions::new().scheduled_at(year_10000)),
    ];
    if let Some(far) = far {
        refused.push(("scheduled_at", JobOptions::new().scheduled_at(far)));
    }
    for (option, opts) in refused {
        let err = probe_job(&queue, 1, Act::Succeed).enqueue_with(&q, opts.queue(&queue)).await.unwrap_err();
        match &err {
            Error::InvalidArgument(m) => {
                assert!(m.contains(&format!("`{option}`")), "{m}");
                assert!(m.contains("maximum"), "{m}");
            }
            other => panic!("`{option}`: expected InvalidArgument, got {other:?}"),
        }
    }
    // A batch with one bad job stores none of it.
    let good = probe_job(&queue, 2, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap();
    let bad = probe_job(&queue, 3, Act::Succeed)
        .into_new_job(JobOptions::new().queue(&queue).timeout(Duration::MAX))
        .unwrap();
    let good_id = good.id.clone();
    assert!(matches!(q.enqueue_many(vec![good, bad]).await, Err(Error::InvalidArgument(_))));
    assert!(q.job(&good_id).await.unwrap().is_none(), "nothing of a refused batch is stored");
    let c = q.stats().await.unwrap().queue(&queue);
    assert_eq!((c.pending, c.scheduled), (0, 0), "nothing refused is stored");

    // The limits are accepted, and stored exactly enough to come back.
    let longest = JobOptions::new().delay(MAX_JOB_DURATION).timeout(MAX_JOB_DURATION).unique_for(MAX_JOB_DURATION);
    let id = put(&q, &queue, 4, Act::Succeed, longest).await;
    let info = q.job(&id).await.unwrap().expect("stored");
    assert_eq!(info.status, JobStatus::Scheduled);
    let run_at = info.run_at.expect("due later");
    let now = q.now().await.unwrap();
    let ahead = run_at.duration_since(now).unwrap_or_default();
    assert!(ahead > MAX_JOB_DURATION - Duration::from_secs(60), "due {ahead:?} from now");
    let last = year_10000 - Duration::from_secs(1);
    let id = put(&q, &queue, 5, Act::Succeed, JobOptions::new().scheduled_at(last)).await;
    let info = q.job(&id).await.unwrap().expect("stored");
    assert_eq!((info.status, info.run_at), (JobStatus::Scheduled, Some(last)));

    // A schedule's tick goes through the same check, and stays unhandled.
    let name = format!("{queue}.tick");
    q.put_schedule(ScheduleDef::new(&name, "0 0 1 1 *", "UTC", "conformance.probe", &queue)).await.unwrap();
    let mut job = raw_job(&queue, "conformance.probe", b"{}");
    job.timeout = Some(Duration::MAX);
    let tick = SystemTime::now();
    let err = q.fire_schedule(&name, tick, Some(job)).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("`timeout`")), "{err:?}");
    let state = q.schedules().await.unwrap().into_iter().find(|s| s.def.name == name).expect("stored");
    assert_eq!(state.last_tick, None, "a refused tick is not recorded");
    let c = q.stats().await.unwrap().queue(&queue);
    assert_eq!((c.pending, c.scheduled), (0, 2), "only the two accepted jobs are stored");
    q.remove_schedule(&name).await.unwrap();
}

/// A job that fails 80 times before it succeeds: its attempt count is
/// exact, its log keeps the first attempt and the latest ones (the success
/// last), and counts the ones left out.
pub async fn attempt_log_is_bounded<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    const FAILURES: u32 = 80;
    let queue = unique_queue("longlog");
    let id = put(&q, &queue, 1, Act::FailTimes(FAILURES), JobOptions::new().max_retries(FAILURES)).await;
    let fast = Backoff { base: Duration::from_millis(1), factor: 1.0, cap: Duration::from_millis(1), jitter: false };
    let pool = test_pool(q.clone(), &[&queue]).backoff(fast).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(info.attempts, FAILURES + 1);
    let log = &info.attempt_log;
    assert_eq!(log.len(), ATTEMPT_LOG_MAX, "the log is bounded");
    assert_eq!(info.attempts_omitted as usize + log.len(), FAILURES as usize + 1, "what is left out is counted");
    assert_eq!((log[0].attempt, log[0].error.as_deref()), (1, Some("planned failure 1")));
    let last = log.last().expect("not empty");
    assert_eq!((last.attempt, last.error.as_deref()), (FAILURES + 1, None), "the success comes last");
    assert!(last.finished_at.is_some());
    let kept: Vec<u32> = log[1..].iter().map(|a| a.attempt).collect();
    let latest: Vec<u32> = (FAILURES + 2 - (ATTEMPT_LOG_MAX as u32 - 1)..=FAILURES + 1).collect();
    assert_eq!(kept, latest, "the latest attempts, in order");
    assert_eq!(log[log.len() - 2].error.as_deref(), Some(&*format!("planned failure {FAILURES}")));
}
