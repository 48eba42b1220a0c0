//! Cancellation, leases, fencing tokens and crash recovery.

use std::time::Duration;

use crate::job::JobOptions;
use crate::queue::{
    Backend, CancelResult, FetchRequest, Finish, FinishResult, JobQueue, Outcome, QueueAdmin, QueueInspect,
};
use crate::testing::harness::{eventually, eventually_some, probe, test_pool, unique_queue, wait_status};
use crate::testing::jobs::Act;
use crate::vocab::JobStatus;

use super::{ms, put, put1};

fn fetch_req(queue: &str, lease: Duration, retries: u32) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.to_owned()],
        max: 10,
        lease,
        default_max_retries: retries,
        max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
    }
}

/// Cancelling a pending job takes it out of the queue; it never runs.
pub async fn cancel_pending_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("cancelp");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    assert_eq!(q.cancel(&id).await.unwrap(), CancelResult::Cancelled);
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Cancelled);
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 0);
    let after = put1(&q, &queue, 2, Act::Succeed).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &after, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(probe(&queue).starts().iter().map(|s| s.seq).collect::<Vec<_>>(), vec![2]);
}

/// Cancelling a scheduled job removes it before its time.
pub async fn cancel_scheduled_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("cancels");
    let id = put(&q, &queue, 1, Act::Succeed, JobOptions::new().delay(ms(200))).await;
    assert_eq!(q.cancel(&id).await.unwrap(), CancelResult::Cancelled);
    assert_eq!(q.stats().await.unwrap().queue(&queue).scheduled, 0);
    let r = q.fetch(&fetch_req(&queue, ms(1000), 3)).await.unwrap();
    assert!(r.jobs.is_empty());
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Cancelled);
}

/// Cancelling a running job signals `cancelled()`; it ends cancelled, no retry.
pub async fn cancel_running_job<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("cancelr");
    let pool = test_pool(q.clone(), &[&queue]).lease(ms(600)).start().unwrap();
    let id = put(&q, &queue, 1, Act::WaitForCancel, JobOptions::new().max_retries(3)).await;
    let p = probe(&queue);
    eventually("job started", || async { p.start_count() == 1 }).await;
    assert_eq!(q.cancel(&id).await.unwrap(), CancelResult::Requested);
    let info = wait_status(&q, &id, JobStatus::Cancelled).await;
    pool.shutdown().await.unwrap();
    assert_eq!(p.cancels(), vec![1]);
    assert_eq!(info.attempts, 1);
    assert_eq!(p.start_count(), 1, "no retry after a cancel");
}

/// Cancelling a finished job changes nothing.
pub async fn cancel_finished_job_changes_nothing<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("cancelf");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
    wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    assert_eq!(q.cancel(&id).await.unwrap(), CancelResult::AlreadyFinished(JobStatus::Succeeded));
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Succeeded);
}

/// A worker whose lease expired and whose job was taken again cannot record
/// its result: the newer attempt wins.
pub async fn stale_ack_is_refused<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("stale");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    let first = q.fetch(&fetch_req(&queue, ms(100), 3)).await.unwrap().jobs.remove(0);
    let second = eventually_some("lease expired and job taken again", || async {
        q.fetch(&fetch_req(&queue, ms(5000), 3)).await.unwrap().jobs.pop()
    })
    .await;
    assert_eq!(second.id, id);
    assert_ne!(first.token, second.token);
    let late = Finish { id: id.clone(), token: first.token, outcome: Outcome::Succeeded { result: None } };
    assert_eq!(q.finish(vec![late]).await.unwrap(), vec![FinishResult::Stale]);
    assert_eq!(
        q.extend_leases(&[(id.clone(), first.token)], ms(5000)).await.unwrap()[0],
        crate::queue::LeaseState::Lost
    );
    let real = Finish { id: id.clone(), token: second.token, outcome: Outcome::Succeeded { result: None } };
    assert_eq!(q.finish(vec![real]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Succeeded)]);
}

/// Records that a leased job's handler starts, as a pool does.
async fn start<Q: JobQueue>(q: &Q, job: &crate::queue::LeasedJob) {
    let mark = Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Started };
    assert_eq!(q.finish(vec![mark]).await.unwrap(), vec![FinishResult::Applied(JobStatus::Running)]);
}

/// A job reclaimed from a dead worker, once its handler had started, counts
/// the attempt and says why.
pub async fn reclaimed_job_counts_an_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("reclaim");
    let id = put1(&q, &queue, 1, Act::Succeed).await;
    let first = q.fetch(&fetch_req(&queue, ms(100), 3)).await.unwrap().jobs.remove(0);
    assert_eq!(first.attempt, 1);
    start(&q, &first).await;
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Running, "a start mark is not an end");
    let again =
        eventually_some("reclaimed", || async { q.fetch(&fetch_req(&queue, ms(5000), 3)).await.unwrap().jobs.pop() })
            .await;
    assert_eq!((again.attempt, again.crashes), (2, 0));
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!(info.attempts, 2);
    assert!(info.attempt_log[0].error.as_deref().unwrap().contains("lease expired"), "{info:?}");
}

/// A lease lost before the job's handler started (its worker died while the
/// job waited to run) is not an attempt: it counts against the crash budget,
/// past which the job ends dead, saying why.
pub async fn lost_lease_before_start_is_not_an_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("crash");
    let id = put(&q, &queue, 1, Act::Succeed, JobOptions::new().max_retries(0)).await;
    let req = FetchRequest { max_crashes: 2, ..fetch_req(&queue, ms(100), 3) };
    let first = q.fetch(&req).await.unwrap().jobs.remove(0);
    assert_eq!((first.attempt, first.crashes), (1, 0));
    // Lost twice before a start: still attempt 1, with retries = 0.
    for crashes in 1..=2 {
        let again = eventually_some("reclaimed", || async { q.fetch(&req).await.unwrap().jobs.pop() }).await;
        assert_eq!((again.attempt, again.crashes), (1, crashes));
    }
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!((info.status, info.attempts), (JobStatus::Running, 1), "{info:?}");
    assert!(info.attempt_log.iter().all(|a| a.error.is_none()), "no attempt ended: {info:?}");
    // A third loss is past the budget of 2.
    let info = eventually_some("dead past its crash budget", || async {
        q.fetch(&req).await.unwrap();
        q.job(&id).await.unwrap().filter(|i| i.status == JobStatus::Dead)
    })
    .await;
    assert!(info.last_error().unwrap().contains("lost its lease 3 times before its handler started"), "{info:?}");
}

/// A job that kills its worker every time ends dead instead of looping.
pub async fn poison_job_ends_dead<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("poison");
    let id = put(&q, &queue, 1, Act::Succeed, JobOptions::new().max_retries(1)).await;
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let (taken_ref, q_ref, queue_ref, id_ref) = (&taken, &q, &queue, &id);
    eventually("dead after its attempts", || async move {
        let (q, queue, id) = (q_ref, queue_ref, id_ref);
        let jobs = q.fetch(&fetch_req(queue, ms(50), 3)).await.unwrap().jobs;
        // Its handler starts, then takes its worker down.
        for job in &jobs {
            start(q, job).await;
        }
        taken_ref.fetch_add(jobs.len(), std::sync::atomic::Ordering::Relaxed);
        q.job(id).await.unwrap().unwrap().status == JobStatus::Dead
    })
    .await;
    assert_eq!(taken.into_inner(), 2, "two attempts (retries = 1), each lost with its worker");
    let info = q.job(&id).await.unwrap().unwrap();
    assert!(info.last_error().unwrap().contains("lease expired"));
}

/// A pool killed mid-job loses its lease; another pool runs the job.
pub async fn killed_pool_job_runs_elsewhere<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("killed");
    let a = test_pool(q.clone(), &[&queue]).lease(ms(300)).start().unwrap();
    let id = put1(&q, &queue, 1, Act::WaitForCancel).await;
    let p = probe(&queue);
    eventually("started on pool a", || async { p.start_count() == 1 }).await;
    a.kill().await;
    let b = test_pool(q.clone(), &[&queue]).lease(ms(300)).start().unwrap();
    eventually("started again on pool b", || async { p.start_count() == 2 }).await;
    // The first run's start mark goes out with pool a's next
    // acknowledgements: killed before it reached the backend, the lost
    // lease is a crash, not an attempt, and the job runs again under the
    // same attempt number.
    let info = q.job(&id).await.unwrap().unwrap();
    let counted = info
        .attempt_log
        .iter()
        .any(|a| a.attempt == 1 && a.error.as_deref().is_some_and(|e| e.contains("lease expired")));
    assert_eq!(p.starts()[1].attempt, if counted { 2 } else { 1 }, "{info:?}");
    q.cancel(&id).await.unwrap();
    wait_status(&q, &id, JobStatus::Cancelled).await;
    b.shutdown().await.unwrap();
    assert_eq!(p.cancels(), vec![1], "only the live attempt saw the cancel");
}

/// A job running three times its lease keeps it through heartbeats, while
/// another pool waits to take it. (The lease leaves a loaded machine room:
/// an extension a third of the way in may be late by most of a lease.)
pub async fn heartbeat_keeps_long_job_leased<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("heartbeat");
    let pool = test_pool(q.clone(), &[&queue]).lease(ms(1_000)).start().unwrap();
    let other = test_pool(q.clone(), &[&queue]).lease(ms(1_000)).start().unwrap();
    let id = put1(&q, &queue, 1, Act::SleepMs(3_000)).await;
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1, "never reclaimed: {info:?}");
    assert_eq!(probe(&queue).start_count(), 1);
}

/// A presence report that takes far longer than the lease (a slow node
/// holding the pools' index) never delays lease extensions: a long job
/// keeps its lease and runs once, though another pool waits to take it.
pub async fn slow_presence_never_delays_lease_extension<Q: Backend + Clone>(q: Q) {
    let queue = unique_queue("slowpresence");
    let slow = crate::testing::Faulty::new(q.clone());
    slow.delay_presence(Duration::from_secs(60));
    // A lease long enough that a loaded machine keeps it when extensions are
    // not held up, and far shorter than the presence delay.
    let pool = test_pool(slow, &[&queue]).lease(ms(1_500)).start().unwrap();
    let id = put1(&q, &queue, 1, Act::SleepMs(4_000)).await;
    eventually("the slow pool took the job", || async { probe(&queue).start_count() == 1 }).await;
    let other = test_pool(q.clone(), &[&queue]).lease(ms(1_500)).start().unwrap();
    let info = wait_status(&q, &id, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
    assert_eq!(info.attempts, 1, "never reclaimed: {info:?}");
    assert_eq!(probe(&queue).start_count(), 1);
}

/// A pool stopped while a presence report is on its way is not listed once
/// that report has landed: the shutdown waits for it before it removes the
/// pool's record.
pub async fn a_presence_report_on_its_way_does_not_outlive_the_shutdown<Q: Backend + Clone>(q: Q) {
    let queue = unique_queue("latepresence");
    let late = crate::testing::Faulty::new(q.clone());
    late.land_presence_late(Duration::from_millis(300));
    let pool = test_pool(late.clone(), &[&queue]).lease(ms(5_000)).start().unwrap();
    let id = pool.id().to_owned();
    eventually("the pool's first report is on its way", || async { late.presence_sent() >= 1 }).await;
    pool.shutdown().await.unwrap();
    eventually("every report sent has landed", || async { late.presence_in_flight() == 0 }).await;
    assert!(q.pools().await.unwrap().iter().all(|w| w.id != id), "the stopped pool is listed again");
}

/// Jobs that lost a lease before their handler started run one at a time
/// in a pool, each only once its start is recorded; they keep attempt 1.
pub async fn jobs_that_crashed_before_starting_run_alone<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("alone");
    for seq in 1..=2 {
        put1(&q, &queue, seq, Act::SleepMs(300)).await;
    }
    let req = fetch_req(&queue, ms(100), 3);
    assert_eq!(q.fetch(&req).await.unwrap().jobs.len(), 2);
    // Their worker died before starting them: both come back as crashes.
    // (A fetch of nothing still reclaims expired leases.)
    let housekeeping = FetchRequest { max: 0, ..req.clone() };
    eventually("both reclaimed", || async {
        q.fetch(&housekeeping).await.unwrap();
        q.stats().await.unwrap().queue(&queue).pending == 2
    })
    .await;
    let pool = test_pool(q.clone(), &[&queue]).workers(4).start().unwrap();
    let p = probe(&queue);
    eventually("both ran", || async { p.ends().len() == 2 }).await;
    pool.shutdown().await.unwrap();
    let starts = p.starts();
    assert!(starts.iter().all(|s| s.attempt == 1), "a crash before the start is no attempt: {starts:?}");
    let gap = starts[1].at.duration_since(starts[0].at);
    assert!(gap >= ms(290), "the second started after the first ended, not beside it: {gap:?}");
}
