//! Jobs taken ahead of free workers (`WorkerPoolBuilder::prefetch`).

use std::collections::HashMap;

use crate::job::{JobExt, JobOptions};
use crate::queue::{Backend, JobQueue, PoolPresence, QueueAdmin, QueueInspect};
use crate::testing::harness::{eventually, probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::testing::Faulty;
use crate::vocab::JobStatus;

use super::{fetch_of, ms, probe_job, put, put1};

/// A pool takes jobs ahead of its busy workers (they are leased, and none
/// of them starts while no worker is free), then runs every job once with
/// never more running than it has workers.
pub async fn prefetched_jobs_wait_for_a_worker_and_run_once<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("ahead");
    let pool = test_pool(q.clone(), &[&queue]).workers(2).prefetch(3).start().unwrap();
    let p = probe(&queue);
    let first = put1(&q, &queue, 0, Act::SleepMs(400)).await;
    let second = put1(&q, &queue, 1, Act::SleepMs(400)).await;
    eventually("both workers busy", || async { p.start_count() == 2 }).await;
    let jobs = (2..40)
        .map(|i| probe_job(&queue, i, Act::SleepMs(5)).into_new_job(JobOptions::new().queue(&queue)).unwrap())
        .collect();
    q.enqueue_many(jobs).await.unwrap();
    // Three more are leased (taken ahead) while both workers are busy.
    eventually("three jobs taken ahead", || async { q.stats().await.unwrap().queue(&queue).running == 5 }).await;
    assert_eq!(p.start_count(), 2, "a job taken ahead started without a free worker");
    eventually("40 jobs ran", || async { q.stats().await.unwrap().queue(&queue).processed == 40 }).await;
    pool.shutdown().await.unwrap();
    assert_eq!(wait_status(&q, &first, JobStatus::Succeeded).await.attempts, 1);
    assert_eq!(wait_status(&q, &second, JobStatus::Succeeded).await.attempts, 1);
    let mut runs = HashMap::new();
    for s in p.starts() {
        *runs.entry(s.seq).or_insert(0) += 1;
    }
    assert_eq!(runs.len(), 40);
    assert!(runs.values().all(|n| *n == 1), "a job ran twice: {runs:?}");
    assert!(p.peak_running() <= 2, "{} jobs ran at once on 2 workers", p.peak_running());
}

/// A pool's presence counts the jobs it took ahead and that wait in it
/// for a worker, apart from the running ones; they drop out once they
/// start.
pub async fn jobs_taken_ahead_show_in_the_pools_presence<
    Q: JobQueue + QueueInspect + QueueAdmin + PoolPresence + Clone,
>(
    q: Q,
) {
    let queue = unique_queue("aheadshown");
    // Heartbeats every second; a job waits ahead up to 1.5 s before it is
    // handed back (and taken again).
    let pool = test_pool(q.clone(), &[&queue]).workers(1).prefetch(2).lease(ms(3000)).start().unwrap();
    let pool_id = pool.id().to_owned();
    let p = probe(&queue);
    let long = put1(&q, &queue, 0, Act::WaitForCancel).await;
    eventually("the worker is busy", || async { p.start_count() == 1 }).await;
    let ahead = [put1(&q, &queue, 1, Act::Succeed).await, put1(&q, &queue, 2, Act::Succeed).await];
    let w = crate::testing::eventually_some("the pool reports two jobs taken ahead", || async {
        q.pools().await.unwrap().into_iter().find(|w| w.id == pool_id && w.ahead == 2)
    })
    .await;
    assert_eq!((w.running, w.running_jobs.clone()), (1, vec![long.clone()]), "the waiting jobs are not running ones");
    q.cancel(&long).await.unwrap();
    for id in &ahead {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    crate::testing::eventually_some("the pool reports none ahead", || async {
        q.pools().await.unwrap().into_iter().find(|w| w.id == pool_id && w.ahead == 0)
    })
    .await;
    pool.shutdown().await.unwrap();
}

/// A job taken ahead that finds no free worker within half the lease goes
/// back to its queue (not an attempt, and before its lease expires):
/// another pool runs it while the first pool's only worker is still busy.
/// (With no crash budget, a job whose lease expired before it started
/// would end dead instead.)
pub async fn prefetched_job_goes_back_when_no_worker_frees<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("aheadback");
    let busy = test_pool(q.clone(), &[&queue]).workers(1).prefetch(1).lease(ms(600)).crash_budget(0).start().unwrap();
    let p = probe(&queue);
    let long = put1(&q, &queue, 0, Act::WaitForCancel).await;
    eventually("the worker is busy", || async { p.start_count() == 1 }).await;
    let waiting = put1(&q, &queue, 1, Act::Succeed).await;
    eventually("the job is taken ahead", || async { q.stats().await.unwrap().queue(&queue).running == 2 }).await;
    let free = test_pool(q.clone(), &[&queue]).workers(1).crash_budget(0).start().unwrap();
    let info = wait_status(&q, &waiting, JobStatus::Succeeded).await;
    assert_eq!(info.attempts, 1, "going back was counted as an attempt");
    let runs: Vec<u64> = p.starts().iter().map(|s| s.seq).collect();
    assert_eq!(runs, vec![0, 1], "each job started once");
    q.cancel(&long).await.unwrap();
    wait_status(&q, &long, JobStatus::Cancelled).await;
    busy.shutdown().await.unwrap();
    free.shutdown().await.unwrap();
}

/// Jobs taken ahead and handed back (no worker freed within half the
/// lease) keep their place in line: they go back together, at the front of
/// their queue in the order fetched, and the pool fetches nothing until the
/// backend has them back, however late that is. So jobs of one priority
/// still start in the order they were enqueued.
pub async fn jobs_handed_back_keep_their_place_in_line<Q: Backend + Clone>(q: Q) {
    let queue = unique_queue("aheadline");
    let slow = Faulty::new(q.clone());
    // Each hand-back lands 300 ms after it is sent. A job waits ahead up to
    // 3 s: time enough for both to be taken ahead on a loaded machine, and
    // both land well within their 6 s leases.
    slow.delay_releases(ms(300));
    let pool = test_pool(slow.clone(), &[&queue]).workers(1).prefetch(2).lease(ms(6_000)).start().unwrap();
    let p = probe(&queue);
    let long = put1(&q, &queue, 0, Act::WaitForCancel).await;
    eventually("the worker is busy", || async { p.start_count() == 1 }).await;
    put1(&q, &queue, 1, Act::Succeed).await;
    put1(&q, &queue, 2, Act::Succeed).await;
    eventually("two jobs taken ahead", || async { q.stats().await.unwrap().queue(&queue).running == 3 }).await;
    let last = put1(&q, &queue, 3, Act::Succeed).await;
    eventually("the jobs ahead are on their way back", || async { slow.releases_sent() >= 1 }).await;
    // The worker frees while they are on their way: the next fetch must
    // not take job 3 before them.
    q.cancel(&long).await.unwrap();
    wait_status(&q, &last, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let seqs: Vec<u64> = p.starts().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3], "jobs started out of line");
}

/// Shutting down hands the jobs taken ahead back at once (not an
/// attempt), while the running job finishes.
pub async fn shutdown_hands_back_jobs_taken_ahead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("aheadstop");
    let pool = test_pool(q.clone(), &[&queue]).workers(1).prefetch(2).start().unwrap();
    let p = probe(&queue);
    let running = put1(&q, &queue, 0, Act::SleepMs(300)).await;
    eventually("the worker is busy", || async { p.start_count() == 1 }).await;
    let ahead = [put1(&q, &queue, 1, Act::Succeed).await, put1(&q, &queue, 2, Act::Succeed).await];
    eventually("two jobs taken ahead", || async { q.stats().await.unwrap().queue(&queue).running == 3 }).await;
    pool.shutdown().await.unwrap();
    assert_eq!(q.job(&running).await.unwrap().unwrap().status, JobStatus::Succeeded);
    for id in &ahead {
        let info = q.job(id).await.unwrap().unwrap();
        assert_eq!((info.status, info.attempts), (JobStatus::Pending, 0), "{id}");
    }
    assert_eq!(p.start_count(), 1, "a job taken ahead started during shutdown");
}

/// A fetch says whether a queue it looked at serves groups in turn
/// (`Fetched::groups`): not for a queue that never held a grouped job, and
/// from its first grouped job on for one that did.
pub async fn fetch_reports_a_queue_that_serves_groups<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let plain = unique_queue("plainturns");
    put1(&q, &plain, 0, Act::Succeed).await;
    let got = q.fetch(&fetch_of(&plain, 10)).await.unwrap();
    assert_eq!((got.jobs.len(), got.groups), (1, false), "a queue without groups");
    let grouped = unique_queue("groupturns");
    put(&q, &grouped, 1, Act::Succeed, JobOptions::new().group("a")).await;
    let got = q.fetch(&fetch_of(&grouped, 10)).await.unwrap();
    assert_eq!((got.jobs.len(), got.groups), (1, true), "a queue with a grouped job");
    put1(&q, &grouped, 2, Act::Succeed).await;
    let got = q.fetch(&fetch_of(&grouped, 10)).await.unwrap();
    assert_eq!((got.jobs.len(), got.groups), (1, true), "its ungrouped jobs take turns too");
}

/// A pool whose places ahead follow its pace takes a queue with groups at
/// most one job per worker ahead: group `late`, enqueued while the pool
/// works through a backlog of group `big`, has its ten jobs start within
/// the pool's jobs on hand (its running ones and those ahead, at most
/// twice its workers) and the ten turns of `big` that alternate with
/// them.
pub async fn a_pool_takes_few_jobs_ahead_of_a_queue_with_groups<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    const WORKERS: usize = 8;
    let queue = unique_queue("aheadgroups");
    let jobs = |range: std::ops::Range<u64>, group: &str| -> Vec<_> {
        range
            .map(|i| {
                probe_job(&queue, i, Act::SleepMs(2))
                    .into_new_job(JobOptions::new().queue(&queue).group(group))
                    .unwrap()
            })
            .collect()
    };
    for chunk in 0..6 {
        q.enqueue_many(jobs(chunk * 1_000..(chunk + 1) * 1_000, "big")).await.unwrap();
    }
    let pool = test_pool(q.clone(), &[&queue]).workers(WORKERS).start().unwrap();
    let p = probe(&queue);
    // At full pace: past the pool's first samples of its rate of job ends.
    eventually("the pool at full pace", || async { p.start_count() >= 400 }).await;
    let late = q.enqueue_many(jobs(1_000_000..1_000_010, "late")).await.unwrap();
    let before = p.start_count();
    for id in &late {
        wait_status(&q, id, JobStatus::Succeeded).await;
    }
    pool.shutdown().await.unwrap();
    let starts = p.starts();
    let last = starts.iter().rposition(|s| s.seq >= 1_000_000).unwrap();
    let after = (last + 1).saturating_sub(before);
    println!("the last of late's jobs started {after} starts after its enqueue");
    // The jobs on hand (2 x 8), then late's ten turns and big's ten
    // between them, one more for the turn that was under way.
    assert!(
        after <= 2 * WORKERS + 21,
        "the last of late's jobs started {after} starts after its enqueue (over {})",
        2 * WORKERS + 21
    );
}
