//! Circuit breakers (`QueuePolicy::breaker`): failures open it, a probe
//! closes it, an operator opens and closes it by hand.

use std::time::Duration;

use crate::queue::{
    BreakerAction, BreakerState, FetchRequest, Finish, JobQueue, LeasedJob, Outcome, QueueAdmin, QueueInspect,
    QueuePolicy, When,
};
use crate::testing::harness::{eventually_some, unique_queue};
use crate::testing::jobs::Act;
use crate::vocab::JobId;

use super::groups::grouped;
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

/// With a breaker open for a moment and two jobs of it waiting: a probe
/// leased for 150 ms whose pool never ends it, then the next probe once
/// that lease lapsed (one probe at a time meanwhile), which is returned.
async fn probe_after_a_lost_one<Q: JobQueue>(q: &Q, queue: &str) -> LeasedJob {
    let short = FetchRequest { lease: Duration::from_millis(150), ..super::fetch_of(queue, 4) };
    let lost = eventually_some("a probe", || async { q.fetch(&short).await.unwrap().jobs.pop() }).await;
    eventually_some("the next probe", || async {
        let got = q.fetch(&short).await.unwrap().jobs;
        assert!(got.len() <= 1, "one probe at a time: {got:?}");
        got.into_iter().find(|j| j.id != lost.id || j.token != lost.token)
    })
    .await
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
    let next = probe_after_a_lost_one(&q, &queue).await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(&info.state, BreakerState::Probing { job, .. } if *job == next.id), "{info:?}");

    let bad = QueuePolicy { breaker: Some(crate::queue::Breaker { failures: 0, ..policy.breaker.unwrap() }), ..policy };
    assert!(matches!(q.set_policy(&queue, bad).await, Err(crate::Error::InvalidArgument(_))));
}

/// Group breakers (`QueuePolicy::group_breaker`): two failures of group
/// `a` open `a`'s breaker while `b` runs on; after the cool-down one probe
/// of `a` starts and no other job of `a` beside it (its concurrency is 2);
/// a failed probe reopens it, a successful one closes it and `a` runs two
/// at once again. By hand: opened, only `b` starts; closed, `a` does. A
/// probe whose lease lapsed is followed by another.
pub async fn group_breakers_stop_only_their_group<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("gbreaker");
    let policy = QueuePolicy { group_breaker: Some("2/1m:200ms".parse().unwrap()), ..Default::default() };
    q.set_policy(&queue, policy.clone()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), policy);
    let mut a = Vec::new();
    for seq in 0..6 {
        a.push(grouped(&q, &queue, "a", seq, 0).await);
    }
    let mut b = Vec::new();
    for seq in 10..13 {
        b.push(grouped(&q, &queue, "b", seq, 0).await);
    }
    let of = |ids: &[JobId], jobs: &[LeasedJob]| jobs.iter().filter(|j| ids.contains(&j.id)).count();
    let req = |max| super::fetch_of(&queue, max);

    // Turns: a, b, a, b (each group runs two at once).
    let first = q.fetch(&req(4)).await.unwrap().jobs;
    assert_eq!((of(&a, &first), of(&b, &first)), (2, 2), "{first:?}");
    for j in &first {
        finish(&q, j, !a.contains(&j.id)).await;
    }
    let info = q.breaker(&queue).await.unwrap();
    assert_eq!(info.state, BreakerState::Closed, "the queue's own breaker is not touched");
    assert_eq!((info.groups_open, info.groups_opened, info.groups.len()), (1, 1, 1), "{info:?}");
    assert_eq!(info.groups[0].group, "a");
    assert!(matches!(info.groups[0].state, BreakerState::Open { .. }), "{info:?}");
    let counts = q.stats().await.unwrap().queues.get(&queue).cloned().unwrap_or_default();
    assert_eq!((counts.group_breakers_open, counts.group_breakers_opened), (1, 1), "the stats show it");
    let held = q.fetch(&req(4)).await.unwrap();
    assert_eq!((of(&a, &held.jobs), of(&b, &held.jobs)), (0, 1), "b runs on, a waits: {held:?}");
    assert!(held.next_due.is_some_and(|d| d <= Duration::from_millis(200)), "{:?}", held.next_due);
    finish(&q, &held.jobs[0], true).await;

    // The cool-down ends: one probe of `a`, nothing of `a` beside it.
    let probe = eventually_some("the first probe", || async {
        let mut got = q.fetch(&req(4)).await.unwrap().jobs;
        assert!(got.len() <= 1, "one probe at a time: {got:?}");
        got.pop()
    })
    .await;
    assert!(a.contains(&probe.id));
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(&info.groups[0].state, BreakerState::Probing { job, .. } if *job == probe.id), "{info:?}");
    assert!(q.fetch(&req(4)).await.unwrap().jobs.is_empty(), "nothing of the group starts beside its probe");
    finish(&q, &probe, false).await;
    let info = q.breaker(&queue).await.unwrap();
    assert!(matches!(info.groups[0].state, BreakerState::Open { .. }), "a failed probe reopens it: {info:?}");
    assert_eq!(info.groups_opened, 2);

    let probe = eventually_some("the second probe", || async { q.fetch(&req(4)).await.unwrap().jobs.pop() }).await;
    finish(&q, &probe, true).await;
    let info = q.breaker(&queue).await.unwrap();
    assert_eq!((info.groups_open, info.groups_opened, info.groups.len()), (0, 2, 0), "the probe closed it: {info:?}");
    let rest = q.fetch(&req(4)).await.unwrap().jobs;
    assert_eq!(of(&a, &rest), 2, "closed: the group runs two at once again: {rest:?}");
    for j in &rest {
        finish(&q, j, true).await;
    }

    q.set_group_breaker(&queue, "a", BreakerAction::Open(Duration::from_secs(3600))).await.unwrap();
    let late_a = grouped(&q, &queue, "a", 20, 0).await;
    let late_b = grouped(&q, &queue, "b", 21, 0).await;
    let got = q.fetch(&req(4)).await.unwrap().jobs;
    assert_eq!(got.iter().map(|j| &j.id).collect::<Vec<_>>(), vec![&late_b], "opened by hand: only b starts");
    assert_eq!(q.breaker(&queue).await.unwrap().groups_opened, 3);
    q.set_group_breaker(&queue, "a", BreakerAction::Close).await.unwrap();
    let got = q.fetch(&req(4)).await.unwrap().jobs;
    assert_eq!(got.iter().map(|j| &j.id).collect::<Vec<_>>(), vec![&late_a], "closed by hand");

    // A probe whose pool died: once its lease lapses, another probe starts.
    grouped(&q, &queue, "c", 30, 0).await;
    grouped(&q, &queue, "c", 31, 0).await;
    q.set_group_breaker(&queue, "c", BreakerAction::Open(Duration::from_millis(1))).await.unwrap();
    let next = probe_after_a_lost_one(&q, &queue).await;
    let info = q.breaker(&queue).await.unwrap();
    let c = info.groups.iter().find(|g| g.group == "c").expect("c's breaker listed");
    assert!(matches!(&c.state, BreakerState::Probing { job, .. } if *job == next.id), "{info:?}");

    let bad = QueuePolicy {
        group_breaker: Some(crate::queue::Breaker { failures: 0, ..policy.group_breaker.unwrap() }),
        ..policy
    };
    assert!(matches!(q.set_policy(&queue, bad).await, Err(crate::Error::InvalidArgument(_))));
    let open = BreakerAction::Open(Duration::from_secs(1));
    assert!(matches!(q.set_group_breaker(&queue, "", open).await, Err(crate::Error::InvalidArgument(_))));
}
