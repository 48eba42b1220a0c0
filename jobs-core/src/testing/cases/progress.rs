//! Progress (`JobContext::progress`, `JobQueue::report_progress`): stored on
//! the job by its lease holder only, kept when the attempt ends, gone with
//! the job, streamed as events, and rate-limited by the pool.

use std::time::Duration;

use crate::error::Error;
use crate::events::{EventCursor, EventKind, JobEvent};
use crate::queue::{
    FetchRequest, Finish, FinishResult, JobQueue, Outcome, Progress, ProgressUpdate, ProgressWrite, QueueAdmin,
    QueueEvents, QueueInspect, MAX_PROGRESS_NOTE,
};
use crate::testing::harness::{eventually, eventually_some, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::{JobId, JobStatus};

use super::{ms, put1};

fn lease_of(queue: &str, lease: Duration) -> FetchRequest {
    FetchRequest { lease, ..super::fetch_of(queue, 10) }
}

fn update(id: &JobId, token: u64, fraction: f32, note: &str) -> ProgressUpdate {
    ProgressUpdate { id: id.clone(), token, fraction, note: note.to_owned() }
}

/// The stored progress as (fraction, note, attempt).
async fn stored<Q: QueueInspect>(q: &Q, id: &JobId) -> Option<(f32, String, u32)> {
    let p: Progress = q.job(id).await.unwrap().expect("the job exists").progress?;
    Some((p.fraction, p.note, p.attempt))
}

/// Only the worker that holds a job's lease writes its progress: none
/// before it runs, the stale token of a reclaimed lease refused (the newer
/// attempt's value stays), none after the attempt ended. Values outside
/// 0..=1 and long notes are refused by the backend itself. The last value
/// stays on the job when it ends (here dead, so an operator sees how far
/// it got) and goes with the job.
pub async fn progress_needs_the_lease_and_stays_with_the_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("progstale");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    assert_eq!(stored(&q, &id).await, None, "nothing before it runs");
    assert_eq!(q.report_progress(&update(&id, 1, 0.1, "early")).await.unwrap(), ProgressWrite::Stale);
    assert_eq!(stored(&q, &id).await, None, "a pending job takes no progress");

    let first = q.fetch(&lease_of(&queue, ms(100))).await.unwrap().jobs.remove(0);
    // Its handler starts, so the lease's loss costs an attempt.
    let mark = Finish { id: id.clone(), token: first.token, outcome: Outcome::Started };
    assert_eq!(q.finish(vec![mark]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Running)]);
    let t0 = q.now().await.unwrap();
    assert_eq!(q.report_progress(&update(&id, first.token, 0.25, "first")).await.unwrap(), ProgressWrite::Stored);
    let p = q.job(&id).await.unwrap().unwrap().progress.expect("stored");
    assert_eq!((p.fraction, p.note.as_str(), p.attempt), (0.25, "first", 1));
    let since = p.at.duration_since(t0).unwrap_or_default();
    assert!(since < Duration::from_secs(5), "dated on the backend's clock, now: {since:?} after the fetch");
    for bad in [f32::NAN, -0.5, 1.5, f32::INFINITY] {
        let r = q.report_progress(&update(&id, first.token, bad, "bad")).await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{bad}: {r:?}");
    }
    let long = "n".repeat(MAX_PROGRESS_NOTE + 1);
    let r = q.report_progress(&update(&id, first.token, 0.5, &long)).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(stored(&q, &id).await, Some((0.25, "first".into(), 1)), "refused values change nothing");

    let second = eventually_some("lease expired and job taken again", || async {
        q.fetch(&lease_of(&queue, ms(5000))).await.unwrap().jobs.pop()
    })
    .await;
    assert_eq!((second.attempt, first.attempt), (2, 1));
    assert_ne!(first.token, second.token);
    assert_eq!(q.report_progress(&update(&id, first.token, 0.9, "stale")).await.unwrap(), ProgressWrite::Stale);
    assert_eq!(stored(&q, &id).await, Some((0.25, "first".into(), 1)), "the stale worker wrote nothing");
    assert_eq!(q.report_progress(&update(&id, second.token, 0.5, "second")).await.unwrap(), ProgressWrite::Stored);
    assert_eq!(stored(&q, &id).await, Some((0.5, "second".into(), 2)));

    let dead = Finish { id: id.clone(), token: second.token, outcome: Outcome::Dead { error: "gave up".into() } };
    assert_eq!(q.finish(vec![dead]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Dead)]);
    assert_eq!(q.report_progress(&update(&id, second.token, 0.75, "late")).await.unwrap(), ProgressWrite::Stale);
    assert_eq!(stored(&q, &id).await, Some((0.5, "second".into(), 2)), "kept when the job ends, unchanged");
    let listed = q.dead_jobs(&queue, 10).await.unwrap();
    assert_eq!(listed[0].progress.as_ref().map(|p| p.note.as_str()), Some("second"), "listings show it too");
    assert_eq!(q.purge_dead(&queue).await.unwrap(), 1);
    assert!(q.job(&id).await.unwrap().is_none(), "gone with the job");
}

/// A value held back by the rate limit is written once the interval has
/// passed, though the job reports nothing more: the job reports three
/// values at once and then waits, and the stored progress becomes the
/// third while it still runs.
pub async fn held_back_progress_is_written_when_the_interval_passes<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(
    q: Q,
) {
    let queue = unique_queue("progheld");
    let id = put1(&q, &queue, 1, Act::ProgressThenWait).await;
    let pool = test_pool(q.clone(), &[&queue]).progress_interval(ms(300)).start().unwrap();
    eventually("the last value held back is stored while the job runs", || async {
        let info = q.job(&id).await.unwrap().unwrap();
        info.status == JobStatus::Running && info.progress.is_some_and(|p| p.note == "c")
    })
    .await;
    assert_eq!(stored(&q, &id).await, Some((0.3, "c".into(), 1)));
    q.cancel(&id).await.unwrap();
    wait_status(&q, &id, JobStatus::Cancelled).await;
    pool.shutdown().await.unwrap();
    assert_eq!(stored(&q, &id).await, Some((0.3, "c".into(), 1)), "kept when the job ends");
}

/// Every event of `queue` after `after`, oldest first.
async fn all_events<Q: QueueEvents>(q: &Q, queue: &str, after: &EventCursor) -> Vec<JobEvent> {
    let mut out: Vec<JobEvent> = Vec::new();
    let mut cursor = after.clone();
    loop {
        let page = q.read_events(queue, &cursor, 500).await.unwrap();
        assert!(!page.missed, "no event dropped");
        let Some(last) = page.events.last() else { return out };
        cursor = last.cursor.clone();
        out.extend(page.events);
    }
}

/// A job that reports progress in a tight loop (thousands of calls) costs
/// the backend at most one write per interval: every write is one
/// `progress` event, and they number no more than the attempt's duration
/// over the interval, plus the first and the last. The last value the job
/// reported is the one stored and the last event, written before the
/// attempt's end: every progress event comes between its `started` and
/// its `succeeded`, with the fraction and the note as detail.
pub async fn progress_is_rate_limited_and_streamed<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(
    q: Q,
) {
    const INTERVAL: Duration = Duration::from_millis(100);
    let queue = unique_queue("progress");
    let listening = q.listen(&queue, Duration::from_secs(60)).await.unwrap();
    let id = put1(&q, &queue, 1, Act::ProgressForMs(600)).await;
    let pool = test_pool(q.clone(), &[&queue]).progress_interval(INTERVAL).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();

    let p = info.progress.clone().expect("the last progress is stored");
    let calls: u64 = p
        .note
        .strip_prefix("done after ")
        .and_then(|n| n.strip_suffix(" calls"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the last value is the job's last call, not {:?}", p.note));
    assert_eq!((p.fraction, p.attempt), (1.0, 1));
    assert!(calls >= 1_000, "a tight loop makes thousands of calls, this one {calls}");

    let events: Vec<JobEvent> = all_events(&q, &queue, &listening.cursor).await;
    let kinds: Vec<EventKind> = events.iter().filter(|e| e.job == id).map(|e| e.kind).collect();
    let first_progress = kinds.iter().position(|k| *k == EventKind::Progress).expect("progress events");
    let last_progress = kinds.iter().rposition(|k| *k == EventKind::Progress).unwrap();
    assert_eq!(kinds.iter().position(|k| *k == EventKind::Started), Some(first_progress - 1), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&EventKind::Succeeded), "{kinds:?}");
    assert_eq!(last_progress, kinds.len() - 2, "no progress after the end: {kinds:?}");

    let writes: Vec<&JobEvent> = events.iter().filter(|e| e.job == id && e.kind == EventKind::Progress).collect();
    let attempt = &info.attempt_log[0];
    let ran = attempt.finished_at.unwrap().duration_since(attempt.started_at).unwrap_or_default();
    let most = ran.as_millis() / INTERVAL.as_millis() + 2;
    assert!(
        writes.len() >= 2 && writes.len() as u128 <= most,
        "{} writes for {calls} calls in {ran:?}: at most {most} with an interval of {INTERVAL:?}",
        writes.len()
    );
    let fractions: Vec<f32> =
        writes.iter().map(|e| e.progress.expect("a progress event carries its fraction")).collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "written in the order reported: {fractions:?}");
    let last = writes.last().unwrap();
    assert_eq!((last.progress, last.detail.as_deref(), last.attempt), (Some(1.0), Some(p.note.as_str()), 1));
    assert!(writes[0].detail.as_deref().is_some_and(|d| d.starts_with("step ")), "{:?}", writes[0]);
}

/// A running job shows whether its handler is known to have started: not
/// while it is only leased (waiting in its pool for a worker), from the
/// pool's start mark on, not for another attempt's mark (a reclaimed lease),
/// and no longer once the attempt ended.
pub async fn a_running_job_shows_whether_its_handler_started<Q: JobQueue + QueueInspect + Clone>(q: Q) {
    let queue = unique_queue("handlerstart");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    let started = |q: Q, id: JobId| async move { q.job(&id).await.unwrap().expect("the job exists").handler_started };
    assert!(!started(q.clone(), id.clone()).await, "pending");

    let first = q.fetch(&lease_of(&queue, ms(100))).await.unwrap().jobs.remove(0);
    assert!(!started(q.clone(), id.clone()).await, "leased, its handler not reported started");
    let mark = Finish { id: id.clone(), token: first.token, outcome: Outcome::Started };
    assert_eq!(q.finish(vec![mark]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Running)]);
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!((info.status, info.handler_started), (JobStatus::Running, true), "the start mark shows");

    // The lease lapses and another worker takes the job: the first
    // attempt's mark is not the second's.
    let second = eventually_some("lease expired and job taken again", || async {
        q.fetch(&lease_of(&queue, ms(5000))).await.unwrap().jobs.pop()
    })
    .await;
    assert_ne!(first.token, second.token);
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!((info.status, info.handler_started), (JobStatus::Running, false), "a new attempt, not reported started");
    let mark = Finish { id: id.clone(), token: second.token, outcome: Outcome::Started };
    assert_eq!(q.finish(vec![mark]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Running)]);
    assert!(started(q.clone(), id.clone()).await, "the second attempt's mark shows");

    let done = Finish { id: id.clone(), token: second.token, outcome: Outcome::Succeeded { result: None } };
    assert_eq!(q.finish(vec![done]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Succeeded)]);
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!((info.status, info.handler_started), (JobStatus::Succeeded, false), "an ended job runs no handler");
}
