//! The Workflows pages in headless Chromium: the list shows a running
//! workflow and an ended batch; the workflow's page lays its steps out by
//! dependency level with their statuses and links to their jobs, and its
//! Cancel (with the admin token) ends it cancelled; the batch's page shows
//! its progress, its callback's job status and its jobs.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `browser`); fails,
//! never skips, without them. `JOBS_WEB_SCREENSHOTS=1` also saves the
//! workflow and batch pages as PNG under `docs/screenshots/`.

mod browser;
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use browser::Browser;
use common::eventually;
use jobs_core::prelude::*;
use jobs_core::{JobStatus, SharedQueue};
use jobs_web::{Server, WebState};

const TOKEN: &str = "e2e-flows-token-51c2";
/// Under 200 KB each, so the repository stays light.
const MAX_SCREENSHOT: usize = 200 * 1024;

fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("JOBS_WEB_SCREENSHOTS")
        .map(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots")))
}

/// A step that succeeds.
#[job(queue = "deploys")]
async fn deploy_step(what: String) -> Result<(), JobError> {
    let _ = what;
    Ok(())
}

/// Runs until cancelled.
#[job(queue = "deploys")]
async fn deploy_wait(ctx: JobContext) -> Result<(), JobError> {
    ctx.cancelled().await;
    Ok(())
}

async fn job_status(queue: &SharedQueue, id: &JobId) -> Option<JobStatus> {
    queue.job(id).await.expect("read").map(|j| j.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_and_batch_pages_in_headless_chromium() {
    let shots = screenshot_dir();
    let shots = shots.as_deref();
    let mut shot_sizes = Vec::new();
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let pool = WorkerPool::builder(queue.clone())
        .queues(["deploys"])
        .workers(3)
        // Running jobs hear of a cancel at the next renewal: a third of this.
        .lease(Duration::from_secs(1))
        .grace_period(Duration::from_millis(200))
        .start()
        .expect("pool starts");
    let batch = Batch::with_id("emails").on_complete(DeployStep { what: "report".into() });
    batch.add(&queue, ["a", "b", "c"].map(|w| DeployStep { what: w.into() })).await.expect("added");
    let emails = batch.close(&queue).await.expect("closed");
    emails.wait(Duration::from_secs(10)).await.expect("ends");
    let callback = emails.info().await.expect("info").callbacks[0].job.clone();
    eventually("the callback succeeded", || async {
        job_status(&queue, &callback).await == Some(JobStatus::Succeeded)
    })
    .await;
    let deploy = Workflow::new("deploy-7")
        .step("build", DeployStep { what: "build".into() })
        .step_after("test", DeployStep { what: "test".into() }, ["build"])
        .step_after("lint", DeployStep { what: "lint".into() }, ["build"])
        .step_after("approve", DeployWait {}, ["test", "lint"])
        .step_after("ship", DeployStep { what: "ship".into() }, ["approve"])
        .enqueue(&queue)
        .await
        .expect("enqueued");
    let approve = deploy.info().await.expect("info").members[3].job.clone();
    eventually("the approval runs", || async { job_status(&queue, &approve).await == Some(JobStatus::Running) }).await;

    let state = WebState::new(queue.clone()).admin_token(TOKEN);
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), state).await.expect("binds");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let b = Browser::start(1280, 960).await;

    // The list: both, newest first.
    b.client.goto(&format!("http://{addr}/ui/")).await.expect("opens the dashboard");
    b.click("nav a[data-nav='flows']", "the workflows link").await;
    let row = b.wait_text("#flows tr[data-flow='deploy-7']", "the workflow listed", |t| t.contains("running")).await;
    assert!(row.contains("workflow") && row.contains("3 / 5"), "{row}");
    let row = b.wait_text("#flows tr[data-flow='emails']", "the batch listed", |t| t.contains("succeeded")).await;
    assert!(row.contains("batch") && row.contains("3 / 3"), "{row}");
    let first = b.wait_text("#flows tbody tr", "the first row", |t| !t.is_empty()).await;
    assert!(first.starts_with("deploy-7"), "newest first: {first}");
    shot_sizes.push(b.screenshot(shots, "flows").await);
    b.click("nav.tabs a[data-kind='batch']", "the batches tab").await;
    b.wait_text("#flows tbody", "batches only", |t| t.contains("emails") && !t.contains("deploy-7")).await;

    // The workflow: one column per level, each step with its status.
    b.client.goto(&format!("http://{addr}/ui/#/flows/deploy-7")).await.expect("opens the workflow");
    b.wait_text("#flow-status", "the workflow running", |t| t == "running").await;
    let step = |name: &str| format!("#levels .step[data-step='{name}']");
    for (level, names) in [(0, &["build"][..]), (1, &["test", "lint"]), (2, &["approve"]), (3, &["ship"])] {
        for name in names {
            let css = format!("#levels section.level[data-level='{level}'] .step[data-step='{name}']");
            b.wait_for(&css, "a step in its level's column").await;
        }
    }
    assert_eq!(b.count("#levels section.level").await, 4, "four levels");
    b.wait_for(&format!("{}[data-status='succeeded']", step("build")), "build succeeded").await;
    b.wait_for(&format!("{}[data-status='released']", step("approve")), "the approval enqueued").await;
    b.wait_for(&format!("{}[data-status='waiting']", step("ship")), "ship waiting").await;
    let card = b.wait_text(&step("approve"), "the approval's card", |t| t.contains("deploy_wait")).await;
    assert!(card.contains("after test, lint") && card.contains("released"), "{card}");
    shot_sizes.push(b.screenshot(shots, "workflow").await);
    let href = b.wait_for(&step("approve"), "the card").await.attr("href").await.expect("attr");
    assert_eq!(href.as_deref(), Some(format!("#/jobs/{}", approve.to_string().replace(':', "%3A")).as_str()));
    assert_eq!(
        b.count(&format!("a{}", step("ship").trim_start_matches("#levels "))).await,
        0,
        "no link to a job not enqueued"
    );
    assert_eq!(b.count("#levels a.step").await, 4, "a link to each enqueued step's job");

    // Cancel with the token: the running approval stops, ship never runs.
    b.click("button[data-action='cancel-flow']", "the cancel button").await;
    b.wait_text("dialog#confirm[open] #confirm-text", "the confirmation", |t| t.contains("never runs")).await;
    b.wait_for("#confirm-token", "the token field").await.send_keys(TOKEN).await.expect("types the token");
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#flash.ok", "the cancel accepted", |t| t.contains("deploy-7 cancelled")).await;
    b.wait_text("#flow-status", "the workflow cancelled", |t| t == "cancelled").await;
    b.wait_for(&format!("{}[data-status='cancelled']", step("ship")), "ship cancelled").await;
    assert_eq!(b.count("button[data-action='cancel-flow']").await, 0, "no cancel once ended");
    assert_eq!(deploy.status().await.expect("status").status, FlowStatus::Cancelled);

    // The batch: progress, callback, jobs.
    b.client.goto(&format!("http://{addr}/ui/#/flows/emails")).await.expect("opens the batch");
    b.wait_text("#flow-kind", "a batch", |t| t == "Batch").await;
    let progress = b.wait_text("#batch-progress", "the progress", |t| t.contains("100%")).await;
    assert!(progress.contains("3 of 3 jobs ended, 3 succeeded"), "{progress}");
    b.wait_text("#callbacks tr[data-callback='@on_complete']", "the callback", |t| {
        t.contains("deploy_step") && t.contains("succeeded")
    })
    .await;
    assert_eq!(b.count("#members tbody tr").await, 3, "three jobs");
    assert_eq!(b.count("#members tbody a[href*='jobs/']").await, 3, "each links to its job");
    shot_sizes.push(b.screenshot(shots, "batch").await);
    assert_eq!(b.count("button[data-action='cancel-flow']").await, 0, "an ended batch has no cancel");

    // An unknown id says so.
    b.client.goto(&format!("http://{addr}/ui/#/flows/nope")).await.expect("opens nothing");
    b.wait_text("#page", "the 404", |t| t.contains("no workflow or batch `nope`")).await;

    b.close().await;
    let _ = stop.send(());
    serving.await.expect("joined").expect("served");
    pool.shutdown().await.expect("clean shutdown");
    for size in shot_sizes.into_iter().flatten() {
        assert!(size < MAX_SCREENSHOT, "a screenshot of {size} bytes: keep them under {MAX_SCREENSHOT}");
    }
}
