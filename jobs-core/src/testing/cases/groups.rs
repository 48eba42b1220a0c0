//! Groups (`#[job(group = .., concurrency = ..)]`, `JobOptions::group`):
//! limits per group across pools, and groups served in turn.

use crate::job::{JobExt, JobOptions};
use crate::queue::{GroupInfo, JobQueue, QueueAdmin, QueueInspect};
use crate::testing::harness::{probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::{Act, GroupedJob, LimitedJob, RatedJob};
use crate::vocab::{JobId, JobStatus};

use super::{put, run_in_two_pools};

pub(super) async fn grouped<Q: JobQueue + ?Sized>(q: &Q, queue: &str, group: &str, seq: u64, sleep_ms: u64) -> JobId {
    let job = GroupedJob { key: queue.to_owned(), group: group.to_owned(), seq, sleep_ms };
    job.enqueue_with(q, JobOptions::new().queue(queue)).await.expect("enqueue works")
}

/// `concurrency = 2` holds for each group across two pools of four
/// workers, and is reached; other groups run beside it; the job shows its
/// group.
pub async fn group_concurrency_holds_across_pools<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("groups");
    let mut ids = Vec::new();
    for seq in 0..24 {
        let group = ["a", "b", "c"][seq as usize % 3];
        ids.push(grouped(&q, &queue, group, seq, 40).await);
    }
    assert_eq!(q.job(&ids[0]).await.unwrap().unwrap().group.as_deref(), Some("a"));
    run_in_two_pools(&q, &queue, &ids).await;
    assert_eq!(probe(&queue).start_count(), 24, "each job ran once");
    for g in ["a", "b", "c"] {
        let p = probe(&format!("{queue}/{g}"));
        assert_eq!(p.peak_running(), 2, "group {g}: at most its concurrency at once, and reached");
    }
    assert!(probe(&queue).peak_running() > 2, "groups run beside each other");
}

/// A group with a backlog does not hold up another: with one worker, a
/// group enqueued after 40 jobs of another has its jobs start in turn
/// with the first group's, not after them; ungrouped jobs take turns too.
pub async fn groups_take_turns<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("turns");
    for seq in 0..40 {
        grouped(&q, &queue, "big", seq, 0).await;
    }
    let mut late = Vec::new();
    for seq in 100..103 {
        late.push(grouped(&q, &queue, "small", seq, 0).await);
    }
    let plain = put(&q, &queue, 200, Act::Succeed, JobOptions::new()).await;
    let pool = test_pool(q.clone(), &[&queue]).workers(1).start().unwrap();
    for id in late.iter().chain([&plain]) {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    pool.shutdown().await.unwrap();
    let order: Vec<u64> = probe(&queue).starts().iter().map(|s| s.seq).collect();
    let at = |seq: u64| order.iter().position(|&s| s == seq).unwrap_or(usize::MAX);
    // Three members take turns (big, ungrouped, small; in the order they
    // arrived): each late job starts within three starts of the one before.
    assert!(at(100) < 3 && at(101) < 6 && at(102) < 9, "the small group waited behind the big one: {order:?}");
    assert!(at(200) < 3, "the ungrouped job waited behind the groups: {order:?}");
}

/// Grouped pending jobs count as pending (stats, `max_jobs`), can be
/// cancelled out of their group's line, and a job of a group that took
/// its slot and was handed back runs later.
pub async fn grouped_jobs_are_counted_and_cancelled<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("gcount");
    let a = grouped(&q, &queue, "x", 1, 0).await;
    let b = grouped(&q, &queue, "x", 2, 0).await;
    let c = grouped(&q, &queue, "y", 3, 0).await;
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 3);
    let busiest = |x: u64, y: u64| {
        let g =
            |key: &str, pending| GroupInfo { key: key.into(), pending, running: 0, concurrency: Some(2), rate: None };
        vec![g("x", x), g("y", y)]
    };
    assert_eq!(q.groups(&queue, 10).await.unwrap(), busiest(2, 1), "the busiest group first");
    assert_eq!(q.groups(&queue, 1).await.unwrap(), busiest(2, 1)[..1].to_vec(), "bounded by the limit");
    let listed = |from, n| {
        let q = q.clone();
        let queue = queue.clone();
        async move {
            let page = q.list_jobs(&queue, JobStatus::Pending, from, n).await.unwrap();
            page.into_iter().map(|j| j.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(0, 10).await, vec![a.clone(), b.clone(), c.clone()], "busiest group first, in line");
    assert_eq!(listed(2, 10).await, vec![c.clone()], "a page past the first group");
    assert_eq!(q.cancel(&b).await.unwrap(), crate::queue::CancelResult::Cancelled);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 2);
    let mut tied = busiest(1, 1);
    tied.reverse();
    assert_eq!(q.groups(&queue, 10).await.unwrap(), tied, "ties: the greater key first");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &a, JobStatus::Succeeded).await;
    wait_status(&q, &c, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let mut seqs: Vec<u64> = probe(&queue).starts().iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 3], "the cancelled job never ran");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 0);
    assert_eq!(q.groups(&queue, 10).await.unwrap(), vec![], "nothing pending: no group listed");
}

/// Grouped pending jobs count for the queue's `max_jobs`, as ungrouped
/// ones do.
pub async fn grouped_pending_jobs_count_for_max_jobs<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("gfull");
    grouped(&q, &queue, "x", 1, 0).await;
    grouped(&q, &queue, "y", 2, 0).await;
    let policy = crate::queue::QueuePolicy { max_jobs: Some(2), ..Default::default() };
    q.set_policy(&queue, policy).await.unwrap();
    let full = GroupedJob { key: queue.clone(), group: "z".into(), seq: 3, sleep_ms: 0 }
        .enqueue_with(&q, JobOptions::new().queue(&queue))
        .await;
    assert!(matches!(full, Err(crate::Error::QueueFull { .. })), "grouped pending jobs count for max_jobs: {full:?}");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 2, "the refused job is not stored");
}

/// The busiest groups are listed by the jobs they still have pending,
/// after jobs left their lines: a group whose jobs were cancelled or
/// started falls behind one that kept its jobs, and one left with none is
/// not listed.
pub async fn groups_are_listed_by_what_is_still_pending<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("glist");
    let mut a = Vec::new();
    for seq in 0..4 {
        a.push(grouped(&q, &queue, "a", seq, 0).await);
    }
    let mut b = Vec::new();
    for seq in 10..12 {
        b.push(grouped(&q, &queue, "b", seq, 0).await);
    }
    let c = grouped(&q, &queue, "c", 20, 0).await;
    let g = |key: &str, pending| GroupInfo { key: key.into(), pending, running: 0, concurrency: Some(2), rate: None };
    assert_eq!(q.groups(&queue, 10).await.unwrap(), vec![g("a", 4), g("b", 2), g("c", 1)], "as enqueued");
    for id in &a[1..] {
        assert_eq!(q.cancel(id).await.unwrap(), crate::queue::CancelResult::Cancelled);
    }
    assert_eq!(q.cancel(&c).await.unwrap(), crate::queue::CancelResult::Cancelled);
    assert_eq!(q.groups(&queue, 1).await.unwrap(), vec![g("b", 2)], "the group that kept its jobs first");
    assert_eq!(q.groups(&queue, 10).await.unwrap(), vec![g("b", 2), g("a", 1)], "a group with none is not listed");
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    for id in b.iter().chain(&a[..1]) {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    pool.shutdown().await.unwrap();
    assert_eq!(q.groups(&queue, 10).await.unwrap(), vec![], "every job ran: no group listed");
}

/// The most starts within any window of length `per`, from the backend's
/// own start times of each job's first attempt.
async fn most_in_a_window<Q: QueueInspect + ?Sized>(q: &Q, ids: &[JobId], per: std::time::Duration) -> usize {
    let mut times = Vec::new();
    for id in ids {
        let info = q.job(id).await.unwrap().unwrap();
        times.push(info.attempt_log.first().expect("it ran").started_at);
    }
    times.sort();
    (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t < times[i] + per).count()).max().unwrap_or(0)
}

/// `rate = "5/300ms"` on a group: across two pools, no window of 300 ms
/// (by the backend's start times) holds more than 5 starts of the group,
/// and the limit is reached; another group has its own budget.
pub async fn group_rate_holds_in_every_window<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("grouprate");
    let per = std::time::Duration::from_millis(300);
    let mut by_group: Vec<Vec<JobId>> = vec![Vec::new(), Vec::new()];
    for seq in 0..24 {
        let group = ["a", "b"][seq as usize % 2];
        let job = RatedJob { key: queue.clone(), group: group.into(), seq };
        by_group[seq as usize % 2].push(job.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap());
    }
    let info = q.groups(&queue, 10).await.unwrap();
    assert_eq!(info[0].rate.map(|r| (r.limit, r.per)), Some((5, per)), "the group shows its rate");
    run_in_two_pools(&q, &queue, &by_group.concat()).await;
    for ids in &by_group {
        assert_eq!(most_in_a_window(&q, ids, per).await, 5, "at most the rate in any window, and reached");
    }
    assert!(most_in_a_window(&q, &by_group.concat(), per).await > 5, "each group has its own budget");
}

/// A queue's `rate` holds across two pools: no window holds more than its
/// starts.
pub async fn queue_rate_holds_in_every_window<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("queuerate");
    let rate: crate::queue::Rate = "4/300ms".parse().unwrap();
    let policy = crate::queue::QueuePolicy { rate: Some(rate), ..Default::default() };
    q.set_policy(&queue, policy.clone()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), policy);
    let mut ids = Vec::new();
    for seq in 0..12 {
        ids.push(put(&q, &queue, seq, Act::Succeed, JobOptions::new()).await);
    }
    run_in_two_pools(&q, &queue, &ids).await;
    assert_eq!(most_in_a_window(&q, &ids, rate.per).await, 4, "at most the rate in any window, and reached");
}

/// `JobError::rate_limited(d)`: the job snoozes (no attempt spent, logged
/// with the reason) and its whole group waits: a job of the group enqueued
/// meanwhile starts no earlier than the end of the wait (by the backend's
/// clock), while another group's job runs at once.
pub async fn rate_limited_holds_the_group<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("limited");
    let job = |group: &str, seq, retry_ms| LimitedJob { key: queue.clone(), group: group.into(), seq, retry_ms };
    let opts = || JobOptions::new().queue(&queue);
    let first = job("x", 0, 400).enqueue_with(&q, opts()).await.unwrap();
    let pool = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    let held = wait_status(&q, &first, JobStatus::Scheduled).await;
    let same = job("x", 1, 0).enqueue_with(&q, opts()).await.unwrap();
    let other = job("y", 2, 0).enqueue_with(&q, opts()).await.unwrap();
    let other_info = wait_status(&q, &other, JobStatus::Succeeded).await;
    let same_info = wait_status(&q, &same, JobStatus::Succeeded).await;
    let first_info = wait_status(&q, &first, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let snooze = &held.attempt_log[0];
    assert!(snooze.error.as_deref().is_some_and(|e| e.starts_with("rate limited")), "{snooze:?}");
    let until = snooze.finished_at.unwrap() + snooze.snoozed_for.expect("a snooze");
    let started = |info: &crate::queue::JobInfo| info.attempt_log.last().unwrap().started_at;
    assert!(started(&same_info) >= until, "a job of the held group started before the wait ended");
    assert!(started(&other_info) < until, "another group's job waited too");
    assert_eq!(first_info.attempts, 1, "no attempt spent");
    let counts = q.stats().await.unwrap().queues.get(&queue).cloned().unwrap_or_default();
    assert_eq!(counts.throttled, 1, "the upstream's limit is counted once");
}

/// The queue's `group_concurrency` overrides the jobs' own bound (2), and
/// a change applies to jobs already waiting: at 1, no two jobs of a group
/// run at once across two pools; raised to 3 while a backlog waits, three
/// run at once; the busiest groups show the bound in force.
pub async fn queue_group_bounds_override_the_jobs<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("gover");
    let one = crate::queue::QueuePolicy { group_concurrency: Some(1), ..Default::default() };
    q.set_policy(&queue, one.clone()).await.unwrap();
    assert_eq!(q.policy(&queue).await.unwrap(), one);
    let mut ids = Vec::new();
    for seq in 0..6 {
        ids.push(grouped(&q, &queue, "a", seq, 30).await);
    }
    assert_eq!(q.groups(&queue, 1).await.unwrap()[0].concurrency, Some(1), "the queue's bound is shown");
    run_in_two_pools(&q, &queue, &ids).await;
    assert_eq!(probe(&format!("{queue}/a")).peak_running(), 1, "one at a time under the queue's bound");

    let mut ids = Vec::new();
    for seq in 10..22 {
        ids.push(grouped(&q, &queue, "b", seq, 40).await);
    }
    let a = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    let b = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    wait_status(&q, &ids[0], JobStatus::Succeeded).await;
    assert_eq!(probe(&format!("{queue}/b")).peak_running(), 1, "still one at a time before the change");
    let three = crate::queue::QueuePolicy { group_concurrency: Some(3), ..Default::default() };
    q.set_policy(&queue, three).await.unwrap();
    for id in &ids {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(probe(&format!("{queue}/b")).peak_running(), 3, "the raised bound applies to the waiting jobs");

    let zero = crate::queue::QueuePolicy { group_concurrency: Some(0), ..Default::default() };
    assert!(matches!(q.set_policy(&queue, zero).await, Err(crate::Error::InvalidArgument(_))));
}

/// Within a group, the most urgent job goes first whatever the order of
/// arrival, and a group whose urgent jobs are gone serves its less urgent
/// ones (and ones that arrive later at any priority) in order.
pub async fn priorities_are_strict_within_a_group<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    use crate::vocab::Priority;
    let queue = unique_queue("gprio");
    // Room for every job of the group at once: the leases are held.
    let wide = crate::queue::QueuePolicy { group_concurrency: Some(10), ..Default::default() };
    q.set_policy(&queue, wide).await.unwrap();
    let put = |seq: u64, p: Priority| {
        let q = q.clone();
        let job = GroupedJob { key: queue.clone(), group: "a".into(), seq, sleep_ms: 0 };
        let opts = JobOptions::new().queue(&queue).priority(p);
        async move { job.enqueue_with(&q, opts).await.unwrap() }
    };
    let low = put(1, Priority::Low).await;
    let high = put(2, Priority::High).await;
    let req = super::fetch_of(&queue, 1);
    let mut order = Vec::new();
    order.push(q.fetch(&req).await.unwrap().jobs.remove(0).id);
    let critical = put(3, Priority::Critical).await;
    let normal = put(4, Priority::Normal).await;
    for _ in 0..3 {
        order.push(q.fetch(&req).await.unwrap().jobs.remove(0).id);
    }
    assert_eq!(order, vec![high, critical, normal, low], "most urgent first within the group");
    assert!(q.fetch(&req).await.unwrap().jobs.is_empty());
}
