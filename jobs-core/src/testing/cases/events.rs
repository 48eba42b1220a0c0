//! Job events and typed waits on them.

use std::time::Duration;

use crate::events::{EventCursor, EventFilter, EventKind, JobEvent};
use crate::follow::EventStream;
use crate::job::{JobExt, JobHandle, JobOptions, WaitError};
use crate::queue::{CancelResult, JobQueue, QueueAdmin, QueueEvents, QueueInspect};
use crate::testing::harness::{test_pool, unique_queue, wait_status};
use crate::testing::jobs::{Act, ProbeJob};
use crate::vocab::{JobId, JobStatus};

use super::{probe_job, put, put1};

/// How long a case waits for an event or a result before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The next event of `stream` for job `id`, skipping others.
async fn next_of(stream: &mut EventStream, id: &JobId) -> JobEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let e = stream.next().await.expect("a stream never ends").expect("no error on a healthy backend");
            if &e.job == id {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no further event of {id} within {PATIENCE:?}"))
}

/// A job that fails once and then succeeds is followed through every state
/// change, in order, each event once, with its attempt and error.
pub async fn events_follow_a_job_through_its_life<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(q: Q) {
    let queue = unique_queue("events");
    let mut stream = EventStream::open(&q, EventFilter::queue(&queue)).await.unwrap();
    let id = put(&q, &queue, 7, Act::FailTimes(1), JobOptions::new().max_retries(2)).await;
    let pool = test_pool(q.clone(), &[&queue]).retry_delay(Duration::from_millis(10)).start().unwrap();
    let mut seen = Vec::new();
    loop {
        let e = next_of(&mut stream, &id).await;
        assert_eq!(e.name, "conformance.probe", "{e:?}");
        let last = e.kind == EventKind::Succeeded;
        seen.push((e.kind, e.attempt, e.detail));
        if last {
            break;
        }
    }
    pool.shutdown().await.unwrap();
    assert_eq!(
        seen,
        vec![
            (EventKind::Enqueued, 0, None),
            (EventKind::Started, 1, None),
            (EventKind::Retrying, 1, Some("planned failure 1".to_owned())),
            (EventKind::Started, 2, None),
            (EventKind::Succeeded, 2, None),
        ]
    );
}

/// Nothing is recorded while no one listens; what happens after `listen`
/// is.
pub async fn events_are_recorded_only_while_listened<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(
    q: Q,
) {
    let queue = unique_queue("evquiet");
    let quiet = put1(&q, &queue, 1, Act::Succeed).await;
    let l = q.listen(&queue, Duration::from_secs(60)).await.unwrap();
    assert!(!l.was_on, "no one listened before");
    let page = q.read_events(&queue, &EventCursor::start(), 100).await.unwrap();
    assert!(page.events.is_empty(), "events recorded with no listener: {:?}", page.events);
    assert_eq!(q.cancel(&quiet).await.unwrap(), CancelResult::Cancelled);
    let page = q.read_events(&queue, &l.cursor, 100).await.unwrap();
    let kinds: Vec<_> = page.events.iter().map(|e| (e.kind, e.job.clone())).collect();
    assert_eq!(kinds, vec![(EventKind::Cancelled, quiet)]);
    assert!(q.listen(&queue, Duration::from_secs(60)).await.unwrap().was_on);
}

/// A reader resumes after the last cursor it saw and gets exactly the
/// events after it; a filter by job name or id passes only those.
pub async fn events_resume_from_a_cursor<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(q: Q) {
    let queue = unique_queue("evresume");
    let l = q.listen(&queue, Duration::from_secs(60)).await.unwrap();
    let mut ids = Vec::new();
    for seq in 0..3 {
        ids.push(put1(&q, &queue, seq, Act::Succeed).await);
    }
    let first = q.read_events(&queue, &l.cursor, 2).await.unwrap();
    assert!(!first.missed);
    let got: Vec<_> = first.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[..2].to_vec());
    let rest = q.read_events(&queue, &first.events[1].cursor, 10).await.unwrap();
    let got: Vec<_> = rest.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[2..].to_vec());

    let mut resumed =
        EventStream::resume(&q, EventFilter::queue(&queue).job(&ids[2]), first.events[0].cursor.clone()).await.unwrap();
    let e = next_of(&mut resumed, &ids[2]).await;
    assert_eq!((e.kind, e.attempt), (EventKind::Enqueued, 0));
    // Only the filtered job's events come through.
    assert_eq!(q.cancel(&ids[1]).await.unwrap(), CancelResult::Cancelled);
    assert_eq!(q.cancel(&ids[2]).await.unwrap(), CancelResult::Cancelled);
    let e = tokio::time::timeout(PATIENCE, resumed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((e.kind, &e.job), (EventKind::Cancelled, &ids[2]));
}

/// `wait` returns the job's typed value; a wait begun after the job ended
/// returns it at once.
pub async fn wait_returns_the_typed_result<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(q: Q) {
    let queue = unique_queue("waitok");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    let h = probe_job(&queue, 41, Act::Succeed).submit_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let v: u64 = h.wait(PATIENCE).await.unwrap();
    assert_eq!(v, 41);
    pool.shutdown().await.unwrap();
    // Ended before this wait began: no event will come, the read answers.
    let late = JobHandle::<ProbeJob>::new(&q, h.id().clone());
    assert_eq!(late.wait(Duration::ZERO).await.unwrap(), 41);
    assert_eq!(late.outcome().await.unwrap(), Some(41));
    assert_eq!(late.status().await.unwrap(), JobStatus::Succeeded);
}

/// A dead job's wait fails with its last error; a cancelled one's says so;
/// a job that has not ended times out with its status; an unknown id is
/// not found.
pub async fn wait_reports_every_other_end<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(q: Q) {
    let queue = unique_queue("waitfail");
    let dead = probe_job(&queue, 1, Act::Permanent).submit_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    let cancelled = probe_job(&queue, 2, Act::Succeed).submit_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
    assert_eq!(cancelled.cancel().await.unwrap(), CancelResult::Cancelled);
    match cancelled.wait(PATIENCE).await {
        Err(WaitError::Cancelled { id }) => assert_eq!(&id, cancelled.id()),
        other => panic!("expected cancelled, got {other:?}"),
    }
    let pending = probe_job(&queue, 3, Act::Succeed)
        .submit_with(&q, JobOptions::new().queue(&queue).delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    match pending.wait(Duration::from_millis(50)).await {
        Err(WaitError::TimedOut { status, .. }) => assert_eq!(status, JobStatus::Scheduled),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    match dead.wait(PATIENCE).await {
        Err(WaitError::Dead { attempts, error, .. }) => {
            assert_eq!(attempts, 1);
            assert!(error.contains("this input can never work"), "{error}");
        }
        other => panic!("expected dead, got {other:?}"),
    }
    pool.shutdown().await.unwrap();
    let unknown = JobHandle::<ProbeJob>::new(&q, JobId::new(&queue));
    assert!(matches!(unknown.wait(PATIENCE).await, Err(WaitError::NotFound(_))));
}

/// Many waits at once, on jobs that end in any order: each returns its own
/// job's value, once.
pub async fn many_waits_each_get_their_own_result<Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone>(q: Q) {
    let queue = unique_queue("waitmany");
    let mut handles = Vec::new();
    for seq in 0..200u64 {
        handles
            .push(probe_job(&queue, seq, Act::Succeed).submit_with(&q, JobOptions::new().queue(&queue)).await.unwrap());
    }
    let waits: Vec<_> = handles.iter().cloned().map(|h| tokio::spawn(async move { h.wait(PATIENCE).await })).collect();
    let pool = test_pool(q.clone(), &[&queue]).workers(8).start().unwrap();
    for (seq, w) in waits.into_iter().enumerate() {
        assert_eq!(w.await.unwrap().unwrap(), seq as u64);
    }
    pool.shutdown().await.unwrap();
    for h in &handles {
        wait_status(&q, h.id(), JobStatus::Succeeded).await;
    }
}

/// A job that expires is followed to its end: an `Expired` event (final,
/// attempt 0), and a wait on it ends with `WaitError::Expired`. A job
/// that snoozes is not ended by the snooze: its wait returns its result.
pub async fn expiry_and_snooze_end_waits_as_they_should<
    Q: JobQueue + QueueInspect + QueueAdmin + QueueEvents + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("waitexpiry");
    let mut stream = EventStream::open(&q, EventFilter::queue(&queue)).await.unwrap();
    let opts = || JobOptions::new().queue(&queue);
    let late =
        probe_job(&queue, 1, Act::Succeed).submit_with(&q, opts().expires_in(Duration::from_millis(30))).await.unwrap();
    let expires = q.job(late.id()).await.unwrap().unwrap().expires_at.expect("an expiry");
    crate::testing::eventually("the expiry passes", || async { q.now().await.unwrap() > expires }).await;
    let snoozy = probe_job(&queue, 2, Act::SnoozeFirstRunMs(20)).submit_with(&q, opts()).await.unwrap();
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    match late.wait(PATIENCE).await {
        Err(WaitError::Expired { id }) => assert_eq!(&id, late.id()),
        other => panic!("expected expired, got {other:?}"),
    }
    assert_eq!(snoozy.wait(PATIENCE).await.unwrap(), 2);
    pool.shutdown().await.unwrap();
    let e = loop {
        let e = next_of(&mut stream, late.id()).await;
        if e.kind != EventKind::Enqueued {
            break e;
        }
    };
    assert_eq!((e.kind, e.attempt, e.name.as_str()), (EventKind::Expired, 0, "conformance.probe"));
    assert!(e.kind.is_final());
}
