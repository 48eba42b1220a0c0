//! Rules of MemoryQueue that the conformance suite cannot see from outside.

use super::*;
use crate::queue::Outcome;
use crate::queue::{FetchRequest, Finish};

fn raw(queue: &str, run_at: Option<SystemTime>) -> NewJob {
    NewJob {
        id: JobId::new(queue),
        name: "x".into(),
        payload: b"{}".to_vec(),
        priority: Priority::Normal,
        max_retries: Some(0),
        timeout: None,
        run_at,
        unique_for: None,
        enqueued_at: SystemTime::now(),
        headers: Default::default(),
    }
}

fn req(queue: &str, max: usize) -> FetchRequest {
    FetchRequest { queues: vec![queue.into()], max, lease: Duration::from_secs(30), default_max_retries: 3 }
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
