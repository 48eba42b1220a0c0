//! The dashboard end to end in headless Chromium: the app served on a real
//! socket over a seeded `MemoryQueue` with a running pool; the overview
//! shows the seeded counts; a dead job's retry is refused without the admin
//! token (the page shows the 401 and the job stays dead) and, with it, the
//! job runs again and the page shows it succeeded; a schedule whose job no
//! live pool runs shows an `orphaned` badge and is removed from its page.
//! With reads requiring
//! the token, the page asks for it (and again after a wrong one) before it
//! shows any data, and a job's `#[redact]` field shows as `[redacted]`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `browser`); fails,
//! never skips, without them. `JOBS_WEB_SCREENSHOTS=1` also saves the main
//! pages as PNG under `docs/screenshots/`.

mod browser;
mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use browser::Browser;
use common::eventually;
use jobs_core::prelude::*;
use jobs_core::{Backoff, JobStatus, Overlap, ScheduleDef, ScheduleOptions, Scheduler, SharedQueue};
use jobs_web::{Server, WebState};
use serde::Serialize;

const TOKEN: &str = "e2e-admin-token-7f3a";
/// Under 200 KB each, so the repository stays light.
const MAX_SCREENSHOT: usize = 200 * 1024;

/// Whether the next charge fails: the first one does, for good.
static DECLINE_NEXT: AtomicBool = AtomicBool::new(true);

#[derive(Serialize)]
struct Receipt {
    charged_cents: u64,
    reference: String,
}

/// Fails permanently the first time (dead at once), succeeds once retried.
#[job(queue = "billing", priority = "high")]
async fn charge_card(customer: String, amount_cents: u64, note: String) -> Result<Receipt, JobError> {
    let _ = note;
    if DECLINE_NEXT.swap(false, Ordering::SeqCst) {
        return Err(JobError::permanent("card declined by <issuer>: \"do not honor\" (code 05)"));
    }
    Ok(Receipt { charged_cents: amount_cents, reference: format!("ch_{customer}_1") })
}

/// Succeeds on its second attempt.
#[job(queue = "billing", retries = 3)]
async fn send_invoice(ctx: JobContext, invoice: u32) -> Result<(), JobError> {
    if ctx.attempt() == 1 {
        return Err(JobError::retryable(format!("SMTP 451: try again later (invoice {invoice})")));
    }
    Ok(())
}

/// Moves the ledger export on by one month.
static NEXT_MONTH: std::sync::LazyLock<tokio::sync::Notify> = std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Runs until the pool shuts down: a job to see on the workers page, whose
/// progress (a note with markup, shown as text) moves when the test says.
#[job(queue = "billing")]
async fn export_ledger(ctx: JobContext, year: u32) -> Result<(), JobError> {
    ctx.progress(0.4, format!("ledger {year}: <b>4</b> of 10 months")).await?;
    tokio::select! {
        _ = ctx.cancelled() => return Ok(()),
        _ = NEXT_MONTH.notified() => {}
    }
    ctx.progress(0.5, format!("ledger {year}: 5 of 10 months")).await?;
    ctx.cancelled().await;
    Ok(())
}

/// Waits in the unserved `vault` queue; its key is never shown.
#[job(queue = "vault")]
async fn rotate_key(user: String, #[redact] api_key: String) -> Result<(), JobError> {
    let _ = (user, api_key);
    Ok(())
}

/// Waits in the unserved `sync` queue, grouped by account.
#[job(queue = "sync", group = account, concurrency = 3)]
async fn sync_account(account: String) -> Result<(), JobError> {
    let _ = account;
    Ok(())
}

/// Sits in the paused, unserved `reports` queue.
#[job(queue = "reports")]
async fn build_report(name: String) -> Result<(), JobError> {
    let _ = name;
    Ok(())
}

fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("JOBS_WEB_SCREENSHOTS")
        .map(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots")))
}

async fn status_of(queue: &SharedQueue, id: &JobId) -> JobStatus {
    queue.job(id).await.expect("read").expect("job kept").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    let started = Instant::now();
    let shots = screenshot_dir();
    let shots = shots.as_deref();
    let mut shot_sizes = Vec::new();

    // Seed: a served queue with succeeded, retried, dead and running jobs; a
    // paused queue nobody serves with a backlog; three schedules, one of them
    // for a job no pool runs.
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    for name in ["daily-sales", "weekly-churn"] {
        BuildReport { name: name.into() }.enqueue(&queue).await.expect("enqueue");
    }
    BuildReport { name: "board-pack".into() }
        .enqueue_with(&queue, JobOptions::new().priority(Priority::High))
        .await
        .expect("enqueue");
    BuildReport { name: "quarterly".into() }
        .enqueue_with(&queue, JobOptions::new().delay(Duration::from_secs(3600)))
        .await
        .expect("enqueue");
    queue.pause("reports").await.expect("pause");
    let scheduler = Scheduler::new(queue.clone());
    scheduler
        .add("nightly-sales", "0 0 3 * * *", "Europe/Berlin", BuildReport { name: "sales".into() })
        .await
        .expect("add");
    scheduler.add("hourly-churn", "0 0 * * * *", "UTC", BuildReport { name: "churn".into() }).await.expect("add");
    scheduler.pause("hourly-churn").await.expect("pause");
    let rules = ScheduleOptions::new().jitter(Duration::from_secs(30)).overlap(Overlap::Skip);
    let every = Duration::from_secs(90);
    scheduler.add_every("prices", every, "UTC", BuildReport { name: "prices".into() }, rules).await.expect("add");
    let over = ScheduleOptions::new().starts_at(UNIX_EPOCH).ends_at(UNIX_EPOCH + Duration::from_secs(3600));
    scheduler.add_with("launch", "0 0 * * * *", "UTC", BuildReport { name: "launch".into() }, over).await.expect("add");
    queue
        .put_schedule(ScheduleDef::new("legacy-export", "0 0 4 * * *", "UTC", "export_removed_from_code", "reports"))
        .await
        .expect("stored");

    let dead = ChargeCard {
        customer: "cus_42".into(),
        amount_cents: 4999,
        note: "<b>VIP</b> <script>alert(1)</script>".into(),
    }
    .enqueue(&queue)
    .await
    .expect("enqueue");
    let mut invoices = Vec::new();
    for invoice in 1001..1005 {
        invoices.push(SendInvoice { invoice }.enqueue(&queue).await.expect("enqueue"));
    }
    let ledger = ExportLedger { year: 2024 }.enqueue(&queue).await.expect("enqueue");
    let pool = WorkerPool::builder(queue.clone())
        .queues(["billing"])
        .workers(4)
        .grace_period(Duration::from_millis(200))
        // A heartbeat every second (a third of the lease), so the workers
        // page soon shows the running job.
        .lease(Duration::from_secs(3))
        .backoff(Backoff {
            base: Duration::from_millis(20),
            factor: 2.0,
            cap: Duration::from_millis(100),
            jitter: false,
        })
        .start()
        .expect("pool starts");
    eventually("the seeded jobs settle", || async {
        status_of(&queue, &dead).await == JobStatus::Dead
            && status_of(&queue, &ledger).await == JobStatus::Running
            && queue.job(&ledger).await.expect("read").is_some_and(|j| j.handler_started)
            && futures_all_succeeded(&queue, &invoices).await
            && !queue.pools().await.expect("workers").is_empty()
    })
    .await;

    let state = WebState::new(queue.clone()).admin_token(TOKEN);
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), state).await.expect("binds");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let b = Browser::start(1280, 960).await;
    let browser_ready = started.elapsed();

    // Overview: the seeded counts, per queue and per priority.
    b.client.goto(&format!("http://{addr}/ui/")).await.expect("opens the dashboard");
    let cell =
        |q: &str, p: &str, s: &str| format!("#queues td[data-queue='{q}'][data-priority='{p}'][data-state='{s}']");
    b.wait_text(&cell("reports", "all", "pending"), "3 pending reports", |t| t == "3").await;
    b.wait_text(&cell("reports", "high", "pending"), "1 high-priority report", |t| t == "1").await;
    b.wait_text(&cell("reports", "all", "scheduled"), "1 scheduled report", |t| t == "1").await;
    b.wait_text(&cell("billing", "all", "dead"), "1 dead charge", |t| t == "1").await;
    b.wait_text(&cell("billing", "all", "processed"), "4 invoices processed", |t| t == "4").await;
    b.wait_text(&cell("billing", "all", "running"), "the ledger export running", |t| t == "1").await;
    b.wait_text("#queues tr[data-queue='reports'] [data-paused]", "reports paused", |t| t == "paused").await;
    b.wait_for("svg.chart polyline.processed", "the throughput chart").await;
    shot_sizes.push(b.screenshot(shots, "overview").await);

    // A queue's page: its pending jobs.
    b.click("#queues a.qname[href='#/queues/reports']", "the reports queue link").await;
    b.wait_text("#jobs tbody", "three pending reports", |t| t.matches("build_report").count() == 3).await;
    b.wait_text(".tab.active", "the pending tab", |t| t.starts_with("pending")).await;
    shot_sizes.push(b.screenshot(shots, "queue").await);

    // Dead jobs: the dead charge, then its page.
    b.click("nav a[data-nav='dead']", "the dead jobs link").await;
    let row = format!("#dead-jobs tr[data-job='{dead}']");
    b.wait_text(&row, "the dead charge listed", |t| t.contains("charge_card") && t.contains("card declined")).await;
    shot_sizes.push(b.screenshot(shots, "dead").await);
    b.click(&format!("{row} a"), "the dead job's link").await;
    b.wait_text("#job-status", "the job page, dead", |t| t == "dead").await;
    let payload = b.wait_text("#job-payload", "the payload", |t| t.contains("VIP")).await;
    assert!(payload.contains("\"note\": \"<b>VIP</b> <script>alert(1)</script>\""), "shown as text: {payload}");
    assert_eq!(b.count("#job-payload b, #job-payload script").await, 0, "payload markup must not become elements");
    b.wait_text("#attempts", "the attempt's error", |t| t.contains("card declined by <issuer>")).await;

    // Retry without the token: refused with 401, the job stays dead.
    b.click("button[data-action='retry']", "the retry button").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    b.wait_text("#confirm-token-row", "the token field", |t| t.contains("Admin token")).await;
    b.click("#confirm-ok", "confirm").await;
    let refusal = b.wait_text("#flash.error", "the refusal", |t| t.contains("401")).await;
    assert!(refusal.contains("missing or wrong admin token"), "{refusal}");
    assert_eq!(status_of(&queue, &dead).await, JobStatus::Dead, "refused: still dead");
    assert_eq!(b.wait_text("#job-status", "still dead", |t| !t.is_empty()).await, "dead");

    // Retry with the token: the job runs again and succeeds.
    b.click("button[data-action='retry']", "the retry button").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    let input = b.wait_for("#confirm-token", "the token field").await;
    input.send_keys(TOKEN).await.expect("types the token");
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#flash.ok", "the retry accepted", |t| t.contains("pending again")).await;
    b.wait_text("#job-status", "the job succeeded", |t| t == "succeeded").await;
    assert_eq!(status_of(&queue, &dead).await, JobStatus::Succeeded);
    b.wait_text("#job-result", "the job's result", |t| t.contains("\"reference\": \"ch_cus_42_1\"")).await;
    b.wait_text("#timeline", "the timeline", |t| {
        t.contains("attempt 1 failed: card declined")
            && t.contains("retried from the dead-letter set")
            && t.contains("attempt 1 succeeded")
    })
    .await;
    b.wait_text("#mode", "admin mode", |t| t == "admin").await;
    if shots.is_some() {
        // Tall enough for the result and the attempts too.
        b.client.set_window_size(1280, 1280).await.expect("resized");
        shot_sizes.push(b.screenshot(shots, "job").await);
        b.client.set_window_size(1280, 960).await.expect("resized");
    }

    // Schedules and workers.
    b.click("nav a[data-nav='schedules']", "the schedules link").await;
    b.wait_text("#schedules tr[data-schedule='nightly-sales']", "the nightly schedule", |t| {
        t.contains("0 0 3 * * *") && t.contains("Europe/Berlin")
    })
    .await;
    b.wait_text("#schedules tr[data-schedule='hourly-churn']", "the paused schedule", |t| t.contains("paused")).await;
    b.wait_text("#schedules tr[data-schedule='prices']", "the interval schedule and its rules", |t| {
        t.contains("every 1m 30s") && t.contains("jitter 30s") && t.contains("overlap skip")
    })
    .await;
    b.wait_text("#schedules tr[data-schedule='launch'] [data-ended]", "the ended badge", |t| t == "ended").await;
    let orphan = "#schedules tr[data-schedule='legacy-export']";
    b.wait_text(&format!("{orphan} [data-orphaned]"), "the orphaned badge", |t| t == "orphaned").await;
    let title = b.wait_for(&format!("{orphan} [data-orphaned]"), "the badge").await.attr("title").await.expect("attr");
    assert!(title.is_some_and(|t| t.contains("none of them runs this job")), "the badge explains itself");
    assert_eq!(b.count("#schedules button[data-action='remove']").await, 1, "Remove is offered for orphans only");
    shot_sizes.push(b.screenshot(shots, "schedules").await);
    b.click(&format!("{orphan} button[data-action='remove']"), "the remove button").await;
    b.wait_text("dialog#confirm[open] #confirm-text", "the confirmation", |t| t.contains("cannot be undone")).await;
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#flash.ok", "the removal accepted", |t| t.contains("legacy-export removed")).await;
    let gone = Instant::now();
    while b.count(orphan).await > 0 {
        assert!(gone.elapsed() < Duration::from_secs(10), "the removed schedule is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = queue.schedules().await.expect("schedules");
    assert!(!stored.iter().any(|s| s.def.name == "legacy-export"), "removed from the backend");
    // Run now, on the paused schedule: one job enqueued at once.
    let churn = "#schedules tr[data-schedule='hourly-churn']";
    b.click(&format!("{churn} button[data-action='run']"), "the run-now button").await;
    b.wait_text("dialog#confirm[open] #confirm-text", "the confirmation", |t| t.contains("enqueued now")).await;
    b.click("#confirm-ok", "confirm").await;
    let flash = b.wait_text("#flash.ok", "the run accepted", |t| t.contains("hourly-churn run now")).await;
    let id = flash.rsplit("job ").next().expect("the job's id").trim_end_matches('.');
    let id: jobs_core::JobId = id.parse().expect("a job id");
    assert!(queue.job(&id).await.expect("read").is_some(), "the job is stored");
    b.click("nav a[data-nav='workers']", "the workers link").await;
    let pool_css = format!("[data-pool='{}']", pool.id());
    b.wait_text(&pool_css, "the pool with its running job", |t| {
        t.contains(&ledger.to_string()) && t.contains("billing")
    })
    .await;
    b.wait_text(&format!("{pool_css} [data-heartbeat]"), "a heartbeat", |t| t.contains("ago")).await;
    b.wait_text(&format!("{pool_css} [data-ahead]"), "the jobs taken ahead", |t| t.parse::<u64>().is_ok()).await;
    shot_sizes.push(b.screenshot(shots, "workers").await);

    // The running export's page: its progress bar and note (as text), moved
    // by the job's next report while the page is open.
    b.click(&format!("{pool_css} a[href*='jobs/']"), "the running job's link").await;
    b.wait_text("#job-status", "the job page, running", |t| t == "running").await;
    let shown = b.wait_text("#job-progress", "the progress", |t| t.contains("40%")).await;
    assert!(shown.contains("ledger 2024: <b>4</b> of 10 months") && shown.contains("attempt 1"), "{shown}");
    assert_eq!(b.count("#job-progress b").await, 0, "the note's markup must not become elements");
    assert_eq!(b.count("#job-progress progress").await, 1, "a bar");
    b.wait_text("#job-handler", "its handler, reported started", |t| t == "started").await;
    NEXT_MONTH.notify_one();
    b.wait_text("#job-progress", "the next progress", |t| t.contains("50%") && t.contains("5 of 10 months")).await;
    // A queue's limits: shown, then changed from its page (the token is
    // stored by now), and the backend holds the new bound.
    b.client.goto(&format!("http://{addr}/ui/#/queues/billing")).await.expect("opens the queue");
    b.wait_text("#limits [data-limit='max_running']", "no running bound", |t| t == "none").await;
    b.wait_text("#limits [data-limit='limited']", "the held-back count", |t| t == "0").await;
    b.click("#limits summary", "the limits form").await;
    let field = b.wait_for("#limit-max-running", "the max running field").await;
    field.send_keys("2").await.expect("types the bound");
    let field = b.wait_for("#limit-group-concurrency", "the per-group running field").await;
    field.send_keys("1").await.expect("types the group bound");
    let field = b.wait_for("#limit-max-succeeded", "the kept succeeded jobs field").await;
    field.send_keys("100").await.expect("types the retention bound");
    b.click("#limit-archive", "the archive box").await;
    b.click("#limits button[data-action='set-limits']", "set limits").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#flash.ok", "the limits accepted", |t| t.contains("max running 2")).await;
    b.wait_text("#limits [data-limit='max_running']", "the new bound", |t| t == "2").await;
    b.wait_text("#limits [data-limit='group_concurrency']", "the new group bound", |t| t == "1").await;
    b.wait_text("#limits [data-limit='max_succeeded']", "the new retention bound", |t| t == "100").await;
    b.wait_text("#limits [data-limit='archive']", "archiving on", |t| t == "on").await;
    let policy = queue.policy("billing").await.expect("policy");
    assert_eq!((policy.max_running, policy.group_concurrency), (Some(2), Some(1)));
    assert_eq!((policy.retention.succeeded_max, policy.archive), (Some(100), true));
    // The breaker: opened by hand from the page, shown, closed again.
    b.click("#limits button[data-action='breaker-open']", "open the breaker").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#limits [data-limit='breaker-state']", "the open breaker", |t| t.starts_with("open until")).await;
    let state = queue.breaker("billing").await.expect("breaker").state;
    assert!(matches!(state, jobs_core::BreakerState::Open { .. }), "{state:?}");
    b.click("#limits button[data-action='breaker-close']", "close the breaker").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#limits [data-limit='breaker-state']", "the closed breaker", |t| t == "closed").await;
    assert_eq!(queue.breaker("billing").await.expect("breaker").state, jobs_core::BreakerState::Closed);
    // A group's breaker, opened in the backend: listed, closed from the page.
    let hour = jobs_core::BreakerAction::Open(Duration::from_secs(3600));
    queue.set_group_breaker("billing", "acme", hour).await.expect("opens the group's breaker");
    b.client.refresh().await.expect("reloads the page");
    b.wait_text("#limits [data-limit='groups-open']", "one open group breaker", |t| t == "1").await;
    let row = "#group-breakers tr[data-group-breaker='acme']";
    b.wait_text(row, "the open group breaker", |t| t.contains("open until")).await;
    b.click(&format!("{row} button[data-action='group-breaker-close']"), "close the group's breaker").await;
    b.wait_for("dialog#confirm[open]", "the confirmation dialog").await;
    b.click("#confirm-ok", "confirm").await;
    b.wait_text("#limits [data-limit='groups-open']", "no open group breaker", |t| t == "0").await;
    assert_eq!(b.count("#group-breakers").await, 0, "the list is gone with the last open breaker");
    assert_eq!(queue.breaker("billing").await.expect("breaker").groups_open, 0, "closed in the backend");

    // A grouped queue: its busiest groups.
    for account in ["acme", "acme", "globex"] {
        SyncAccount { account: account.into() }.enqueue(&queue).await.expect("enqueue");
    }
    b.client.goto(&format!("http://{addr}/ui/#/queues/sync")).await.expect("opens the queue");
    b.wait_text("#groups tr[data-group='acme']", "the busiest group", |t| {
        t.contains("acme") && t.contains('2') && t.contains('3')
    })
    .await;
    let first = b.wait_text("#groups tbody tr", "the first row", |t| !t.is_empty()).await;
    assert!(first.starts_with("acme"), "busiest first: {first}");

    b.close().await;
    let _ = stop.send(());
    serving.await.expect("joined").expect("served");
    pool.shutdown().await.expect("clean shutdown");
    for size in shot_sizes.into_iter().flatten() {
        assert!(size < MAX_SCREENSHOT, "a screenshot of {size} bytes: keep them under {MAX_SCREENSHOT}");
    }
    println!("browser ready after {browser_ready:?}; whole test {:?}", started.elapsed());
}

async fn futures_all_succeeded(queue: &SharedQueue, ids: &[JobId]) -> bool {
    for id in ids {
        if status_of(queue, id).await != JobStatus::Succeeded {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_the_token_when_reads_need_it() {
    const SECRET_KEY: &str = "sk_live_e2e_51f0c9d2";
    let queue: SharedQueue = Arc::new(MemoryQueue::new());
    let job = RotateKey { user: "cus_42".into(), api_key: SECRET_KEY.into() }.enqueue(&queue).await.expect("enqueue");
    for name in ["daily-sales", "weekly-churn"] {
        BuildReport { name: name.into() }.enqueue(&queue).await.expect("enqueue");
    }
    let state = WebState::new(queue.clone()).admin_token(TOKEN).require_token_for_reads(true);
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), state).await.expect("binds");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let b = Browser::start(1280, 960).await;
    let url = format!("http://{addr}/ui/");
    let pending = |q: &str| format!("#queues td[data-queue='{q}'][data-priority='all'][data-state='pending']");

    // The first read is refused: the page asks for the token, shows nothing.
    b.client.goto(&url).await.expect("opens the dashboard");
    b.wait_for("dialog#token-prompt[open]", "the token prompt").await;
    b.wait_text("#token-prompt-text", "why the token is needed", |t| t.contains("only with its admin token")).await;
    assert_eq!(b.count("#queues").await, 0, "no data before the token");

    // A wrong token is refused and asked for again.
    b.wait_for("#token-prompt-input", "the token field").await.send_keys("not-the-token").await.expect("types");
    b.click("#token-prompt-ok", "the prompt's button").await;
    b.wait_text("#token-prompt-text", "the refusal", |t| t.contains("refused that token")).await;
    b.wait_for("dialog#token-prompt[open]", "the token prompt again").await;
    assert_eq!(b.count("#queues").await, 0, "no data with a wrong token");

    // The right one: stored, the reads sent again, the data shown.
    b.wait_for("#token-prompt-input", "the token field").await.send_keys(TOKEN).await.expect("types");
    b.click("#token-prompt-ok", "the prompt's button").await;
    b.wait_text(&pending("reports"), "2 pending reports", |t| t == "2").await;
    b.wait_text(&pending("vault"), "1 pending rotation", |t| t == "1").await;
    b.wait_text("#mode", "admin mode", |t| t == "admin").await;
    assert_eq!(b.count("dialog#token-prompt[open]").await, 0, "the prompt is closed");

    // The job's page: the redacted field shows as such, the others as they are.
    b.client.goto(&format!("{url}#/jobs/{job}")).await.expect("opens the job");
    let payload = b.wait_text("#job-payload", "the payload", |t| t.contains("cus_42")).await;
    assert!(payload.contains("\"api_key\": \"[redacted]\""), "{payload}");
    let page = b.client.source().await.expect("the page's source");
    assert!(!page.contains(SECRET_KEY), "the redacted value reached the page");

    // Forget the token and load again: asked again; cancelling says why the
    // page is empty.
    b.click("#token-btn", "Forget token").await;
    b.wait_text("#token-btn", "the token forgotten", |t| t == "Set token").await;
    b.client.goto(&url).await.expect("opens the dashboard again");
    b.wait_for("dialog#token-prompt[open]", "the token prompt").await;
    b.click("#token-prompt-cancel", "cancel").await;
    b.wait_text("#page", "why nothing is shown", |t| t.contains("only with the admin token")).await;
    assert_eq!(b.count("#queues").await, 0, "no data without the token");

    b.close().await;
    let _ = stop.send(());
    serving.await.expect("joined").expect("served");
}
