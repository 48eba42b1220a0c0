//! `workflows list|show|cancel` and `batches list|show|cancel`, on
//! MemoryQueue and on Redis; and a backend without a flow store.

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::{FlowRun, SharedQueue, WorkerHandle};
use serde_json::json;

use crate::support::{cli, fits_80, on_every_backend, wait_until};

on_every_backend!(workflows, batches, kinds_and_bad_ids);

/// A step that succeeds with its number.
#[job(queue = "flows")]
async fn flow_step(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// A step that fails for good.
#[job(queue = "flows")]
async fn flow_breaks() -> Result<(), JobError> {
    Err(JobError::permanent("broken on purpose"))
}

/// Runs until cancelled: what keeps a workflow or batch running while a
/// pool serves it.
#[job(queue = "flows")]
async fn flow_hangs(ctx: JobContext) -> Result<(), JobError> {
    ctx.cancelled().await;
    Ok(())
}

/// Waits on the `parked` queue, which no pool serves: what keeps a
/// workflow or batch running for as long as a test needs.
#[job(queue = "parked")]
async fn parked_step(n: u32) -> Result<(), JobError> {
    let _ = n;
    Ok(())
}

/// A pool serving `flows` (its relay releases the steps), with a short
/// lease: a running job hears of its cancellation at the next renewal.
fn pool(q: &SharedQueue) -> WorkerHandle {
    WorkerPool::builder(q.clone())
        .queues(["flows"])
        .workers(2)
        .lease(Duration::from_secs(1))
        .data(crate::Factor(2))
        .start()
        .unwrap()
}

/// Checks that every flow command on `q`, a backend without a flow
/// store, says so (exit 1).
async fn says_unsupported(q: &SharedQueue) {
    assert!(q.flow_store().is_none());
    let msg = "error: this backend stores no workflows or batches (use MemoryQueue or RedisQueue)";
    for args in [
        &["workflows", "list"][..],
        &["workflows", "show", "w1"],
        &["workflows", "cancel", "w1", "--json"],
        &["batches", "list", "--json"],
        &["batches", "show", "b1"],
    ] {
        assert_eq!(cli(q, args).await.fails(1), msg, "{args:?}");
    }
}

async fn status_of(run: &FlowRun) -> jobs_core::FlowStatus {
    run.status().await.unwrap().status
}

async fn workflows(q: SharedQueue) {
    assert!(q.flow_store().is_some(), "this backend stores workflows and batches");
    let pool = pool(&q);
    assert_eq!(cli(&q, &["workflows", "list"]).await.ok(), "no workflows\n");

    // One that runs to its end: a diamond.
    let done = Workflow::new("import-1")
        .step("fetch", FlowStep { n: 1 })
        .step_after("parse", FlowStep { n: 2 }, ["fetch"])
        .step_after("thumbs", FlowStep { n: 3 }, ["fetch"])
        .step_after("notify", FlowStep { n: 4 }, ["parse", "thumbs"])
        .enqueue(&q)
        .await
        .unwrap();
    done.wait(Duration::from_secs(10)).await.unwrap();
    // One that fails: its dependant is cancelled, the one after any end runs.
    let failed = Workflow::new("import-2")
        .step("fetch", FlowBreaks {})
        .step_after("parse", FlowStep { n: 2 }, ["fetch"])
        .add_step(Step::new("report", FlowStep { n: 9 }).after_any_end(["fetch"]))
        .enqueue(&q)
        .await
        .unwrap();
    failed.wait(Duration::from_secs(10)).await.unwrap();
    // One that runs until cancelled.
    let parked = Workflow::new("import-3")
        .step("wait", FlowHangs {})
        .step_after("after", FlowStep { n: 5 }, ["wait"])
        .enqueue(&q)
        .await
        .unwrap();
    wait_until("the first step runs", || async {
        let job = parked.info().await.unwrap().members[0].job.clone();
        q.job(&job).await.unwrap().is_some_and(|j| j.status == jobs_core::JobStatus::Running)
    })
    .await;

    // list: newest first, every column, fits a terminal.
    let text = cli(&q, &["workflows", "list"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "STATUS", "ENDED/TOTAL", "OK", "CREATED", "FINISHED"]
    );
    let words = |l: &str| l.split_whitespace().take(4).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(lines[1]), ["import-3", "running", "0/2", "0"], "{text}");
    assert_eq!(words(lines[2]), ["import-2", "failed", "3/3", "1"], "{text}");
    assert_eq!(words(lines[3]), ["import-1", "succeeded", "4/4", "4"], "{text}");
    assert!(lines[1].ends_with(" -"), "running: not finished:\n{text}");
    assert_eq!(lines.len(), 4, "{text}");

    let doc = cli(&q, &["workflows", "list", "--json"]).await.json();
    assert_eq!((doc["kind"].clone(), doc["has_more"].clone()), (json!("workflow"), json!(false)));
    let ids: Vec<&str> = doc["flows"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["import-3", "import-2", "import-1"]);
    let first = &doc["flows"][2];
    assert_eq!(
        (first["status"].clone(), first["total"].clone(), first["ended"].clone(), first["succeeded"].clone()),
        (json!("succeeded"), json!(4), json!(4), json!(4))
    );
    assert!(first["created_at"].as_str().unwrap().ends_with('Z') && first["ended_at"].is_string(), "{first}");
    assert_eq!(doc["flows"][0]["ended_at"], json!(null));

    // --status, --limit, --offset.
    let doc = cli(&q, &["workflows", "list", "--status", "failed", "--json"]).await.json();
    assert_eq!(doc["flows"].as_array().unwrap().len(), 1);
    assert_eq!(doc["flows"][0]["id"], "import-2");
    let out = cli(&q, &["workflows", "list", "--limit", "1"]).await;
    assert_eq!(out.ok().lines().count(), 2, "{out:?}");
    assert_eq!(out.err, "more workflows follow: --offset 1 shows the next ones\n");
    let doc = cli(&q, &["workflows", "list", "--limit", "1", "--offset", "1", "--json"]).await.json();
    assert_eq!((doc["flows"][0]["id"].clone(), doc["has_more"].clone()), (json!("import-2"), json!(true)));
    let doc = cli(&q, &["workflows", "list", "--status", "running", "--offset", "1", "--json"]).await.json();
    assert_eq!(doc["flows"], json!([]));
    assert_eq!(cli(&q, &["workflows", "list", "--status", "cancelled"]).await.ok(), "no workflows are cancelled\n");
    let out = cli(&q, &["workflows", "list", "--status", "done"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.err.contains("write running, succeeded, failed or cancelled"), "{out:?}");
    assert_eq!(cli(&q, &["batches", "list"]).await.ok(), "no batches\n", "workflows are no batches");

    // show: the summary, then every step by level with its job id.
    let text = cli(&q, &["workflows", "show", "import-1"]).await.ok().to_owned();
    fits_80(&text);
    assert!(text.starts_with("workflow  import-1\nstatus    succeeded\n"), "{text}");
    assert!(text.contains("progress  4 of 4 steps ended (100%), 4 succeeded\n"), "{text}");
    assert!(text.contains("\ncreated   ") && text.contains("\nended     "), "{text}");
    let info = done.info().await.unwrap();
    let table: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("steps by dependency level")).skip(1).collect();
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["LVL", "STEP", "JOB", "STATUS", "AFTER", "RELEASED", "ENDED"]
    );
    let rows: Vec<Vec<&str>> = table[1..].iter().step_by(2).map(|l| l.split_whitespace().take(5).collect()).collect();
    assert_eq!(
        rows,
        [
            ["0", "fetch", "flow_step", "succeeded", "-"],
            ["1", "parse", "flow_step", "succeeded", "fetch"],
            ["1", "thumbs", "flow_step", "succeeded", "fetch"],
            ["2", "notify", "flow_step", "succeeded", "parse,"],
        ],
        "{text}"
    );
    assert!(table[7].contains("parse, thumbs"), "{text}");
    for (i, name) in ["fetch", "parse", "thumbs", "notify"].iter().enumerate() {
        let m = info.members.iter().find(|m| m.name == *name).unwrap();
        assert_eq!(table[2 + 2 * i], format!("    job {}", m.job), "{text}");
    }
    let text = cli(&q, &["workflows", "show", "import-2"]).await.ok().to_owned();
    fits_80(&text);
    assert!(text.contains("status    failed\n"), "{text}");
    let line = |name: &str| text.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap().to_owned();
    assert!(line("fetch").contains(" dead "), "{text}");
    let parse: Vec<String> = line("parse").split_whitespace().map(str::to_owned).collect();
    assert_eq!((parse[3].as_str(), parse[5].as_str()), ("cancelled", "-"), "never released:\n{text}");
    assert!(line("report").contains(" succeeded ") && line("report").contains("fetch (any end)"), "{text}");

    let doc = cli(&q, &["workflows", "show", "import-1", "--json"]).await.json();
    assert_eq!(
        (doc["id"].clone(), doc["kind"].clone(), doc["status"].clone()),
        (json!("import-1"), json!("workflow"), json!("succeeded"))
    );
    let notify = &doc["members"][3];
    assert_eq!(notify["name"], "notify");
    assert_eq!(notify["level"], 2);
    assert_eq!(
        notify["after"],
        json!([{ "step": "parse", "on_failure": "cancel" }, { "step": "thumbs", "on_failure": "cancel" }])
    );
    assert_eq!(notify["job"], info.members[3].job.to_string());
    assert!(notify["released_at"].is_string() && notify["ended_at"].is_string(), "{notify}");
    assert_eq!(doc["callbacks"], json!([]));

    // cancel: the parked workflow; its waiting step never runs.
    let out = cli(&q, &["workflows", "cancel", "import-3"]).await;
    assert_eq!(
        out.ok(),
        "cancelled workflow `import-3`: what was not enqueued yet never runs; running jobs are told to stop\n"
    );
    // It ends once its running step has stopped.
    wait_until("the workflow ends cancelled", || async {
        status_of(&parked).await == jobs_core::FlowStatus::Cancelled
    })
    .await;
    let doc = cli(&q, &["workflows", "cancel", "import-3", "--json"]).await.json();
    assert_eq!(doc, json!({ "id": "import-3", "kind": "workflow", "outcome": "already_cancelled" }));
    assert_eq!(cli(&q, &["workflows", "cancel", "import-3"]).await.ok(), "workflow `import-3` was cancelled already\n");
    let out = cli(&q, &["workflows", "cancel", "import-1"]).await;
    assert_eq!(out.fails(1), "error: workflow `import-1` has ended (succeeded): nothing to cancel");
    let text = cli(&q, &["workflows", "show", "import-3"]).await.ok().to_owned();
    assert!(text.contains("status    cancelled\n"), "{text}");
    let after: Vec<&str> =
        text.lines().find(|l| l.split_whitespace().nth(1) == Some("after")).unwrap().split_whitespace().collect();
    assert_eq!((after[3], after[5]), ("cancelled", "-"), "never released:\n{text}");
    pool.shutdown().await.unwrap();
}

async fn batches(q: SharedQueue) {
    assert!(q.flow_store().is_some(), "this backend stores workflows and batches");
    let pool = pool(&q);
    // One that ran: four jobs and a callback.
    let batch = Batch::with_id("invoices").on_complete(FlowStep { n: 100 });
    let ids = batch.add(&q, (1..=4).map(|n| FlowStep { n })).await.unwrap();
    let run = batch.close(&q).await.unwrap();
    run.wait(Duration::from_secs(10)).await.unwrap();
    // A callback's own status stays `released`: its job tells how it went.
    wait_until("the callback's job succeeded", || async {
        let job = run.info().await.unwrap().callbacks[0].job.clone();
        q.job(&job).await.unwrap().is_some_and(|j| j.status == jobs_core::JobStatus::Succeeded)
    })
    .await;
    // One still open, with a job that runs until cancelled.
    let open = Batch::with_id("nightly").on_success(FlowStep { n: 7 });
    open.add(&q, [FlowHangs {}]).await.unwrap();

    let text = cli(&q, &["batches", "list"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("nightly") && lines[1].contains("running (open)"), "{text}");
    assert!(lines[2].starts_with("invoices") && lines[2].contains(" succeeded ") && lines[2].contains("4/4"), "{text}");

    let text = cli(&q, &["batches", "show", "invoices"]).await.ok().to_owned();
    fits_80(&text);
    assert!(text.starts_with("batch     invoices\nstatus    succeeded\n"), "{text}");
    assert!(text.contains("progress  4 of 4 jobs ended (100%), 4 succeeded\n"), "{text}");
    let callbacks: Vec<&str> =
        text.lines().skip_while(|l| !l.starts_with("callbacks")).skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(callbacks[0].split_whitespace().collect::<Vec<_>>(), ["CALLBACK", "JOB", "STATUS", "ENDED"], "{text}");
    assert_eq!(callbacks[1].split_whitespace().take(3).collect::<Vec<_>>(), ["@on_complete", "flow_step", "job"]);
    assert!(callbacks[1].contains(" job succeeded "), "{text}");
    assert!(callbacks[2].starts_with("    job flows:"), "{text}");
    let jobs: Vec<&str> = text.lines().skip_while(|l| *l != "jobs (4):").skip(1).collect();
    assert_eq!(jobs[0].split_whitespace().collect::<Vec<_>>(), ["JOB", "ID", "JOB", "STATUS", "ENDED"], "{text}");
    for id in &ids {
        assert!(jobs.iter().any(|l| l.starts_with(&id.to_string()) && l.contains(" succeeded ")), "{id}:\n{text}");
    }

    let text = cli(&q, &["batches", "show", "nightly"]).await.ok().to_owned();
    assert!(text.contains("status    running (open: it takes more jobs)\n"), "{text}");
    assert!(text.contains("progress  0 of 1 jobs ended (0%), 0 succeeded\n"), "{text}");
    assert!(text.contains("@on_success") && text.contains("waiting"), "{text}");

    let doc = cli(&q, &["batches", "show", "invoices", "--json"]).await.json();
    assert_eq!(
        (doc["kind"].clone(), doc["closed"].clone(), doc["total"].clone()),
        (json!("batch"), json!(true), json!(4))
    );
    assert_eq!(doc["members"].as_array().unwrap().len(), 4);
    assert_eq!(doc["members"][0].get("level"), None, "batch members have no level");
    assert_eq!(doc["callbacks"][0]["name"], "@on_complete");
    assert_eq!(doc["callbacks"][0]["status"], "released");
    assert_eq!(doc["callbacks"][0]["job_status"], "succeeded");

    let doc = cli(&q, &["batches", "cancel", "nightly", "--json"]).await.json();
    assert_eq!(doc, json!({ "id": "nightly", "kind": "batch", "outcome": "cancelled" }));
    wait_until("the batch ends cancelled", || async {
        FlowRun::open(&q, "nightly").await.unwrap().status().await.unwrap().status == jobs_core::FlowStatus::Cancelled
    })
    .await;
    let text = cli(&q, &["batches", "show", "nightly"]).await.ok().to_owned();
    assert!(text.contains("@on_success") && text.contains(" cancelled "), "no callback fires:\n{text}");
    let out = cli(&q, &["batches", "cancel", "invoices"]).await;
    assert_eq!(out.fails(1), "error: batch `invoices` has ended (succeeded): nothing to cancel");
    let doc = cli(&q, &["batches", "list", "--status", "cancelled", "--json"]).await.json();
    assert_eq!(doc["flows"][0]["id"], "nightly");
    pool.shutdown().await.unwrap();
}

async fn kinds_and_bad_ids(q: SharedQueue) {
    assert!(q.flow_store().is_some(), "this backend stores workflows and batches");
    Workflow::new("wf").step("only", ParkedStep { n: 1 }).enqueue(&q).await.unwrap();
    Batch::with_id("bt").add(&q, [ParkedStep { n: 2 }]).await.unwrap();
    for (cmd, id) in [("workflows", "nope"), ("batches", "nope")] {
        for action in ["show", "cancel"] {
            let out = cli(&q, &[cmd, action, id]).await;
            assert_eq!(out.fails(1), "error: no workflow or batch `nope`", "{cmd} {action}");
        }
    }
    let out = cli(&q, &["workflows", "show", "bt"]).await;
    assert_eq!(out.fails(1), "error: `bt` is a batch, not a workflow (`jobs batches show bt` shows it)");
    let out = cli(&q, &["batches", "cancel", "wf"]).await;
    assert_eq!(out.fails(1), "error: `wf` is a workflow, not a batch (`jobs workflows show wf` shows it)");
    assert_eq!(
        jobs_core::FlowRun::open(&q, "wf").await.unwrap().status().await.unwrap().status,
        jobs_core::FlowStatus::Running,
        "the wrong kind cancels nothing"
    );
    let out = cli(&q, &["workflows", "show", "bad id!"]).await;
    assert!(out.fails(2).starts_with("error: invalid workflow or batch id `bad id!`"), "{out:?}");
}

/// A backend without a flow store: every command says so, exit 1.
#[tokio::test]
async fn a_backend_without_flows_says_so() {
    let q: SharedQueue = std::sync::Arc::new(jobs_core::testing::Faulty::new(MemoryQueue::new()).without_flows());
    says_unsupported(&q).await;
}
