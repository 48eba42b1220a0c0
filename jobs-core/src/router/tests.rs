//! Rules of the router that the conformance suite cannot see from outside:
//! which backend each call reaches, order across backends, failures.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::queue::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, JobQueue, LeaseState, NewJob, PoolInfo, PoolPresence,
    ProgressUpdate, ProgressWrite, QueueAdmin, QueueInspect, ScheduleDef, ScheduleStore, Waiter, When,
};
use crate::vocab::JobId;
use crate::MemoryQueue;

fn raw(queue: &str) -> NewJob {
    NewJob { max_retries: Some(0), ..NewJob::new(JobId::new(queue), "x", b"{}".to_vec()) }
}

fn req(queues: &[&str], max: usize) -> FetchRequest {
    FetchRequest {
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        max,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: crate::queue::DEFAULT_MAX_CRASHES,
    }
}

/// `a` the default, `b` holding queue `y`.
fn two() -> (QueueRouter<MemoryQueue>, MemoryQueue, MemoryQueue) {
    let (a, b) = (MemoryQueue::new(), MemoryQueue::new());
    let r = QueueRouter::builder("a", a.clone()).backend("b", b.clone()).route("y", "b").build().unwrap();
    (r, a, b)
}

#[test]
fn build_refuses_what_cannot_route() {
    let m = MemoryQueue::new;
    let e = QueueRouter::builder("a", m()).backend("a", m()).build().unwrap_err();
    assert_eq!(e, RouterError::DuplicateBackend("a".into()));
    let e = QueueRouter::builder("a", m()).route("bulk", "bluk").build().unwrap_err();
    assert_eq!(e, RouterError::UnknownBackend { queue: "bulk".into(), backend: "bluk".into(), known: "a".into() });
    assert_eq!(
        e.to_string(),
        "queue `bulk` is routed to backend `bluk`, which is not one of the router's backends (a)"
    );
    let e = QueueRouter::builder("a", m()).backend("b", m()).route("q", "a").route("q", "b").build().unwrap_err();
    assert_eq!(e, RouterError::DuplicateRoute("q".into()));
    let e = QueueRouter::builder("a", m()).route("no spaces", "a").build().unwrap_err();
    assert!(matches!(e, RouterError::InvalidQueue { ref queue, .. } if queue == "no spaces"), "{e:?}");
}

#[tokio::test]
async fn a_rule_naming_no_backend_fails_the_call_and_names_it() {
    let r = QueueRouter::builder("a", MemoryQueue::new()).route_with(|_| Some("gone")).build().unwrap();
    let e = r.enqueue_many(vec![raw("x")]).await.unwrap_err();
    assert!(matches!(&e, crate::Error::InvalidArgument(m) if m.contains("queue `x` to backend `gone`")), "{e:?}");
    let fetched = r.fetch(&req(&["x"], 1)).await.unwrap();
    assert_eq!(fetched.failed.len(), 1, "an unroutable queue is a failed queue of the fetch");
}

#[tokio::test]
async fn each_job_is_stored_on_its_queues_backend_and_found_by_id() {
    let (r, a, b) = two();
    let ids = r.enqueue_many(vec![raw("x"), raw("y"), raw("x")]).await.unwrap();
    assert_eq!(ids.iter().map(JobId::queue).collect::<Vec<_>>(), ["x", "y", "x"], "ids in the batch's order");
    for id in &ids {
        let (home, other) = if id.queue() == "y" { (&b, &a) } else { (&a, &b) };
        assert!(home.job(id).await.unwrap().is_some(), "{id} on its backend");
        assert!(other.job(id).await.unwrap().is_none(), "{id} not on the other");
        assert!(r.job(id).await.unwrap().is_some(), "{id} found through the router");
    }
}

#[tokio::test]
async fn fetch_keeps_the_queue_order_across_backends() {
    let (r, _, _) = two();
    let ids = r.enqueue_many(vec![raw("x"), raw("y"), raw("z")]).await.unwrap();
    let got = r.fetch(&req(&["y", "x", "z"], 1)).await.unwrap();
    assert_eq!(got.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), [ids[1].clone()], "y first");
    let got = r.fetch(&req(&["z", "y", "x"], 3)).await.unwrap();
    assert_eq!(got.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), [ids[2].clone(), ids[0].clone()]);
    let done = got.jobs.iter().map(|j| Finish { id: j.id.clone(), token: j.token, outcome: ok() }).collect();
    assert_eq!(r.finish(done).await.unwrap(), [FinishResult::Applied(crate::JobStatus::Succeeded); 2]);
}

fn ok() -> crate::queue::Outcome {
    crate::queue::Outcome::Succeeded { result: None }
}

#[tokio::test]
async fn a_full_batch_still_reports_the_next_due_time_of_later_backends() {
    let (r, _, _) = two();
    r.enqueue_many(vec![raw("x")]).await.unwrap();
    let later = NewJob { run_at: Some(When::In(Duration::from_secs(60))), ..raw("y") };
    r.enqueue_many(vec![later]).await.unwrap();
    // A lease longer than the delay: the scheduled job is the next due time.
    let got = r.fetch(&FetchRequest { lease: Duration::from_secs(600), ..req(&["x", "y"], 1) }).await.unwrap();
    assert_eq!(got.jobs.len(), 1);
    let due = got.next_due.expect("y's scheduled job is due in about a minute");
    assert!(due > Duration::from_secs(50) && due <= Duration::from_secs(60), "{due:?}");
}

#[tokio::test]
async fn leases_and_progress_go_to_each_jobs_backend() {
    let (r, _, b) = two();
    r.enqueue_many(vec![raw("x"), raw("y")]).await.unwrap();
    let jobs = r.fetch(&req(&["x", "y"], 2)).await.unwrap().jobs;
    let leases: Vec<(JobId, u64)> = jobs.iter().map(|j| (j.id.clone(), j.token)).collect();
    let mut stale = leases.clone();
    stale[0].1 += 1;
    let states = r.extend_leases(&stale, Duration::from_secs(30)).await.unwrap();
    assert_eq!(states, [LeaseState::Lost, LeaseState::Held], "answers in the leases' order");
    let y = &jobs[1];
    let update = ProgressUpdate { id: y.id.clone(), token: y.token, fraction: 0.5, note: "half".into() };
    assert_eq!(r.report_progress(&update).await.unwrap(), ProgressWrite::Stored);
    assert_eq!(b.job(&y.id).await.unwrap().unwrap().progress.map(|p| p.fraction), Some(0.5));
}

#[tokio::test]
async fn a_waiter_over_two_backends_wakes_on_either() {
    let (r, a, b) = two();
    for backend in [&b, &a] {
        let mut w = r.waiter(&["x".into(), "y".into()]).unwrap();
        w.arm();
        let queue = if std::ptr::eq(backend, &b) { "y" } else { "x" };
        backend.enqueue_many(vec![raw(queue)]).await.unwrap();
        // The wait's own timeout is far past the test's deadline: only the
        // enqueue can end it in time.
        tokio::time::timeout(Duration::from_secs(10), w.wait(Duration::from_secs(3600)))
            .await
            .unwrap_or_else(|_| panic!("an enqueue on {queue} wakes the waiter"))
            .unwrap();
    }
}

#[tokio::test]
async fn counts_of_every_backend_are_merged() {
    let (r, a, _) = two();
    r.enqueue_many(vec![raw("x"), raw("y"), raw("y")]).await.unwrap();
    // Left on the default backend from before `y` was routed away.
    a.enqueue_many(vec![raw("y")]).await.unwrap();
    a.pause("y").await.unwrap();
    let stats = r.stats().await.unwrap();
    assert_eq!(stats.queues.keys().collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!((stats.queue("x").pending, stats.queue("y").pending), (1, 3));
    assert!(stats.queues["y"].paused, "paused on one of its backends");
}

#[tokio::test]
async fn a_schedule_lives_with_its_queue_and_moves_with_it() {
    let (r, a, b) = two();
    let def = |queue: &str| ScheduleDef::new("nightly", "0 0 3 * * *", "UTC", "x", queue);
    r.put_schedule(def("y")).await.unwrap();
    assert_eq!(b.schedules().await.unwrap().len(), 1, "on y's backend");
    assert!(a.schedules().await.unwrap().is_empty());
    r.put_schedule(ScheduleDef::new("hourly", "0 0 * * * *", "UTC", "x", "x")).await.unwrap();
    let names: Vec<String> = r.schedules().await.unwrap().into_iter().map(|s| s.def.name).collect();
    assert_eq!(names, ["hourly", "nightly"], "both backends' schedules, by name");

    let tick = SystemTime::now();
    let fired = r.fire_schedule("nightly", tick, Some(raw("y"))).await.unwrap().expect("the tick fires");
    assert!(b.job(&fired).await.unwrap().is_some(), "its job stored beside it");
    r.set_schedule_paused("nightly", true).await.unwrap();
    assert!(b.schedules().await.unwrap()[0].paused);
    assert_eq!(r.fire_schedule("nightly", tick + Duration::from_secs(1), None).await.unwrap(), None);
    assert_eq!(b.schedules().await.unwrap()[0].last_tick, Some(tick + Duration::from_secs(1)), "a skip found it");

    r.put_schedule(def("x")).await.unwrap();
    assert!(b.schedules().await.unwrap().is_empty(), "moved off y's backend");
    assert_eq!(a.schedules().await.unwrap().len(), 2);
    assert!(r.remove_schedule("nightly").await.unwrap());
    assert!(!r.remove_schedule("nightly").await.unwrap());
    let e = r.set_schedule_paused("nightly", true).await.unwrap_err();
    assert!(matches!(e, crate::Error::ScheduleNotFound(ref n) if n == "nightly"), "{e:?}");
}

#[tokio::test]
async fn a_pool_is_reported_on_every_backend_and_listed_once() {
    let (r, a, b) = two();
    let now = SystemTime::now();
    let info = PoolInfo {
        id: "p1".into(),
        host: "h".into(),
        pid: 1,
        queues: vec!["x".into(), "y".into()],
        workers: 2,
        running: 0,
        running_jobs: Vec::new(),
        ahead: 0,
        started_at: now,
        last_seen: now,
        jobs: Vec::new(),
    };
    let presence = r.presence().expect("both backends keep presence");
    presence.report_pool(info, Duration::from_secs(30)).await.unwrap();
    assert_eq!((a.pools().await.unwrap().len(), b.pools().await.unwrap().len()), (1, 1));
    assert_eq!(r.pools().await.unwrap().iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p1"]);
    presence.remove_pool("p1").await.unwrap();
    assert!(a.pools().await.unwrap().is_empty() && b.pools().await.unwrap().is_empty());
}

/// A backend whose every call fails, as a server that is down.
struct Down;

fn down() -> crate::Error {
    crate::Error::Backend("server down".into())
}

impl JobQueue for Down {
    fn enqueue_many(&self, _: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn fetch<'a>(&'a self, _: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn finish(&self, _: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn extend_leases<'a>(
        &'a self,
        _: &'a [(JobId, u64)],
        _: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn report_progress<'a>(&'a self, _: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn waiter(&self, _: &[String]) -> Result<Box<dyn Waiter>, crate::Error> {
        Err(down())
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, crate::Error>> {
        Box::pin(async { Err(down()) })
    }
    fn payload_format(&self) -> crate::payload::PayloadFormat {
        crate::payload::PayloadFormat::Json
    }
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        None
    }
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        None
    }
}

#[tokio::test]
async fn a_backend_that_is_down_strands_no_job_of_another() {
    let a = MemoryQueue::new();
    let r = QueueRouter::<Arc<dyn JobQueue>>::builder("a", Arc::new(a.clone()))
        .backend("down", Arc::new(Down))
        .route("y", "down")
        .build()
        .unwrap();
    a.enqueue_many(vec![raw("x")]).await.unwrap();
    let got = r.fetch(&req(&["y", "x"], 2)).await.unwrap();
    assert_eq!(got.jobs.len(), 1, "x's job is leased all the same");
    assert_eq!(got.failed.len(), 1);
    assert_eq!((got.failed[0].queue.as_str(), got.failed[0].error.as_str()), ("y", "backend error: server down"));
    assert!(r.fetch(&req(&["y"], 1)).await.is_err(), "nothing fetched at all: the error itself");
    assert!(r.schedule_store().is_none() && r.presence().is_none(), "only when every backend has one");
}
