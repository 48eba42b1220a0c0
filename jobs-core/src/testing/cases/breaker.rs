//! Circuit breakers (`QueuePolicy::breaker`): failures open it, a probe
//! closes it, an operator opens and closes it by hand.

use std::time::Duration;

use crate::queue::{
    BreakerAction, BreakerState, FetchRequest, Finish, JobQueue, LeasedJob, Outcome, QueueAdmin, QueueInspect,
    QueuePolicy, When,
};
use crate::testing::harness::{eventually_some, unique_queue};
use crate::testing::jobs::Act;

use super::put1;

fn outcome(ok: bool) -> Outcome {
    if ok {
        Outcome::Succeeded { result: None }
    } else {
        Outcome::Retry { error: "upstream down".into(), at: When::In(Duration::from_secs(3600)) }
    }
}

async fn finish<Q: JobQueue>(q: &Q, job: &LeasedJob, ok: bool) {
    q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome: outcome(ok) }]).await.unwrap();
}

/// Two failures within the window open the breaker: no job starts, on any
/// fetch, and the fetch says when to look again; after the cool-down one
/// probe starts and no other until it ends; a failed probe opens it again,
/// a successful one closes it and the queue runs as before. By hand:
/// opened for an hour nothing starts, closed everything does.
pub async fn breaker_opens_probes_and_closes<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("breaker");
    let policy = QueuePolicy { breaker: Some("2/1m:200ms".parse().unwrap()), ..Default::default() };
    q.set_policy(&queue, policy.clone()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), policy);
    for seq in 0..6 {
        put1(&q, &queue, seq, Act::Succeed).await;
    }
    let req = |max| super::fetch_of(&queue, max);

    let first = q.fetch(&req(2)).await.unwrap().jobs;
    assert_eq!(first.len(), 2);
    finish(&q, &first[0], false).await;
    let info = q.breaker(&queue).await.unwrap();
    assert_eq!((info.state.clone(), info.recent_failures), (BreakerState::Closed, 1), "one failure counted");
    finish(&q, &first[1], false).await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(info.state, BreakerState::Open { .. }), "{info:?}");
    assert_eq!(info.opened, 1);
    let counts = q.stats().await.unwrap().queues.get(&queue).cloned().unwrap_or_default();
    assert_eq!((counts.breaker_open, counts.breaker_opened), (true, 1), "the stats show it");
    let held = q.fetch(&req(4)).await.unwrap();
    assert!(held.jobs.is_empty(), "an open breaker starts nothing");
    assert!(held.next_due.is_some_and(|d| d <= Duration::from_millis(200)), "{:?}", held.next_due);

    // The cool-down ends: one probe, and nothing beside it.
    let probe = eventually_some("the first probe", || async {
        let mut got = q.fetch(&req(4)).await.unwrap().jobs;
        assert!(got.len() <= 1, "one probe at a time: {got:?}");
        got.pop()
    })
    .await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(&info.state, BreakerState::Probing { job, .. } if *job == probe.id), "{info:?}");
    assert!(q.fetch(&req(4)).await.unwrap().jobs.is_empty(), "nothing starts beside the probe");
    finish(&q, &probe, false).await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(info.state, BreakerState::Open { .. }), "a failed probe opens it again: {info:?}");
    assert_eq!(info.opened, 2);

    let probe = eventually_some("the second probe", || async { q.fetch(&req(4)).await.unwrap().jobs.pop() }).await;
    finish(&q, &probe, true).await;
    let info = q.breaker(&queue).await.unwrap();
    assert_eq!((info.state, info.recent_failures, info.opened), (BreakerState::Closed, 0, 2), "the probe closed it");
    assert!(!q.stats().await.unwrap().queues.get(&queue).cloned().unwrap_or_default().breaker_open);
    let rest = q.fetch(&req(4)).await.unwrap().jobs;
    assert_eq!(rest.len(), 2, "closed: the queue runs as before");

    q.set_breaker(&queue, BreakerAction::Open(Duration::from_secs(3600))).await.unwrap();
    put1(&q, &queue, 10, Act::Succeed).await;
    assert!(q.fetch(&req(4)).await.unwrap().jobs.is_empty(), "opened by hand");
    assert_eq!(q.breaker(&queue).await.unwrap().opened, 3);
    q.set_breaker(&queue, BreakerAction::Close).await.unwrap();
    assert_eq!(q.fetch(&req(4)).await.unwrap().jobs.len(), 1, "closed by hand");

    // A probe whose pool died: once its lease lapses, another probe starts.
    put1(&q, &queue, 11, Act::Succeed).await;
    put1(&q, &queue, 12, Act::Succeed).await;
    q.set_breaker(&queue, BreakerAction::Open(Duration::from_millis(1))).await.unwrap();
    let short = FetchRequest { lease: Duration::from_millis(150), ..req(4) };
    let lost = eventually_some("a probe", || async { q.fetch(&short).await.unwrap().jobs.pop() }).await;
    let next = eventually_some("the next probe", || async {
        let got = q.fetch(&short).await.unwrap().jobs;
        assert!(got.len() <= 1, "one probe at a time: {got:?}");
        got.into_iter().find(|j| j.id != lost.id || j.token != lost.token)
    })
    .await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(&info.state, BreakerState::Probing { job, .. } if *job == next.id), "{info:?}");

    let bad = QueuePolicy { breaker: Some(crate::queue::Breaker { failures: 0, ..policy.breaker.unwrap() }), ..policy };
    assert!(matches!(q.set_policy(&queue, bad).await, Err(crate::Error::InvalidArgument(_))));
}
