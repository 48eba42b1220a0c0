//! Rules of MemoryQueue that the conformance suite cannot see from outside.

use super::*;
use crate::queue::{CancelResult, Outcome, QueueAdmin, QueueInspect, When};
use crate::queue::{FetchRequest, Finish};
use crate::vocab::Priority;

fn raw(queue: &str, run_at: Option<SystemTime>) -> NewJob {
    NewJob {
        id: JobId::new(queue),
        name: "x".into(),
        payload: b"{}".to_vec(),
        format: crate::payload::PayloadFormat::Json,
        priority: Priority::Normal,
        max_retries: Some(0),
        timeout: None,
        run_at: run_at.map(When::At),
        unique_for: None,
        caller_id: None,
        key: None,
        group: None,
        expires: None,
        enqueued_at: SystemTime::now(),
        headers: Default::default(),
    }
}

fn req(queue: &str, max: usize) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.into()],
        max,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
    }
}

async fn run_one(q: &MemoryQueue, outcome: Outcome) -> JobId {
    q.enqueue_many(vec![raw("r", None)]).await.unwrap();
    let job = q.fetch(&req("r", 1)).await.unwrap().jobs.remove(0);
    q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
    job.id
}

#[tokio::test]
async fn succeeded_jobs_are_dropped_after_retention() {
    let q = MemoryQueue::with_retention(Retention { succeeded: Duration::ZERO, ..Retention::default() });
    let id = run_one(&q, Outcome::Succeeded { result: Some(b"1".to_vec()) }).await;
    assert!(q.job(&id).await.unwrap().is_some(), "kept until the next sweep");
    q.fetch(&req("r", 1)).await.unwrap();
    assert!(q.job(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn dead_set_is_bounded_by_count_and_age() {
    let q = MemoryQueue::with_retention(Retention { dead_max: 2, ..Retention::default() });
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(run_one(&q, Outcome::Dead { error: "x".into() }).await);
    }
    let dead: Vec<_> = q.dead_jobs("r", 10).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(dead, vec![ids[2].clone(), ids[1].clone()]);
    assert!(q.job(&ids[0]).await.unwrap().is_none());

    let q = MemoryQueue::with_retention(Retention { dead_age: Duration::ZERO, ..Retention::default() });
    let id = run_one(&q, Outcome::Dead { error: "x".into() }).await;
    q.fetch(&req("r", 1)).await.unwrap();
    assert!(q.job(&id).await.unwrap().is_none());
}

/// A job of queue `r` deduplicated by its payload `{"n": n}`.
fn unique(n: u32) -> NewJob {
    NewJob {
        payload: format!("{{\"n\":{n}}}").into_bytes(),
        format: crate::payload::PayloadFormat::Json,
        unique_for: Some(Duration::from_secs(3600)),
        ..raw("r", None)
    }
}

/// Runs one job to `outcome`.
async fn run_job(q: &MemoryQueue, job: NewJob, outcome: Outcome) -> JobId {
    let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);
    let job = q.fetch(&req("r", 1)).await.unwrap().jobs.remove(0);
    assert_eq!(job.id, id);
    q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
    id
}

/// Finished jobs are bounded by count as well as by age: past
/// `succeeded_max` the oldest go, young as they are, with their
/// deduplication entries.
#[tokio::test]
async fn finished_jobs_are_bounded_by_count() {
    let q = MemoryQueue::with_retention(Retention { succeeded_max: 2, ..Retention::default() });
    let mut ids = Vec::new();
    for n in 0..4 {
        if n == 1 {
            let id = q.enqueue_many(vec![unique(n)]).await.unwrap().remove(0);
            assert_eq!(q.cancel(&id).await.unwrap(), CancelResult::Cancelled);
            ids.push(id);
        } else {
            ids.push(run_job(&q, unique(n), Outcome::Succeeded { result: Some(b"1".to_vec()) }).await);
        }
    }
    q.fetch(&req("r", 1)).await.unwrap();
    assert!(q.job(&ids[0]).await.unwrap().is_none(), "the oldest succeeded job is gone");
    assert!(q.job(&ids[1]).await.unwrap().is_none(), "the oldest cancelled job is gone");
    assert!(q.job(&ids[2]).await.unwrap().is_some());
    assert!(q.job(&ids[3]).await.unwrap().is_some());
    assert_eq!(q.list_jobs("r", JobStatus::Succeeded, 0, 10).await.unwrap().len(), 2);
    assert_eq!(q.lock().unique.len(), 2, "the dropped jobs' deduplication entries went with them");
    let again = q.enqueue_many(vec![unique(0)]).await.unwrap().remove(0);
    assert_ne!(again, ids[0], "the same payload is a new job");
}

/// Dead jobs dropped by the count bound, the age bound or a purge take
/// their deduplication entries with them.
#[tokio::test]
async fn dropped_dead_jobs_leave_no_dedup_entries() {
    let q = MemoryQueue::with_retention(Retention { dead_max: 2, ..Retention::default() });
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(run_job(&q, unique(n), Outcome::Dead { error: "x".into() }).await);
    }
    assert!(q.job(&ids[0]).await.unwrap().is_none());
    assert_eq!(q.lock().unique.len(), 2, "the trimmed job's entry is gone");
    assert_eq!(q.purge_dead("r").await.unwrap(), 2);
    assert!(q.lock().unique.is_empty());
    assert!(q.lock().jobs.is_empty());

    let q = MemoryQueue::with_retention(Retention { dead_age: Duration::ZERO, ..Retention::default() });
    run_job(&q, unique(0), Outcome::Dead { error: "x".into() }).await;
    q.fetch(&req("r", 1)).await.unwrap();
    assert!(q.lock().unique.is_empty() && q.lock().jobs.is_empty());
}

/// A backoff past every limit is clamped, never an overflow of the clock.
#[tokio::test]
async fn a_huge_backoff_does_not_overflow() {
    let q = MemoryQueue::new();
    let id = run_job(&q, raw("r", None), Outcome::Retry { error: "e".into(), at: When::In(Duration::MAX) }).await;
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!(info.status, JobStatus::Retrying);
    let due = info.run_at.unwrap().duration_since(q.clock()).unwrap();
    assert!(due > crate::queue::MAX_JOB_DURATION - Duration::from_secs(60), "{due:?}");
}

#[tokio::test]
async fn due_jobs_are_promoted_in_bounded_batches() {
    let q = MemoryQueue::new();
    let past = SystemTime::now() - Duration::from_secs(1);
    let jobs: Vec<_> = (0..2500).map(|_| raw("p", Some(past + Duration::from_secs(2)))).collect();
    q.enqueue_many(jobs).await.unwrap();
    assert_eq!(q.stats().await.unwrap().queue("p").scheduled, 2500);
    // Make them due without waiting: move every record's time back.
    {
        let mut st = q.lock();
        let qs = st.queues.get_mut("p").unwrap();
        let items: Vec<_> = std::mem::take(&mut qs.scheduled).into_iter().map(|(_, id)| (past, id)).collect();
        qs.scheduled.extend(items);
    }
    let got = q.fetch(&req("p", 1)).await.unwrap();
    assert_eq!(got.jobs.len(), 1);
    let c = q.stats().await.unwrap().queue("p");
    assert_eq!((c.pending, c.scheduled, c.running), (PROMOTE_BATCH as u64 - 1, 1500, 1));
}

#[tokio::test]
async fn a_waiter_armed_before_an_enqueue_wakes_at_once() {
    let q = MemoryQueue::new();
    let mut w = q.waiter(&["a".into()]).unwrap();
    w.arm();
    q.enqueue_many(vec![raw("a", None)]).await.unwrap();
    // Would block for an hour if the wake-up were lost.
    tokio::time::timeout(Duration::from_secs(5), w.wait(Duration::from_secs(3600))).await.expect("woken").unwrap();
}

/// The store's clock decides, not the host's wall clock: on a store whose
/// clock reads 10 minutes ahead of the host (as after the host's clock was
/// set back), a delay and a backoff still count from the store's now, a
/// lease still lasts its length, and `next_due` is a duration on that clock.
#[tokio::test]
async fn delays_and_leases_run_on_the_store_clock() {
    let q = MemoryQueue::with_clock(Retention::default(), SystemTime::now() + Duration::from_secs(600));
    let delay = Duration::from_millis(300);
    let mut job = raw("c", None);
    job.run_at = Some(When::In(delay));
    let enqueued = Instant::now();
    q.enqueue_many(vec![job]).await.unwrap();
    let first = q.fetch(&req("c", 1)).await.unwrap();
    assert!(first.jobs.is_empty(), "not due before its delay");
    assert!(first.next_due.is_some_and(|d| d <= delay), "{:?}", first.next_due);
    let job = loop {
        if let Some(j) = q.fetch(&req("c", 1)).await.unwrap().jobs.pop() {
            break j;
        }
        assert!(enqueued.elapsed() < Duration::from_secs(10), "the delayed job never became due");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(enqueued.elapsed() >= delay, "due after {:?}, before its delay", enqueued.elapsed());
    // Its 30 s lease is not expired by any other fetch.
    assert!(q.fetch(&req("c", 1)).await.unwrap().jobs.is_empty(), "the live lease was not taken");
    let retried = Instant::now();
    let out = Finish {
        id: job.id.clone(),
        token: job.token,
        outcome: Outcome::Retry { error: "e".into(), at: When::In(delay) },
    };
    q.finish(vec![out]).await.unwrap();
    let info = q.job(&job.id).await.unwrap().unwrap();
    let due = info.run_at.unwrap().duration_since(q.clock()).unwrap_or_default();
    assert!(due > Duration::from_millis(200) && due <= delay, "retry due in {due:?} on the store's clock");
    let again = loop {
        if let Some(j) = q.fetch(&req("c", 1)).await.unwrap().jobs.pop() {
            break j;
        }
        assert!(retried.elapsed() < Duration::from_secs(10), "the retry never became due");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(retried.elapsed() >= delay);
    assert_eq!(again.attempt, 2);
    assert!(q.now().await.unwrap() > SystemTime::now() + Duration::from_secs(590), "now() is the store's clock");
}

/// The event history keeps the newest `event_history` events; a reader
/// behind them is told it missed some, and gets what is left.
#[tokio::test]
async fn event_history_is_bounded_and_a_gap_is_reported() {
    use crate::events::{EventFilter, EventKind};
    use crate::follow::EventStream;
    use crate::queue::QueueEvents;
    let q = MemoryQueue::new();
    q.set_event_history(5);
    let l = q.listen("ev", Duration::from_secs(60)).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.extend(q.enqueue_many(vec![raw("ev", None)]).await.unwrap());
    }
    let page = q.read_events("ev", &l.cursor, 100).await.unwrap();
    assert!(page.missed);
    let got: Vec<_> = page.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[3..].to_vec());
    // A cursor inside the history misses nothing.
    let page = q.read_events("ev", &page.events[0].cursor, 100).await.unwrap();
    assert!(!page.missed);
    assert_eq!(page.events.len(), 4);
    // A stream resumed from before the history says so first, then goes on.
    let mut s = EventStream::resume(&q, EventFilter::queue("ev"), l.cursor).await.unwrap();
    assert!(matches!(s.next().await, Some(Err(Error::EventsMissed { .. }))));
    let e = s.next().await.unwrap().unwrap();
    assert_eq!((e.kind, &e.job), (EventKind::Enqueued, &ids[3]));
}

/// Recording stops when the last listener's time runs out.
#[tokio::test]
async fn events_stop_when_listening_lapses() {
    use crate::events::EventCursor;
    use crate::queue::QueueEvents;
    let q = MemoryQueue::new();
    let l = q.listen("lapse", Duration::from_millis(1)).await.unwrap();
    // The listen's time is a real instant: wait until it has passed.
    let until = std::time::Instant::now() + Duration::from_millis(1);
    while std::time::Instant::now() <= until {
        tokio::task::yield_now().await;
    }
    q.enqueue_many(vec![raw("lapse", None)]).await.unwrap();
    assert!(q.read_events("lapse", &EventCursor::start(), 10).await.unwrap().events.is_empty());
    assert!(!q.listen("lapse", Duration::from_secs(60)).await.unwrap().was_on);
    let _ = l;
}
