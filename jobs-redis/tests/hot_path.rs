//! The hot path's own layout (see `src/scripts/common.lua`): leases granted
//! per fetch call, ready-list entries of jobs that have a state field, and
//! the `done` list. The conformance suite covers the semantics; these cases
//! cover what that layout adds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use jobs_core::backend::{FetchRequest, Finish, FinishResult, LeaseState, Outcome};
use jobs_core::testing::unique_queue;
use jobs_core::{CancelResult, JobId, JobQueue, JobStatus, NewJob, QueueAdmin, QueueInspect};
use jobs_redis::testing::shared_server_url;
use jobs_redis::RedisQueue;

fn run<F: std::future::Future<Output = ()>>(f: F) {
    jobs_core::testing::run(f)
}

fn raw(queue: &str) -> NewJob {
    NewJob { max_retries: Some(3), ..NewJob::new(JobId::new(queue), "x", b"{}".to_vec()) }
}

fn req(queue: &str, max: usize, lease: Duration) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.into()],
        max,
        lease,
        default_max_retries: 3,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    }
}

fn ok(id: &JobId, token: u64) -> Finish {
    Finish { id: id.clone(), token, outcome: Outcome::Succeeded { result: None } }
}

async fn queue() -> (RedisQueue, String) {
    (RedisQueue::connect(&shared_server_url()).await.unwrap(), unique_queue("hot"))
}

#[test]
fn running_jobs_are_listed_lease_by_lease() {
    run(async {
        let (q, queue) = queue().await;
        q.enqueue_many((0..5).map(|_| raw(&queue)).collect()).await.unwrap();
        let long = Duration::from_secs(30);
        let a = q.fetch(&req(&queue, 2, long)).await.unwrap().jobs;
        let b = q.fetch(&req(&queue, 2, long)).await.unwrap().jobs;
        assert_eq!(a[0].token, a[1].token, "one lease per fetch call");
        assert_ne!(a[0].token, b[0].token);
        assert_eq!(
            q.finish(vec![ok(&a[0].id, a[0].token)]).await.unwrap(),
            vec![FinishResult::Applied(JobStatus::Succeeded)]
        );

        let running: Vec<JobId> =
            q.list_jobs(&queue, JobStatus::Running, 0, 10).await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(running, vec![a[1].id.clone(), b[0].id.clone(), b[1].id.clone()]);
        let page: Vec<JobId> =
            q.list_jobs(&queue, JobStatus::Running, 1, 1).await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(page, vec![b[0].id.clone()]);
        assert_eq!(q.stats().await.unwrap().queue(&queue).running, 3);

        let leases: Vec<(JobId, u64)> = [&a[0], &a[1], &b[0]].iter().map(|j| (j.id.clone(), j.token)).collect();
        let states = q.extend_leases(&leases, long).await.unwrap();
        assert_eq!(states, vec![LeaseState::Lost, LeaseState::Held, LeaseState::Held]);
    });
}

#[test]
fn an_expired_lease_is_reclaimed_whole_and_leaves_finished_jobs_alone() {
    run(async {
        let (q, queue) = queue().await;
        q.enqueue_many((0..3).map(|_| raw(&queue)).collect()).await.unwrap();
        let jobs = q.fetch(&req(&queue, 3, Duration::from_millis(50))).await.unwrap().jobs;
        // Their handlers start (a lease lost before that is no attempt).
        let starts = jobs.iter().map(|j| Finish { id: j.id.clone(), token: j.token, outcome: Outcome::Started });
        q.finish(starts.collect()).await.unwrap();
        q.finish(vec![ok(&jobs[0].id, jobs[0].token)]).await.unwrap();
        // Housekeeping (a fetch that takes nothing) reclaims the lease.
        jobs_core::testing::eventually("reclaimed", || async {
            q.fetch(&req(&queue, 0, Duration::from_secs(30))).await.unwrap();
            q.job(&jobs[1].id).await.unwrap().unwrap().status == JobStatus::Pending
        })
        .await;
        assert_eq!(q.job(&jobs[0].id).await.unwrap().unwrap().status, JobStatus::Succeeded);
        for j in &jobs[1..] {
            let info = q.job(&j.id).await.unwrap().unwrap();
            assert_eq!((info.status, info.attempts), (JobStatus::Pending, 1));
            assert!(info.last_error().unwrap().contains("lease expired"), "{info:?}");
        }
        // The late worker's results are refused.
        let late = q.finish(vec![ok(&jobs[1].id, jobs[1].token)]).await.unwrap();
        assert_eq!(late, vec![FinishResult::Stale]);
        let c = q.stats().await.unwrap().queue(&queue);
        assert_eq!((c.pending, c.running, c.processed, c.failed), (2, 0, 1, 2));
        // Taken again: attempt 2 under a new token.
        let again = q.fetch(&req(&queue, 5, Duration::from_secs(30))).await.unwrap().jobs;
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|j| j.attempt == 2 && j.token != jobs[1].token));
    });
}

#[test]
fn a_handed_back_job_is_pending_listed_and_cancellable() {
    run(async {
        let (q, queue) = queue().await;
        let first = q.enqueue_many(vec![raw(&queue), raw(&queue)]).await.unwrap();
        let jobs = q.fetch(&req(&queue, 1, Duration::from_secs(30))).await.unwrap().jobs;
        let back = Finish {
            id: jobs[0].id.clone(),
            token: jobs[0].token,
            outcome: Outcome::Release { at: None, reason: "shutdown".into() },
        };
        assert_eq!(q.finish(vec![back]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Pending)]);
        // First in line again, under its plain id.
        let pending: Vec<JobId> =
            q.list_jobs(&queue, JobStatus::Pending, 0, 10).await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(pending, first);
        let info = q.job(&first[0]).await.unwrap().unwrap();
        assert_eq!((info.status, info.attempts), (JobStatus::Pending, 0));
        assert_eq!(q.cancel(&first[0]).await.unwrap(), CancelResult::Cancelled);
        assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
        let next = q.fetch(&req(&queue, 5, Duration::from_secs(30))).await.unwrap().jobs;
        assert_eq!(next.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), vec![first[1].clone()]);
    });
}

#[test]
fn a_job_named_twice_in_one_batch_is_finished_once() {
    run(async {
        let (q, queue) = queue().await;
        q.enqueue_many(vec![raw(&queue)]).await.unwrap();
        let j = q.fetch(&req(&queue, 1, Duration::from_secs(30))).await.unwrap().jobs.remove(0);
        let r = q.finish(vec![ok(&j.id, j.token), ok(&j.id, j.token)]).await.unwrap();
        assert_eq!(r, vec![FinishResult::Applied(JobStatus::Succeeded), FinishResult::Stale]);
        assert_eq!(q.stats().await.unwrap().queue(&queue).processed, 1);
    });
}

#[test]
fn delayed_jobs_keep_their_order_and_lose_their_state_when_due() {
    run(async {
        let (q, queue) = queue().await;
        let due = SystemTime::now() + Duration::from_millis(50);
        let mut later = raw(&queue);
        later.run_at = Some(jobs_core::When::At(due));
        let now = raw(&queue);
        let ids = q.enqueue_many(vec![later, now]).await.unwrap();
        assert_eq!(q.job(&ids[0]).await.unwrap().unwrap().status, JobStatus::Scheduled);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let got = q.fetch(&req(&queue, 5, Duration::from_secs(30))).await.unwrap().jobs;
        // The due job went to the end of the line, after the one already there.
        assert_eq!(got.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), vec![ids[1].clone(), ids[0].clone()]);
        assert!(got.iter().all(|j| j.attempt == 1));
    });
}

#[test]
fn a_batch_mixing_new_and_stored_jobs_stores_each_once() {
    run(async {
        let (q, queue) = queue().await;
        let (a, b, c, d) = (raw(&queue), raw(&queue), raw(&queue), raw(&queue));
        q.enqueue_many(vec![a.clone(), b.clone()]).await.unwrap();
        // `a` is running now, `b` still pending.
        let running = q.fetch(&req(&queue, 1, Duration::from_secs(30))).await.unwrap().jobs.remove(0);
        assert_eq!(running.id, a.id);
        // New jobs first: the quick check sees a new first job, then finds
        // the stored ones.
        let ids = q.enqueue_many(vec![c.clone(), a.clone(), b.clone(), d.clone()]).await.unwrap();
        assert_eq!(ids, vec![c.id.clone(), a.id.clone(), b.id.clone(), d.id.clone()]);
        let counts = q.stats().await.unwrap().queue(&queue);
        assert_eq!((counts.pending, counts.running), (3, 1));
        assert_eq!(q.job(&a.id).await.unwrap().unwrap().status, JobStatus::Running);
        let taken: Vec<JobId> =
            q.fetch(&req(&queue, 10, Duration::from_secs(30))).await.unwrap().jobs.into_iter().map(|j| j.id).collect();
        assert_eq!(taken, vec![b.id, c.id, d.id]);
    });
}

/// A fetch from a queue with groups takes the turn off its list once when
/// it passes over the whole turn again and again, and looks at the
/// ungrouped jobs' ready lists until each is found empty, not once per
/// pass: with one group, a pass takes one job.
#[test]
fn a_fetch_passes_over_a_short_turn_without_taking_it_again() {
    run(async {
        let server = jobs_redis::testing::RedisServer::start();
        let q = RedisQueue::connect(&server.url()).await.unwrap();
        let queue = unique_queue("hot");
        let n = 50;
        let jobs = (0..n)
            .map(|_| NewJob {
                group: Some(jobs_core::JobGroup { key: "g".into(), concurrency: None, rate: None }),
                ..raw(&queue)
            })
            .collect();
        q.enqueue_many(jobs).await.unwrap();
        let before = server.command_stat("lpop", "calls");
        let got = q.fetch(&req(&queue, n, Duration::from_secs(30))).await.unwrap().jobs;
        let pops = server.command_stat("lpop", "calls") - before;
        assert_eq!(got.len(), n, "every job of the group in one call");
        // Per job its group's list; the turn and the four ready lists of
        // ungrouped jobs once (6 per job when each pass took the turn off
        // its list and looked at every ready list).
        assert!(pops <= n as u64 + 8, "{pops} LPOPs for {n} jobs");
    });
}

/// Passes over the whole turn made in one call serve the groups in the
/// same order as rounds taken off the turn one by one would: one job of
/// each per pass, and a pass cut short by the batch's size leaves the
/// groups it did not reach first in line for the next fetch.
#[test]
fn passes_in_one_call_keep_the_groups_turn() {
    run(async {
        let (q, queue) = queue().await;
        let job = |g: &str| NewJob {
            group: Some(jobs_core::JobGroup { key: g.into(), concurrency: None, rate: None }),
            ..raw(&queue)
        };
        let mut of = std::collections::HashMap::new();
        for round in 0..5 {
            for g in ["a", "b", "c"] {
                let id = q.enqueue_many(vec![job(g)]).await.unwrap().remove(0);
                of.insert(id, format!("{g}{round}"));
            }
        }
        let long = Duration::from_secs(30);
        let names = |jobs: &[jobs_core::backend::LeasedJob]| jobs.iter().map(|j| of[&j.id].clone()).collect::<Vec<_>>();
        let first = q.fetch(&req(&queue, 5, long)).await.unwrap().jobs;
        assert_eq!(names(&first), ["a0", "b0", "c0", "a1", "b1"]);
        let second = q.fetch(&req(&queue, 4, long)).await.unwrap().jobs;
        assert_eq!(names(&second), ["c1", "a2", "b2", "c2"]);
        let third = q.fetch(&req(&queue, 10, long)).await.unwrap().jobs;
        assert_eq!(names(&third), ["a3", "b3", "c3", "a4", "b4", "c4"]);
    });
}
