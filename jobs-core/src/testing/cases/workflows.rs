//! Workflows and batches: steps run only after their dependencies, a dead
//! step cancels exactly its dependants, callbacks fire once, cancels,
//! refused graphs write nothing, releases happen once.

use std::time::Duration;

use crate::error::FlowError;
use crate::flow::{Batch, FlowRun, Step, Workflow};
use crate::job::{JobExt, JobOptions};
use crate::queue::{
    FlowKind, FlowMember, JobQueue, MemberEnd, MemberStatus, NewFlow, OnFailure, QueueInspect, DEPS_HEADER, ON_COMPLETE,
};
use crate::testing::harness::{eventually, probe, test_pool, unique_queue};
use crate::testing::jobs::{Act, GrowJob, JoinJob, ProbeJob};
use crate::vocab::FlowStatus;
use crate::vocab::JobStatus;
use crate::Error;

const WAIT: Duration = Duration::from_secs(20);

fn step(q: &str, name: &str, seq: u64, act: Act) -> Step {
    Step::with_options(name, ProbeJob { key: q.to_owned(), seq, act }, JobOptions::new().queue(q))
}

fn join(q: &str, name: &str, seq: u64, deps: &[(&str, u64)]) -> Step {
    let deps = deps.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    Step::with_options(name, JoinJob { key: q.to_owned(), seq, deps }, JobOptions::new().queue(q))
}

fn flow_error(e: Error) -> FlowError {
    match e {
        Error::Flow(e) => *e,
        other => panic!("expected a flow error, got {other:?}"),
    }
}

/// A diamond and a chain after it: every step runs once, after its
/// dependencies ended, and reads their results.
pub async fn workflow_runs_steps_after_their_dependencies<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let id = unique_queue("diamond");
    let run = Workflow::new(&id)
        .add_step(step(&q, "fetch", 1, Act::Succeed))
        .add_step(step(&q, "parse", 2, Act::Succeed).after(["fetch"]))
        .add_step(step(&q, "thumbs", 3, Act::Succeed).after(["fetch"]))
        .add_step(join(&q, "notify", 10, &[("parse", 2), ("thumbs", 3)]).after(["parse", "thumbs"]))
        .add_step(join(&q, "archive", 20, &[]).after(["notify"]))
        .enqueue(&queue)
        .await
        .unwrap();
    let pool = test_pool(queue.clone(), &[&q]).start().unwrap();
    let done = run.wait(WAIT).await.unwrap();
    pool.shutdown().await.unwrap();
    let info = run.info().await.unwrap();
    assert_eq!(done.status, FlowStatus::Succeeded, "{info:#?}");
    assert_eq!((done.total, done.ended, done.succeeded), (5, 5, 5));
    assert_eq!(run.status().await.unwrap(), info.summary, "the summary alone reads the same");
    assert!(info.members.iter().all(|m| m.status == MemberStatus::Succeeded && m.ended_at.is_some()));
    let mut seqs: Vec<u64> = probe(&q).starts().iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 10, 20], "each step ran once");
    let order: Vec<u64> = probe(&q).starts().iter().map(|s| s.seq).collect();
    assert_eq!(order[0], 1, "the first step first: {order:?}");
    assert_eq!(order[4], 20, "the chain's end last: {order:?}");
    assert_eq!(run.result::<JoinJob>("notify").await.unwrap(), Some(15));
    assert_eq!(run.result::<ProbeJob>("fetch").await.unwrap(), Some(1));
    // A step's job names its place.
    let parse = info.members.iter().find(|m| m.name == "parse").unwrap();
    let job = queue.job(&parse.job).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.flow(), Some((id.as_str(), "parse")), "the step's job names its place");
    assert!(info.members.iter().all(|m| m.released_at.is_some_and(|r| m.ended_at.is_some_and(|e| r <= e))));
    assert_eq!(info.levels().len(), 4);
}

/// A dead step cancels its dependants (and theirs), not the other steps;
/// an edge that continues runs its step; the workflow ends failed.
pub async fn dead_step_cancels_exactly_its_dependants<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let id = unique_queue("dead");
    let run = Workflow::new(&id)
        .add_step(step(&q, "bad", 1, Act::Permanent))
        .add_step(step(&q, "after_bad", 2, Act::Succeed).after(["bad"]))
        .add_step(step(&q, "after_after", 3, Act::Succeed).after(["after_bad"]))
        .add_step(step(&q, "cleanup", 4, Act::Succeed).after_any_end(["bad"]))
        .add_step(step(&q, "other", 5, Act::Succeed))
        .add_step(step(&q, "after_other", 6, Act::Succeed).after(["other"]))
        .enqueue(&queue)
        .await
        .unwrap();
    let pool = test_pool(queue.clone(), &[&q]).start().unwrap();
    let done = run.wait(WAIT).await.unwrap();
    pool.shutdown().await.unwrap();
    assert_eq!(done.status, FlowStatus::Failed);
    let info = run.info().await.unwrap();
    let status = |n: &str| info.members.iter().find(|m| m.name == n).unwrap().status;
    assert_eq!(status("bad"), MemberStatus::Dead);
    assert_eq!(status("after_bad"), MemberStatus::Cancelled);
    assert_eq!(status("after_after"), MemberStatus::Cancelled);
    assert_eq!(status("cleanup"), MemberStatus::Succeeded);
    assert_eq!(status("other"), MemberStatus::Succeeded);
    assert_eq!(status("after_other"), MemberStatus::Succeeded);
    let mut seqs: Vec<u64> = probe(&q).starts().iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 4, 5, 6], "the cancelled steps never ran");
    assert_eq!((done.ended, done.succeeded), (6, 3));
}

/// Bad graphs and ids are refused before anything is stored; an id in use
/// is refused.
pub async fn bad_workflows_are_refused_before_anything_is_written<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let store = queue.flow_store().expect("the backend stores flows");
    let before = store.flows(None, 0, 1000).await.unwrap().len();
    let cycle = Workflow::new(unique_queue("cycle"))
        .add_step(step(&q, "a", 1, Act::Succeed).after(["c"]))
        .add_step(step(&q, "b", 2, Act::Succeed).after(["a"]))
        .add_step(step(&q, "c", 3, Act::Succeed).after(["b"]));
    match flow_error(cycle.enqueue(&queue).await.unwrap_err()) {
        FlowError::Cycle { path, .. } => assert_eq!(path, ["a", "c", "b", "a"]),
        other => panic!("{other:?}"),
    }
    let unknown = Workflow::new(unique_queue("unknown")).add_step(step(&q, "a", 1, Act::Succeed).after(["nope"]));
    assert!(matches!(flow_error(unknown.enqueue(&queue).await.unwrap_err()), FlowError::UnknownDependency { .. }));
    let dup = Workflow::new(unique_queue("dup")).add_step(step(&q, "a", 1, Act::Succeed)).add_step(step(
        &q,
        "a",
        2,
        Act::Succeed,
    ));
    assert!(matches!(flow_error(dup.enqueue(&queue).await.unwrap_err()), FlowError::DuplicateMember { .. }));
    let bad_id = Workflow::new("has space").add_step(step(&q, "a", 1, Act::Succeed));
    assert!(matches!(flow_error(bad_id.enqueue(&queue).await.unwrap_err()), FlowError::InvalidId(_)));
    let empty = Workflow::new(unique_queue("empty"));
    assert!(matches!(flow_error(empty.enqueue(&queue).await.unwrap_err()), FlowError::Empty(_)));
    assert_eq!(store.flows(None, 0, 1000).await.unwrap().len(), before, "nothing stored");
    assert!(queue.list_jobs(&q, JobStatus::Pending, 0, 10).await.unwrap().is_empty(), "no step enqueued");
    let id = unique_queue("taken");
    Workflow::new(&id).add_step(step(&q, "a", 1, Act::Succeed)).enqueue(&queue).await.unwrap();
    let again = Workflow::new(&id).add_step(step(&q, "a", 1, Act::Succeed)).enqueue(&queue).await.unwrap_err();
    assert_eq!(flow_error(again), FlowError::Exists(id));
}

/// Batch callbacks: on_success and on_complete once each when every job
/// succeeded; only on_complete when one died; nothing added once ended.
pub async fn batch_callbacks_fire_exactly_once<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("batch");
    let job = |seq, act| ProbeJob { key: q.clone(), seq, act };
    let on = |_: u64| JobOptions::new().queue(&q).max_retries(0);
    let good = Batch::with_id(unique_queue("good"))
        .on_success_with(job(100, Act::Succeed), on(100))
        .on_complete_with(job(101, Act::Succeed), on(101));
    good.add_with(&queue, (1..=3).map(|s| job(s, Act::Succeed)), JobOptions::new().queue(&q), false).await.unwrap();
    good.add_with(&queue, [job(4, Act::Succeed)], JobOptions::new().queue(&q), false).await.unwrap();
    let bad = Batch::with_id(unique_queue("bad"))
        .on_success_with(job(200, Act::Succeed), on(200))
        .on_complete_with(job(201, Act::Succeed), on(201));
    bad.add_with(
        &queue,
        [job(11, Act::Succeed), job(12, Act::Permanent)],
        JobOptions::new().queue(&q).max_retries(0),
        true,
    )
    .await
    .unwrap();
    let pool = test_pool(queue.clone(), &[&q]).start().unwrap();
    // Open: it has not ended, though every job may have.
    eventually("the open batch's jobs ran", || async { probe(&q).ends().len() >= 6 }).await;
    let good_run = good.close(&queue).await.unwrap();
    let g = good_run.wait(WAIT).await.unwrap();
    let b = FlowRun::open(&queue, bad.id()).await.unwrap().wait(WAIT).await.unwrap();
    assert_eq!((g.status, g.total, g.succeeded), (FlowStatus::Succeeded, 4, 4));
    assert_eq!((b.status, b.total, b.succeeded), (FlowStatus::Failed, 2, 1));
    eventually("the callbacks ran", || async {
        let s = probe(&q).starts();
        [100, 101, 201].iter().all(|c| s.iter().any(|x| x.seq == *c))
    })
    .await;
    let late = good.add_with(&queue, [job(5, Act::Succeed)], JobOptions::new().queue(&q), false).await;
    assert!(matches!(flow_error(late.unwrap_err()), FlowError::Ended { .. }));
    pool.shutdown().await.unwrap();
    let starts = probe(&q).starts();
    for cb in [100, 101, 201] {
        assert_eq!(starts.iter().filter(|s| s.seq == cb).count(), 1, "callback {cb} ran once");
    }
    assert!(!starts.iter().any(|s| s.seq == 200), "on_success of a failed batch never runs");
    let info = good_run.info().await.unwrap();
    assert_eq!(info.summary.kind, FlowKind::Batch);
    assert!(info.callbacks.iter().all(|c| c.status == MemberStatus::Released), "{:?}", info.callbacks);
}

/// Cancelling a workflow cancels its running step and every step after it;
/// nothing after runs.
pub async fn cancelled_workflow_runs_nothing_more<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let id = unique_queue("cancel");
    let run = Workflow::new(&id)
        .add_step(step(&q, "long", 1, Act::WaitForCancel))
        .add_step(step(&q, "next", 2, Act::Succeed).after(["long"]))
        .enqueue(&queue)
        .await
        .unwrap();
    let pool = test_pool(queue.clone(), &[&q]).start().unwrap();
    eventually("the first step started", || async { probe(&q).start_count() == 1 }).await;
    assert!(run.cancel().await.unwrap());
    let done = run.wait(WAIT).await.unwrap();
    pool.shutdown().await.unwrap();
    assert_eq!(done.status, FlowStatus::Cancelled);
    let info = run.info().await.unwrap();
    assert!(info.members.iter().all(|m| m.status == MemberStatus::Cancelled), "{info:#?}");
    assert_eq!(probe(&q).start_count(), 1, "the next step never ran");
    assert!(!run.cancel().await.unwrap(), "an ended workflow is not cancelled again");
    // A step waiting in a queue no pool serves: the cancel ends it, and
    // the workflow, without any relay.
    let idle = unique_queue("unserved");
    let run = Workflow::new(unique_queue("cancel"))
        .add_step(step(&idle, "waiting", 1, Act::Succeed))
        .add_step(step(&idle, "after", 2, Act::Succeed).after(["waiting"]))
        .enqueue(&queue)
        .await
        .unwrap();
    let job = run.info().await.unwrap().members[0].job.clone();
    assert_eq!(queue.job(&job).await.unwrap().unwrap().status, JobStatus::Pending);
    assert!(run.cancel().await.unwrap());
    assert_eq!(run.status().await.unwrap().status, FlowStatus::Cancelled, "ended by the cancel itself");
    assert_eq!(queue.job(&job).await.unwrap().unwrap().status, JobStatus::Cancelled);
    let info = run.info().await.unwrap();
    assert!(info.members.iter().all(|m| m.status == MemberStatus::Cancelled), "{info:#?}");
    assert!(info.members[0].released_at.is_some(), "the first step was released");
}

/// Member `name` of flow `id`: a probe job `seq` of queue `q` that
/// succeeds, after `after` (each cancelling it when it fails).
fn probe_member(q: &str, id: &str, name: &str, seq: u64, after: &[&str]) -> FlowMember {
    let mut job =
        ProbeJob { key: q.to_owned(), seq, act: Act::Succeed }.into_new_job(JobOptions::new().queue(q)).unwrap();
    crate::queue::mark_member(&mut job, id, name, true);
    FlowMember { name: name.into(), job, after: after.iter().map(|a| (a.to_string(), OnFailure::Cancel)).collect() }
}

/// Each end applies once and each member is released once, whatever is
/// repeated: ends applied twice, releases enqueued twice.
pub async fn ends_and_releases_apply_once<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let store = queue.flow_store().expect("the backend stores flows");
    let id = unique_queue("once");
    let member = |name: &str, seq, after: &[&str]| probe_member(&q, &id, name, seq, after);
    let flow = NewFlow {
        id: id.clone(),
        kind: FlowKind::Workflow,
        members: vec![member("a", 1, &[]), member("b", 2, &["a"])],
        closed: true,
        on_success: None,
        on_complete: None,
    };
    let roots = store.create_flow(flow).await.unwrap();
    assert_eq!(roots.iter().map(|r| r.member.as_str()).collect::<Vec<_>>(), ["a"]);
    // The release handed out, enqueued twice (a relay retried): one job.
    let first = queue.enqueue_many(vec![roots[0].job.clone()]).await.unwrap();
    let second = queue.enqueue_many(vec![roots[0].job.clone()]).await.unwrap();
    assert_eq!(first, second);
    // Not reported: handed out again by the stale sweep, then reported.
    let stale = store.stale_releases(Duration::ZERO, 100).await.unwrap();
    assert!(stale.iter().any(|r| r.flow == id && r.member == "a"), "{stale:?}");
    assert!(store.members_released(&roots).await.unwrap().is_empty());
    let stale = store.stale_releases(Duration::ZERO, 100).await.unwrap();
    assert!(!stale.iter().any(|r| r.flow == id), "reported releases are not handed out again: {stale:?}");
    // `a` ends; its end applied twice releases `b` once.
    let end = MemberEnd {
        flow: id.clone(),
        member: "a".into(),
        job: first[0].clone(),
        status: MemberStatus::Succeeded,
        result: Some("1".into()),
    };
    let released = store.members_ended(std::slice::from_ref(&end)).await.unwrap();
    assert_eq!(released.iter().map(|r| r.member.as_str()).collect::<Vec<_>>(), ["b"]);
    let deps = released[0].job.headers.get(DEPS_HEADER).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(deps).unwrap(), serde_json::json!({ "a": 1 }));
    assert!(store.members_ended(std::slice::from_ref(&end)).await.unwrap().is_empty(), "applied once");
    let info = store.flow(&id).await.unwrap().unwrap();
    assert_eq!((info.summary.ended, info.summary.total), (1, 2));
    assert_eq!(info.members[1].status, MemberStatus::Releasing);
}

/// Ends applied together, in one call: a fan-in is released once, only by
/// the call that ends its last dependency, with every dependency's result;
/// a dependant of a dead step in the same call is cancelled, not released;
/// the release reported, its member is released and not handed out again.
pub async fn ends_applied_together_release_a_fan_in_once<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("wf");
    let store = queue.flow_store().expect("the backend stores flows");
    let id = unique_queue("together");
    let member = |name: &str, seq, after: &[&str]| probe_member(&q, &id, name, seq, after);
    let flow = NewFlow {
        id: id.clone(),
        kind: FlowKind::Workflow,
        members: vec![
            member("a1", 1, &[]),
            member("a2", 2, &[]),
            member("a3", 3, &[]),
            member("d", 4, &[]),
            member("z", 5, &["a1", "a2", "a3"]),
            member("v", 6, &["a1", "d"]),
        ],
        closed: true,
        on_success: None,
        on_complete: None,
    };
    let roots = store.create_flow(flow).await.unwrap();
    let mut names: Vec<&str> = roots.iter().map(|r| r.member.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a1", "a2", "a3", "d"]);
    let jobs = queue.enqueue_many(roots.iter().map(|r| r.job.clone()).collect()).await.unwrap();
    assert!(store.members_released(&roots).await.unwrap().is_empty());
    let end = |name: &str, status, result: Option<&str>| {
        let at = roots.iter().position(|r| r.member == name).unwrap();
        MemberEnd {
            flow: id.clone(),
            member: name.into(),
            job: jobs[at].clone(),
            status,
            result: result.map(str::to_owned),
        }
    };
    // Two of z's three dependencies and v's two, in one call: v is
    // cancelled by d, z still waits.
    let first = [
        end("a1", MemberStatus::Succeeded, Some("11")),
        end("d", MemberStatus::Dead, None),
        end("a2", MemberStatus::Succeeded, Some("12")),
    ];
    let released = store.members_ended(&first).await.unwrap();
    assert!(released.is_empty(), "nothing may start yet: {released:?}");
    // The last one, sent twice in the same call: z once, with all three.
    let last = [end("a3", MemberStatus::Succeeded, Some("13")), end("a3", MemberStatus::Succeeded, Some("13"))];
    let released = store.members_ended(&last).await.unwrap();
    assert_eq!(released.iter().map(|r| r.member.as_str()).collect::<Vec<_>>(), ["z"]);
    let deps = released[0].job.headers.get(DEPS_HEADER).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(deps).unwrap(),
        serde_json::json!({ "a1": 11, "a2": 12, "a3": 13 })
    );
    assert!(store.members_ended(&first).await.unwrap().is_empty(), "applied once");
    assert!(store.members_ended(&last).await.unwrap().is_empty(), "applied once");
    let status =
        |info: &crate::queue::FlowInfo, name: &str| info.members.iter().find(|m| m.name == name).unwrap().status;
    let info = store.flow(&id).await.unwrap().unwrap();
    assert_eq!(status(&info, "z"), MemberStatus::Releasing);
    assert_eq!(status(&info, "v"), MemberStatus::Cancelled);
    assert_eq!(status(&info, "d"), MemberStatus::Dead);
    assert_eq!((info.summary.ended, info.summary.total), (5, 6));
    assert!(store.members_released(&released).await.unwrap().is_empty());
    let info = store.flow(&id).await.unwrap().unwrap();
    assert_eq!(status(&info, "z"), MemberStatus::Released);
    let stale = store.stale_releases(Duration::ZERO, 100).await.unwrap();
    assert!(!stale.iter().any(|r| r.flow == id), "reported releases are not handed out again: {stale:?}");
}

/// A batch job adds jobs to its own batch while it runs: the batch, closed
/// already, waits for them too, then fires its callback once.
pub async fn batch_grows_from_inside_its_jobs<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("grow");
    let batch = Batch::with_id(unique_queue("grow"))
        .on_complete_with(ProbeJob { key: q.clone(), seq: 900, act: Act::Succeed }, JobOptions::new().queue(&q));
    let grow = GrowJob { key: q.clone(), seq: 1, more: 3 };
    batch.add_with(&queue, [grow], JobOptions::new().queue(&q), true).await.unwrap();
    let run = FlowRun::open(&queue, batch.id()).await.unwrap();
    let pool = test_pool(queue.clone(), &[&q]).start().unwrap();
    let done = run.wait(WAIT).await.unwrap();
    eventually("the callback ran", || async { probe(&q).starts().iter().any(|s| s.seq == 900) }).await;
    pool.shutdown().await.unwrap();
    assert_eq!((done.status, done.total, done.succeeded), (FlowStatus::Succeeded, 4, 4), "the added jobs counted");
    let starts = probe(&q).starts();
    let mut seqs: Vec<u64> = starts.iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 900], "every job and the callback once");
    let callback = starts.iter().find(|s| s.seq == 900).unwrap().order;
    assert!(starts.iter().filter(|s| s.seq != 900).all(|s| s.order < callback), "the callback came last");
}

/// A page of a flow's members, or one member by name, reads as the same
/// members of the whole flow; the summary still counts every member.
pub async fn flows_are_read_a_page_or_a_member_at_a_time<Q: JobQueue + QueueInspect + Clone>(queue: Q) {
    let q = unique_queue("page");
    let store = queue.flow_store().expect("the backend stores flows");
    let id = unique_queue("paged");
    let job = |name: &str, seq| {
        let mut job =
            ProbeJob { key: q.clone(), seq, act: Act::Succeed }.into_new_job(JobOptions::new().queue(&q)).unwrap();
        crate::queue::mark_member(&mut job, &id, name, name != ON_COMPLETE);
        job
    };
    let members: Vec<FlowMember> = (0..5)
        .map(|i| FlowMember { name: format!("m{i}"), job: job(&format!("m{i}"), i), after: Vec::new() })
        .collect();
    let flow = NewFlow {
        id: id.clone(),
        kind: FlowKind::Batch,
        members,
        closed: false,
        on_success: None,
        on_complete: Some(job(ON_COMPLETE, 99)),
    };
    store.create_flow(flow).await.unwrap();
    let whole = store.flow(&id).await.unwrap().unwrap();
    assert_eq!(whole.members.len(), 5);
    let names = |info: &crate::queue::FlowInfo| info.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    for (offset, limit, want) in [(0, 2, 0..2), (3, 10, 3..5), (0, 0, 0..0), (5, 3, 5..5), (1, 3, 1..4)] {
        let page = store.flow_page(&id, offset, limit).await.unwrap().expect("stored");
        assert_eq!(page.members, whole.members[want.clone()], "page {offset}+{limit}: {:?}", names(&page));
        assert_eq!(page.summary, whole.summary, "the summary counts every member");
        assert_eq!(page.callbacks, whole.callbacks, "callbacks come with every page");
    }
    for m in &whole.members {
        assert_eq!(store.flow_member(&id, &m.name).await.unwrap().as_ref(), Some(m));
    }
    assert_eq!(store.flow_member(&id, ON_COMPLETE).await.unwrap().as_ref(), whole.callbacks.first());
    assert_eq!(whole.callbacks.len(), 1);
    assert_eq!(store.flow_member(&id, "@on_success").await.unwrap(), None, "no such callback");
    assert_eq!(store.flow_member(&id, "m9").await.unwrap(), None);
    assert_eq!(store.flow_member("no-such-flow", "m1").await.unwrap(), None);
    assert_eq!(store.flow_page("no-such-flow", 0, 10).await.unwrap(), None);
    // The typed read goes through the member read.
    let run = FlowRun::open(&queue, &id).await.unwrap();
    assert_eq!(run.result::<ProbeJob>("m2").await.unwrap(), None, "not succeeded");
    assert!(matches!(run.result::<ProbeJob>("m9").await.unwrap_err(), Error::InvalidArgument(_)));
    let missing = FlowRun::open(&queue, "no-such-flow").await.unwrap_err();
    assert!(matches!(flow_error(missing), FlowError::NotFound(_)));
    assert!(store.cancel_flow(&id).await.unwrap());
}
