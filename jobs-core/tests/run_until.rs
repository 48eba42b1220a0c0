//! `WorkerHandle::run_until`: a pool runs until its signal, then shuts down
//! gracefully; a pool that stops by itself is reported.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jobs_core::backend::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, LeaseState, PayloadFormat, ProgressUpdate, ProgressWrite,
    Waiter,
};
use jobs_core::prelude::*;
use jobs_core::{JobStatus, NewJob};
use tokio::sync::{oneshot, Notify};

const QUEUE: &str = "run_until_test";
/// How long a test waits for an outcome before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Lets a test hold a running job and see what it saw.
#[derive(Default)]
struct Gate {
    started: Notify,
    release: Notify,
    saw_cancel: AtomicBool,
}

/// Runs until the test releases it (or the pool cancels it).
#[job(queue = "run_until_test")]
async fn held(ctx: JobContext, n: u32) -> Result<u32, JobError> {
    let gate = ctx.data::<Arc<Gate>>().ok_or_else(|| JobError::permanent("no gate"))?.clone();
    gate.started.notify_one();
    tokio::select! {
        () = gate.release.notified() => {}
        () = ctx.cancelled() => gate.saw_cancel.store(true, Ordering::SeqCst),
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signal_shuts_the_pool_down_and_running_jobs_get_their_grace_period() {
    let q = MemoryQueue::new();
    let gate = Arc::new(Gate::default());
    let pool = WorkerPool::builder(q.clone())
        .queues([QUEUE])
        .workers(1)
        .grace_period(DEADLINE)
        .data(gate.clone())
        .start()
        .unwrap();
    let id = Held { n: 7 }.enqueue(&q).await.unwrap();
    let (signal, signalled) = oneshot::channel::<()>();
    let (seen, seen_by_pool) = oneshot::channel::<()>();
    let run = tokio::spawn(pool.run_until(async move {
        let _ = signalled.await;
        let _ = seen.send(());
    }));
    tokio::time::timeout(DEADLINE, gate.started.notified()).await.expect("the job starts");
    assert!(!run.is_finished(), "the pool runs until its signal");
    signal.send(()).unwrap();
    tokio::time::timeout(DEADLINE, seen_by_pool).await.expect("run_until took the signal").unwrap();
    // The grace period (30 s) holds the shutdown until the job returns.
    assert!(!run.is_finished(), "shutdown waits for the running job");
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Running);
    gate.release.notify_one();
    tokio::time::timeout(DEADLINE, run).await.expect("the pool shuts down").unwrap().unwrap();
    let info = q.job(&id).await.unwrap().unwrap();
    assert_eq!((info.status, info.attempts), (JobStatus::Succeeded, 1), "it ran to its end, once");
    assert!(!gate.saw_cancel.load(Ordering::SeqCst), "the job was never asked to stop");
    assert!(q.pools().await.unwrap().is_empty(), "the pool removed its presence record");
}

/// A `MemoryQueue` that cannot give a pool a waiter: the pool's fetch loop
/// ends at once.
#[derive(Clone)]
struct NoWaiter(MemoryQueue);

impl JobQueue for NoWaiter {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        self.0.enqueue_many(jobs)
    }
    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        self.0.fetch(req)
    }
    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        self.0.finish(batch)
    }
    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        self.0.extend_leases(leases, lease)
    }
    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
        self.0.report_progress(update)
    }
    fn waiter(&self, _queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        Err(Error::Backend("no waiter for you".into()))
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        self.0.now()
    }
    fn payload_format(&self) -> PayloadFormat {
        self.0.payload_format()
    }
    fn schedule_store(&self) -> Option<Arc<dyn jobs_core::ScheduleStore>> {
        None
    }
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_stops_by_itself_is_shut_down_and_reported() {
    let pool = WorkerPool::builder(NoWaiter(MemoryQueue::new())).queues([QUEUE]).start().unwrap();
    let result = tokio::time::timeout(DEADLINE, pool.run_until(std::future::pending())).await;
    let err = result.expect("run_until returns without a signal").expect_err("the pool stopped by itself");
    assert!(matches!(err, Error::PoolStopped(_)), "{err:?}");
    assert_eq!(err.to_string(), "the worker pool stopped taking jobs by itself: backend error: no waiter for you");
}

/// A pool whose workers and jobs taken ahead exceed what it can count is
/// refused at start, with the limit named, rather than panicking.
#[tokio::test(flavor = "current_thread")]
async fn a_prefetch_past_the_limit_is_refused_at_start() {
    let Err(e) = WorkerPool::builder(MemoryQueue::new()).queues([QUEUE]).workers(2).prefetch(usize::MAX).start() else {
        panic!("a pool with prefetch usize::MAX started");
    };
    assert!(e.to_string().contains("workers and prefetch together must be at most"), "{e}");
}
