//! Hooks: a job that dies with its pool is reported by the fetch that finds
//! it, once; a pool's layers, failure and dead handlers; hooked enqueues.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::hooks::{Attempt, BoxFuture, DeadJob, FailedAttempt, HookError, Hooked, JobLayer, JobOutcome, Next};
use crate::job::{Job, JobExt, JobOptions};
use crate::queue::{FetchRequest, Finish, JobQueue, NewJob, Outcome, QueueAdmin, QueueInspect};
use crate::testing::harness::{eventually, eventually_some, probe, test_pool, unique_queue, wait_status, ProbeTag};
use crate::testing::jobs::{Act, ProbeJob};
use crate::vocab::{JobId, JobStatus};

use super::{ms, probe_job, put, put1, raw_job};

/// What handlers saw, in order.
struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Seen(self.0.clone())
    }
}

impl<T: Clone> Seen<T> {
    fn new() -> Self {
        Seen(Arc::default())
    }

    fn push(&self, v: T) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Deaths by job id, asserting that none was reported twice.
fn once_each(deaths: Vec<DeadJob>) -> BTreeMap<JobId, DeadJob> {
    let mut by_id = BTreeMap::new();
    for d in deaths {
        let id = d.id.clone();
        assert!(by_id.insert(id.clone(), d).is_none(), "job {id} was reported dead twice");
    }
    by_id
}

/// A fetch that reclaims an expired lease and sends its job to the
/// dead-letter set lists it in `Fetched::dead` (id, name, attempts, error),
/// in that fetch only; a reclaimed job that runs again is not listed.
pub async fn reclaimed_dead_jobs_are_reported_once<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("deadrec");
    let last = put(&q, &queue, 1, Act::Succeed, JobOptions::new().max_retries(0)).await;
    let again = put(&q, &queue, 2, Act::Succeed, JobOptions::new().max_retries(1)).await;
    let unstarted = put(&q, &queue, 3, Act::Succeed, JobOptions::new().max_retries(0)).await;
    let req =
        FetchRequest { queues: vec![queue.clone()], max: 10, lease: ms(100), default_max_retries: 3, max_crashes: 0 };
    let taken = q.fetch(&req).await.unwrap();
    assert!(taken.dead.is_empty(), "{:?}", taken.dead);
    assert_eq!(taken.jobs.len(), 3);
    // Two handlers start; the third job's worker dies before its start.
    let marks = taken
        .jobs
        .iter()
        .filter(|j| j.id != unstarted)
        .map(|j| Finish { id: j.id.clone(), token: j.token, outcome: Outcome::Started })
        .collect();
    q.finish(marks).await.unwrap();
    let reported = Seen::new();
    eventually("both deaths reported by a fetch, the retried job succeeded", || async {
        let f = q.fetch(&req).await.unwrap();
        // The job with a retry left runs again: it succeeds at once.
        let done = f
            .jobs
            .iter()
            .map(|j| Finish { id: j.id.clone(), token: j.token, outcome: Outcome::Succeeded { result: None } })
            .collect::<Vec<_>>();
        if !done.is_empty() {
            q.finish(done).await.unwrap();
        }
        f.dead.into_iter().for_each(|d| reported.push(d));
        // The deaths may be reported before the retry is due: the loop's
        // own fetches run it, not the one below, which finishes nothing.
        reported.all().len() >= 2 && q.job(&again).await.unwrap().unwrap().status == JobStatus::Succeeded
    })
    .await;
    assert!(q.fetch(&req).await.unwrap().dead.is_empty(), "a death is listed by one fetch only");
    let deaths = once_each(reported.all());
    assert_eq!(deaths.keys().cloned().collect::<Vec<_>>(), sorted(vec![last.clone(), unstarted.clone()]));
    let d = &deaths[&last];
    assert_eq!((d.name.as_str(), d.attempts), (ProbeJob::NAME, 1), "{d:?}");
    assert!(d.error.contains("lease expired"), "{d:?}");
    let d = &deaths[&unstarted];
    assert_eq!((d.name.as_str(), d.attempts), (ProbeJob::NAME, 1), "{d:?}");
    assert!(d.error.contains("crash budget"), "{d:?}");
    for id in [&last, &unstarted] {
        assert_eq!(q.job(id).await.unwrap().unwrap().status, JobStatus::Dead);
    }
    assert_eq!(q.job(&again).await.unwrap().unwrap().status, JobStatus::Succeeded);
}

fn sorted(mut ids: Vec<JobId>) -> Vec<JobId> {
    ids.sort();
    ids
}

/// A pool's `on_failure` handlers see every failed attempt with whether it
/// will retry; its `on_dead` handlers every job that ends dead, once: the
/// last retry, a permanent error, an unknown job name. Succeeded jobs are
/// in neither.
pub async fn on_failure_and_on_dead_see_every_failure<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("onfail");
    let (failures, deaths) = (Seen::<FailedAttempt>::new(), Seen::<DeadJob>::new());
    let (f, d) = (failures.clone(), deaths.clone());
    let pool = test_pool(q.clone(), &[&queue])
        .on_failure(move |a| f.push(a.clone()))
        .on_dead(move |j| d.push(j.clone()))
        .start()
        .unwrap();
    let retried = put(&q, &queue, 1, Act::FailAlways, JobOptions::new().max_retries(1)).await;
    let permanent = put(&q, &queue, 2, Act::Permanent, JobOptions::new().max_retries(3)).await;
    let ok = put1(&q, &queue, 3, Act::Succeed).await;
    let unknown = q.enqueue_many(vec![raw_job(&queue, "no_such_job_here", b"{}")]).await.unwrap().remove(0);
    for id in [&retried, &permanent, &unknown] {
        wait_status(&q, id, JobStatus::Dead).await;
    }
    wait_status(&q, &ok, JobStatus::Succeeded).await;
    eventually("every death reported", || async { deaths.all().len() >= 3 }).await;
    pool.shutdown().await.unwrap();
    let deaths = once_each(deaths.all());
    assert_eq!(
        deaths.keys().cloned().collect::<Vec<_>>(),
        sorted(vec![retried.clone(), permanent.clone(), unknown.clone()])
    );
    assert_eq!(deaths[&retried].attempts, 2);
    assert!(deaths[&retried].error.contains("always fails (attempt 2)"), "{:?}", deaths[&retried]);
    assert_eq!(deaths[&permanent].attempts, 1);
    assert!(deaths[&permanent].error.contains("can never work"));
    assert_eq!(deaths[&unknown].name, "no_such_job_here");
    let mut seen: Vec<(JobId, u32, bool)> =
        failures.all().into_iter().map(|a| (a.id.clone(), a.attempt, a.will_retry)).collect();
    seen.sort();
    let mut want = vec![
        (retried.clone(), 1, true),
        (retried.clone(), 2, false),
        (permanent.clone(), 1, false),
        (unknown.clone(), 1, false),
    ];
    want.sort();
    assert_eq!(seen, want);
}

/// A job whose pool is killed during its last attempt dies when another
/// pool's fetch reclaims its lease; that pool's `on_dead` reports it, once.
pub async fn on_dead_reports_the_job_of_a_killed_pool<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("deadkill");
    let start = |deaths: &Seen<DeadJob>| {
        let d = deaths.clone();
        test_pool(q.clone(), &[&queue]).lease(ms(300)).on_dead(move |j| d.push(j.clone())).start().unwrap()
    };
    let mut seen = vec![Seen::<DeadJob>::new()];
    let mut pool = start(&seen[0]);
    let id = put(&q, &queue, 1, Act::WaitForCancel, JobOptions::new().max_retries(0)).await;
    let p = probe(&queue);
    eventually("started on the first pool", || async { p.start_count() == 1 }).await;
    // A run's start mark goes out with its pool's next acknowledgements: a
    // pool killed before it reached the backend lost a lease, not an
    // attempt, and the job runs again on the next pool, alone and with its
    // start recorded before its handler runs; that pool is killed in turn.
    let info = loop {
        let runs = p.start_count();
        pool.kill().await;
        seen.push(Seen::new());
        pool = start(&seen[seen.len() - 1]);
        let (q, id, p) = (&q, &id, &p);
        let info = eventually_some("dead, or running again on the next pool", || async move {
            let info = q.job(id).await.unwrap().unwrap();
            (info.status == JobStatus::Dead || p.start_count() > runs).then_some(info)
        })
        .await;
        if info.status == JobStatus::Dead {
            break info;
        }
        assert!(seen.len() < 3, "a run whose start was recorded first lost its attempt: {info:?}");
    };
    let (reporter, killed) = seen.split_last().expect("two pools at least");
    eventually("the last pool reported the death", || async { !reporter.all().is_empty() }).await;
    pool.shutdown().await.unwrap();
    let deaths = once_each(reporter.all());
    assert_eq!(deaths.keys().collect::<Vec<_>>(), vec![&id]);
    assert_eq!((deaths[&id].attempts, info.attempts), (1, 1));
    assert!(deaths[&id].error.contains("lease expired"), "{:?}", deaths[&id]);
    assert!(killed.iter().all(|s| s.all().is_empty()), "a killed pool reported nothing");
    assert_eq!(p.start_count(), killed.len(), "it ran once on each killed pool, never after its death");
}

/// Records entering and leaving, per job.
struct Trace(&'static str, Seen<(JobId, String)>);

impl JobLayer for Trace {
    fn call<'a>(&'a self, attempt: Attempt, next: Next<'a>) -> BoxFuture<'a, JobOutcome> {
        Box::pin(async move {
            let id = attempt.ctx().job_id().clone();
            self.1.push((id.clone(), format!("{}>", self.0)));
            let out = next.run(attempt).await;
            let kind = match &out {
                JobOutcome::Succeeded { .. } => "ok",
                JobOutcome::Retry { .. } => "retry",
                _ => "dead",
            };
            self.1.push((id, format!("<{}:{kind}", self.0)));
            out
        })
    }
}

/// Hands the `tag` header to the job; swallows planned failures; makes
/// "always fails" permanent; panics on a `panic` header.
struct Rewrite;

impl JobLayer for Rewrite {
    fn call<'a>(&'a self, mut attempt: Attempt, next: Next<'a>) -> BoxFuture<'a, JobOutcome> {
        Box::pin(async move {
            if attempt.headers().contains_key("panic") {
                panic!("a layer panicked on purpose");
            }
            if let Some(tag) = attempt.headers().get("tag").cloned() {
                attempt.extensions_mut().insert(ProbeTag(tag));
            }
            match next.run(attempt).await {
                JobOutcome::Retry { error } if error.contains("planned failure") => {
                    JobOutcome::Succeeded { result: None }
                }
                JobOutcome::Retry { error } if error.contains("always fails") => JobOutcome::Dead { error },
                other => other,
            }
        })
    }
}

/// Layers run in the order added (the first outermost), see the attempt
/// and its outcome, hand values to the job, and rewrite outcomes: a failure
/// swallowed, a retryable error made permanent. A panicking layer fails the
/// attempt, and the pool goes on.
pub async fn layers_wrap_every_attempt<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("layers");
    let log = Seen::new();
    let pool = test_pool(q.clone(), &[&queue])
        .layer(Trace("outer", log.clone()))
        .layer(Trace("inner", log.clone()))
        .layer(Rewrite)
        .start()
        .unwrap();
    let with_header = |seq, act, key: &str, value: &str| {
        let mut job = probe_job(&queue, seq, act).into_new_job(JobOptions::new().queue(&queue)).unwrap();
        job.headers.insert(key.into(), value.into());
        job
    };
    let tagged = q.enqueue_many(vec![with_header(1, Act::Succeed, "tag", "t1")]).await.unwrap().remove(0);
    let swallowed = put(&q, &queue, 2, Act::FailTimes(1), JobOptions::new().max_retries(3)).await;
    let permanent = put(&q, &queue, 3, Act::FailAlways, JobOptions::new().max_retries(5)).await;
    let mut panics = with_header(4, Act::Succeed, "panic", "1");
    panics.max_retries = Some(0);
    let panics = q.enqueue_many(vec![panics]).await.unwrap().remove(0);
    wait_status(&q, &tagged, JobStatus::Succeeded).await;
    let info = wait_status(&q, &swallowed, JobStatus::Succeeded).await;
    assert_eq!(info.attempts, 1, "the failure was swallowed: {info:?}");
    let info = wait_status(&q, &permanent, JobStatus::Dead).await;
    assert_eq!(info.attempts, 1, "made permanent: {info:?}");
    let info = wait_status(&q, &panics, JobStatus::Dead).await;
    assert!(info.last_error().unwrap().contains("a layer panicked on purpose"), "{info:?}");
    let after = put1(&q, &queue, 5, Act::Succeed).await;
    wait_status(&q, &after, JobStatus::Succeeded).await;
    pool.shutdown().await.unwrap();
    let p = probe(&queue);
    let tag = p.starts().into_iter().find(|s| s.id == tagged).and_then(|s| s.tag);
    assert_eq!(tag.as_deref(), Some("t1"), "the layer's value reached the job");
    assert!(!p.starts().iter().any(|s| s.id == panics), "the panicking layer never ran its job");
    let of = |id: &JobId| log.all().into_iter().filter(|(i, _)| i == id).map(|(_, s)| s).collect::<Vec<_>>();
    assert_eq!(of(&tagged), ["outer>", "inner>", "<inner:ok", "<outer:ok"]);
    assert_eq!(of(&swallowed), ["outer>", "inner>", "<inner:ok", "<outer:ok"]);
    assert_eq!(of(&permanent), ["outer>", "inner>", "<inner:dead", "<outer:dead"]);
    assert_eq!(of(&panics), ["outer>", "inner>"], "the panic unwound through the outer layers");
}

/// A `Hooked` queue runs its hooks on every job before it is stored: a
/// stamped header is stored with the job; a refusal refuses the whole
/// batch, typed, and stores nothing of it.
pub async fn hooked_queue_stamps_and_refuses<Q: JobQueue + QueueInspect + QueueAdmin + Clone>(q: Q) {
    let queue = unique_queue("hooked");
    let hooked = Hooked::new(q.clone())
        .hook(|job: &mut NewJob| -> Result<(), HookError> {
            job.headers.insert("tenant".into(), "acme".into());
            Ok(())
        })
        .hook(|job: &mut NewJob| -> Result<(), HookError> {
            match job.headers.get("tenant").map(String::as_str) {
                _ if job.name == "refused_here" => Err("this job is not allowed".into()),
                Some("acme") => Ok(()),
                other => Err(format!("hooks ran out of order: tenant {other:?}").into()),
            }
        });
    let id = put1(&hooked, &queue, 1, Act::Succeed).await;
    assert_eq!(q.job(&id).await.unwrap().unwrap().headers["tenant"], "acme");
    let batch = vec![
        probe_job(&queue, 2, Act::Succeed).into_new_job(JobOptions::new().queue(&queue)).unwrap(),
        raw_job(&queue, "refused_here", b"{}"),
    ];
    let first = batch[0].id.clone();
    match hooked.enqueue_many(batch).await {
        Err(Error::EnqueueRefused { index: 1, name, source }) => {
            assert_eq!(name, "refused_here");
            assert_eq!(source.to_string(), "this job is not allowed");
        }
        other => panic!("expected a refusal of job 1, got {other:?}"),
    }
    assert!(q.job(&first).await.unwrap().is_none(), "nothing of a refused batch is stored");
    assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1);
}
