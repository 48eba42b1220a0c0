//! Shared by the endpoint and dashboard tests: jobs, a pool run of mixed
//! outcomes, a backend that is down, and request helpers.
#![allow(dead_code, missing_docs)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jobs_core::backend::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, LeaseState, ProgressUpdate, ProgressWrite, Waiter,
};
use jobs_core::prelude::*;
use jobs_core::{
    Backoff, CancelResult, JobInfo, JobStatus, MinuteCounts, NewJob, PoolInfo, QueuePolicy, QueueStats, ScheduleDef,
    ScheduleState, SharedQueue, WorkerHandle,
};
use jobs_web::WebState;
use tower::ServiceExt;

pub const QUEUE: &str = "web_test";

/// Fails on attempts up to `fail_times`, then succeeds.
#[job(queue = "web_test", retries = 2)]
pub async fn web_flaky(ctx: JobContext, fail_times: u32) -> Result<(), JobError> {
    if ctx.attempt() <= fail_times {
        return Err(JobError::retryable(format!("planned failure {}", ctx.attempt())));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(())
}

/// Always fails permanently: dead at once.
#[job(queue = "web_test", priority = "high")]
pub async fn web_doomed() -> Result<(), JobError> {
    Err(JobError::permanent("this input can never work"))
}

/// Waits for `cond` with a deadline, checking every 5 ms.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A pool on `queue` serving the test queue, fast retries, with `metrics`.
pub fn start_pool(queue: SharedQueue, metrics: &JobMetrics) -> WorkerHandle {
    WorkerPool::builder(queue)
        .queues([QUEUE])
        .workers(3)
        .backoff(Backoff {
            base: Duration::from_millis(10),
            factor: 2.0,
            cap: Duration::from_millis(50),
            jitter: false,
        })
        .metrics(metrics)
        .start()
        .expect("pool starts")
}

/// Enqueues succeeding, retried and dead jobs and waits until all finished.
pub async fn run_mixed_jobs(queue: &SharedQueue) {
    let mut ids = Vec::new();
    for fail_times in [0, 0, 0, 1, 2] {
        ids.push(WebFlaky { fail_times }.enqueue(queue).await.expect("enqueue"));
    }
    ids.push(WebFlaky { fail_times: 5 }.enqueue(queue).await.expect("enqueue"));
    ids.push(WebDoomed {}.enqueue(queue).await.expect("enqueue"));
    eventually("every job finished", || async {
        for id in &ids {
            match queue.job(id).await {
                Ok(Some(info)) if info.status.is_finished() => {}
                _ => return false,
            }
        }
        true
    })
    .await;
}

/// Sends `GET uri` to the router; returns the status, content type and body.
pub async fn get(state: &WebState, uri: &str) -> (StatusCode, String, String) {
    let req = Request::get(uri).body(Body::empty()).expect("request");
    let resp = jobs_web::router(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().expect("ascii").to_owned()).unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, ctype, String::from_utf8(body.to_vec()).expect("utf-8"))
}

/// Sends `method uri` with `headers` to the router; returns the status, the
/// response headers and the body.
pub async fn send(
    state: &WebState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::empty()).expect("request");
    let resp = jobs_web::router(state.clone()).oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    (parts.status, parts.headers, String::from_utf8(body.to_vec()).expect("utf-8"))
}

/// `POST uri` with `headers`, answered in JSON.
pub async fn post_json(state: &WebState, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let (status, h, body) = send(state, "POST", uri, headers).await;
    assert_eq!(h.get("content-type").map(|v| v.to_str().expect("ascii")), Some("application/json"), "{uri}");
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// `GET uri` as JSON.
pub async fn get_json(state: &WebState, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, ctype, body) = get(state, uri).await;
    assert_eq!(ctype, "application/json", "{uri}");
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// A backend whose server is gone: every call fails.
pub struct Unreachable;

fn down() -> jobs_core::Error {
    jobs_core::Error::Backend("connection refused (os error 111)".into())
}

fn fail<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, jobs_core::Error>> {
    Box::pin(async { Err(down()) })
}

impl JobQueue for Unreachable {
    fn enqueue_many(&self, _: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, jobs_core::Error>> {
        fail()
    }
    fn fetch<'a>(&'a self, _: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, jobs_core::Error>> {
        fail()
    }
    fn finish(&self, _: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, jobs_core::Error>> {
        fail()
    }
    fn extend_leases<'a>(
        &'a self,
        _: &'a [(JobId, u64)],
        _: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, jobs_core::Error>> {
        fail()
    }
    fn report_progress<'a>(&'a self, _: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, jobs_core::Error>> {
        fail()
    }
    fn waiter(&self, _: &[String]) -> Result<Box<dyn Waiter>, jobs_core::Error> {
        Err(down())
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, jobs_core::Error>> {
        fail()
    }
    fn payload_format(&self) -> jobs_core::backend::PayloadFormat {
        jobs_core::backend::PayloadFormat::Json
    }
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        Some(Arc::new(Unreachable))
    }
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        Some(Arc::new(Unreachable))
    }
}

impl QueueInspect for Unreachable {
    fn job<'a>(&'a self, _: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, jobs_core::Error>> {
        fail()
    }
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, jobs_core::Error>> {
        fail()
    }
    fn dead_jobs<'a>(&'a self, _: &'a str, _: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, jobs_core::Error>> {
        fail()
    }
    fn list_jobs<'a>(
        &'a self,
        _: &'a str,
        _: JobStatus,
        _: usize,
        _: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, jobs_core::Error>> {
        fail()
    }
    fn groups<'a>(
        &'a self,
        _: &'a str,
        _: usize,
    ) -> BoxFuture<'a, Result<Vec<jobs_core::GroupInfo>, jobs_core::Error>> {
        fail()
    }
}

impl QueueAdmin for Unreachable {
    fn cancel<'a>(&'a self, _: &'a JobId) -> BoxFuture<'a, Result<CancelResult, jobs_core::Error>> {
        fail()
    }
    fn retry_dead<'a>(&'a self, _: &'a JobId) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn purge_dead<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<u64, jobs_core::Error>> {
        fail()
    }
    fn pause<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn resume<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn set_policy<'a>(&'a self, _: &'a str, _: QueuePolicy) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn policy<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<QueuePolicy, jobs_core::Error>> {
        fail()
    }
    fn breaker<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<jobs_core::BreakerInfo, jobs_core::Error>> {
        fail()
    }
    fn set_breaker<'a>(
        &'a self,
        _: &'a str,
        _: jobs_core::BreakerAction,
    ) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn set_group_breaker<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: jobs_core::BreakerAction,
    ) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
}

impl PoolPresence for Unreachable {
    fn report_pool(&self, _: PoolInfo, _: Duration) -> BoxFuture<'_, Result<(), jobs_core::Error>> {
        fail()
    }
    fn remove_pool<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, jobs_core::Error>> {
        fail()
    }
}

impl QueueHistory for Unreachable {
    fn throughput<'a>(&'a self, _: &'a str, _: usize) -> BoxFuture<'a, Result<Vec<MinuteCounts>, jobs_core::Error>> {
        fail()
    }
}

impl ScheduleStore for Unreachable {
    fn put_schedule(&self, _: ScheduleDef) -> BoxFuture<'_, Result<(), jobs_core::Error>> {
        fail()
    }
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, jobs_core::Error>> {
        fail()
    }
    fn remove_schedule<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, jobs_core::Error>> {
        fail()
    }
    fn set_schedule_paused<'a>(&'a self, _: &'a str, _: bool) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        fail()
    }
    fn fire_schedule<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
        _: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, jobs_core::Error>> {
        fail()
    }
}

impl QueueEvents for Unreachable {
    fn listen<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<jobs_core::Listening, jobs_core::Error>> {
        fail()
    }
    fn read_events<'a>(
        &'a self,
        _: &'a str,
        _: &'a jobs_core::EventCursor,
        _: usize,
    ) -> BoxFuture<'a, Result<jobs_core::EventPage, jobs_core::Error>> {
        fail()
    }
    fn event_waiter(&self, _: &str) -> Result<Box<dyn Waiter>, jobs_core::Error> {
        Err(down())
    }
    fn event_hub(&self) -> &jobs_core::backend::EventHub {
        static HUB: std::sync::LazyLock<jobs_core::backend::EventHub> = std::sync::LazyLock::new(Default::default);
        &HUB
    }
}

/// A shared queue over `Unreachable`.
pub fn unreachable() -> SharedQueue {
    Arc::new(Unreachable)
}

/// A memory queue that records the reads the API makes of it: every
/// `list_jobs` call's offset and limit, and the number of `throughput` calls.
#[derive(Default)]
pub struct Recording {
    inner: MemoryQueue,
    pub lists: Mutex<Vec<(usize, usize)>>,
    pub throughput_reads: AtomicUsize,
}

impl Recording {
    /// `throughput` calls so far.
    pub fn throughput_reads(&self) -> usize {
        self.throughput_reads.load(Ordering::SeqCst)
    }

    /// `list_jobs` calls so far, as (offset, limit).
    pub fn lists(&self) -> Vec<(usize, usize)> {
        self.lists.lock().expect("not poisoned").clone()
    }
}

/// Every call but the two it records goes to the memory queue: the API's
/// reads of the other calls are not what these tests count.
impl JobQueue for Recording {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, jobs_core::Error>> {
        self.inner.enqueue_many(jobs)
    }
    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, jobs_core::Error>> {
        self.inner.fetch(req)
    }
    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, jobs_core::Error>> {
        self.inner.finish(batch)
    }
    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, jobs_core::Error>> {
        self.inner.extend_leases(leases, lease)
    }
    fn report_progress<'a>(
        &'a self,
        update: &'a ProgressUpdate,
    ) -> BoxFuture<'a, Result<ProgressWrite, jobs_core::Error>> {
        self.inner.report_progress(update)
    }
    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, jobs_core::Error> {
        self.inner.waiter(queues)
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, jobs_core::Error>> {
        self.inner.now()
    }
    fn payload_format(&self) -> jobs_core::backend::PayloadFormat {
        self.inner.payload_format()
    }
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        self.inner.schedule_store()
    }
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        self.inner.presence()
    }
}

impl QueueInspect for Recording {
    fn job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<JobInfo>, jobs_core::Error>> {
        self.inner.job(id)
    }
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, jobs_core::Error>> {
        self.inner.stats()
    }
    fn dead_jobs<'a>(&'a self, queue: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<JobInfo>, jobs_core::Error>> {
        self.inner.dead_jobs(queue, limit)
    }
    fn list_jobs<'a>(
        &'a self,
        queue: &'a str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<JobInfo>, jobs_core::Error>> {
        self.lists.lock().expect("not poisoned").push((offset, limit));
        self.inner.list_jobs(queue, status, offset, limit)
    }
    fn groups<'a>(
        &'a self,
        queue: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<jobs_core::GroupInfo>, jobs_core::Error>> {
        self.inner.groups(queue, limit)
    }
}

impl QueueHistory for Recording {
    fn throughput<'a>(
        &'a self,
        queue: &'a str,
        minutes: usize,
    ) -> BoxFuture<'a, Result<Vec<MinuteCounts>, jobs_core::Error>> {
        self.throughput_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.throughput(queue, minutes)
    }
}

impl QueueEvents for Recording {
    fn listen<'a>(
        &'a self,
        q: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<jobs_core::Listening, jobs_core::Error>> {
        self.inner.listen(q, ttl)
    }
    fn read_events<'a>(
        &'a self,
        q: &'a str,
        after: &'a jobs_core::EventCursor,
        max: usize,
    ) -> BoxFuture<'a, Result<jobs_core::EventPage, jobs_core::Error>> {
        self.inner.read_events(q, after, max)
    }
    fn event_waiter(&self, q: &str) -> Result<Box<dyn Waiter>, jobs_core::Error> {
        self.inner.event_waiter(q)
    }
    fn event_hub(&self) -> &jobs_core::backend::EventHub {
        self.inner.event_hub()
    }
}

impl QueueAdmin for Recording {
    fn cancel<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<CancelResult, jobs_core::Error>> {
        self.inner.cancel(id)
    }
    fn retry_dead<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.retry_dead(id)
    }
    fn purge_dead<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, jobs_core::Error>> {
        self.inner.purge_dead(queue)
    }
    fn pause<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.pause(queue)
    }
    fn resume<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.resume(queue)
    }
    fn set_policy<'a>(&'a self, queue: &'a str, policy: QueuePolicy) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.set_policy(queue, policy)
    }
    fn policy<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueuePolicy, jobs_core::Error>> {
        self.inner.policy(queue)
    }
    fn breaker<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<jobs_core::BreakerInfo, jobs_core::Error>> {
        self.inner.breaker(queue)
    }
    fn set_breaker<'a>(
        &'a self,
        queue: &'a str,
        action: jobs_core::BreakerAction,
    ) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.set_breaker(queue, action)
    }
    fn set_group_breaker<'a>(
        &'a self,
        queue: &'a str,
        group: &'a str,
        action: jobs_core::BreakerAction,
    ) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.set_group_breaker(queue, group, action)
    }
}

impl PoolPresence for Recording {
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), jobs_core::Error>> {
        self.inner.report_pool(info, ttl)
    }
    fn remove_pool<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.remove_pool(id)
    }
    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, jobs_core::Error>> {
        self.inner.pools()
    }
}

impl ScheduleStore for Recording {
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), jobs_core::Error>> {
        self.inner.put_schedule(def)
    }
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, jobs_core::Error>> {
        self.inner.schedules()
    }
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, jobs_core::Error>> {
        self.inner.remove_schedule(name)
    }
    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), jobs_core::Error>> {
        self.inner.set_schedule_paused(name, paused)
    }
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, jobs_core::Error>> {
        self.inner.fire_schedule(name, tick, job)
    }
}
