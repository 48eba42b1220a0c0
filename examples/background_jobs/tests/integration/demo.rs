//! The demo, end to end, in this process on the MemoryQueue.

use std::net::SocketAddr;

use background_jobs::{run_demo, Http};
use jobs_core::JobStatus;

use crate::support::{settings, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_every_job_to_its_expected_end() {
    let _lock = crate::support::lock().await;
    let dir = TempDir::new("demo");
    let mut s = settings(&dir.0);
    s.app.files.ffmpeg = "ffmpeg-that-is-not-installed".into();
    let report = run_demo(s, Http::At(SocketAddr::from(([127, 0, 0, 1], 0)))).await.expect("the demo runs");
    let mut text = Vec::new();
    report.print(&mut text).expect("prints");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(report.ok(), "{text}");

    assert!(report.http_addr.is_some_and(|a| a.port() != 0), "endpoints were served");
    assert_eq!(report.of("send_campaign_email").len(), 5, "the campaign fanned out: {text}");
    assert_eq!(report.of("resize_image").len(), 6, "2 resizes, the broken one and 3 thumbnails: {text}");
    let mut dead: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| o.info.as_ref().is_some_and(|i| i.status == JobStatus::Dead))
        .map(|o| o.name())
        .collect();
    dead.sort_unstable();
    assert_eq!(dead, ["resize_image", "send_webhook", "transcode_video"], "{text}");
    assert!(report.outcomes.iter().all(|o| o.as_expected()), "{text}");
    let video = report.of("transcode_video");
    assert!(video[0].info.as_ref().and_then(|i| i.last_error()).is_some_and(|e| e.contains("ffmpeg is not installed")));
    let retried =
        report.of("send_webhook").into_iter().filter(|o| o.info.as_ref().is_some_and(|i| i.attempts == 2)).count();
    assert_eq!(retried, 1, "the busy receiver made one webhook retry: {text}");
    assert_eq!(report.refused.len(), 1);

    assert_eq!(std::fs::read_dir(&report.paths.outbox).expect("outbox").count(), 10, "{text}");
    assert!(report.paths.processed.join("thumbnails/a-landscape.jpg").is_file());
    assert!(std::fs::read_to_string(report.paths.processed.join("report.txt"))
        .expect("pdf text")
        .contains("Revenue grew"));
    assert_eq!((report.db_before.users, report.db_after.users), (6, 4));
    assert!(report.paths.logs.join("app.log.2.gz").is_file(), "yesterday's log moved up a generation");
    assert_eq!(report.webhooks.iter().map(|r| r.status).collect::<Vec<_>>().len(), 4);
    assert!(report.schedules.iter().any(|s| s.name.contains("nightly_maintenance")));
    archive_reads_back(&report);
    for line in [
        "== Summary:",
        "Retried:",
        "Dead (kept in the dead-letter set",
        "Refused at enqueue",
        "Every job ended as expected.",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
}

/// The `maintenance` queue keeps none of its finished jobs: each of the
/// demo's is in the archive, and `jobs archive` reads them back.
fn archive_reads_back(report: &background_jobs::DemoReport) {
    let (dir, n) = report.archive.clone().expect("the demo archives");
    let mut want: Vec<String> =
        report.outcomes.iter().filter(|o| o.id.queue() == "maintenance").map(|o| o.id.to_string()).collect();
    want.sort_unstable();
    assert!(!want.is_empty());
    assert!(report.outcomes.iter().filter(|o| o.id.queue() == "maintenance").all(|o| o.as_expected()));
    assert_eq!(n, want.len(), "every maintenance job, once");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ctx = jobs_cli::Context::new(std::sync::Arc::new(jobs_core::MemoryQueue::new()));
    let args = ["jobs", "archive", "--dir", dir.to_str().expect("utf-8"), "--queue", "maintenance", "--json"];
    let code = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(jobs_cli::run(args, ctx, &mut jobs_cli::Io::new(&mut out, &mut err)))
    });
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
    let mut got: Vec<String> =
        doc["jobs"].as_array().expect("jobs").iter().map(|j| j["job"]["id"].as_str().expect("id").to_owned()).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(doc["jobs"].as_array().expect("jobs").iter().all(|j| j["job"]["status"] == "succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_redis_too() {
    let _lock = crate::support::lock().await;
    let server = jobs_redis::testing::RedisServer::start();
    let dir = TempDir::new("demo-redis");
    let mut s = settings(&dir.0);
    s.jobs.jobs.redis = Some(jobs_core::config::BackendSection::with_url(server.url()));
    s.app.files.ffmpeg = "ffmpeg-that-is-not-installed".into();
    let report = run_demo(s, Http::Off).await.expect("the demo runs");
    let mut text = Vec::new();
    report.print(&mut text).expect("prints");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(report.ok(), "{text}");
    assert!(report.backend.starts_with("Redis at redis://127.0.0.1:"), "{}", report.backend);
    assert_eq!(report.outcomes.len(), 36, "{text}");
    archive_reads_back(&report);
    assert_eq!(std::fs::read_dir(&report.paths.outbox).expect("outbox").count(), 10, "{text}");
}

/// With `jobs.redis.routes` sending `email` to a second server, the demo
/// runs over a router: every job ends as expected, the email jobs on the
/// second server and nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_over_two_redis_servers() {
    use jobs_core::QueueInspect;
    let _lock = crate::support::lock().await;
    let (a, b) = (jobs_redis::testing::RedisServer::start(), jobs_redis::testing::RedisServer::start());
    let dir = TempDir::new("demo-routes");
    let mut s = settings(&dir.0);
    let yaml = format!("jobs:\n  redis:\n    url: \"{}\"\n    routes: {{ email: \"{}\" }}\n", a.url(), b.url());
    s.jobs.jobs.redis = jobs_core::config::Config::from_yaml_str(&yaml).expect("valid").jobs.redis;
    s.app.files.ffmpeg = "ffmpeg-that-is-not-installed".into();
    let report = run_demo(s, Http::Off).await.expect("the demo runs");
    let mut text = Vec::new();
    report.print(&mut text).expect("prints");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(report.ok(), "{text}");
    assert_eq!(report.outcomes.len(), 36, "{text}");

    let on = |url: String| async move { jobs_redis::RedisQueue::connect(&url).await.expect("connects") };
    let (on_a, on_b) =
        (on(a.url()).await.stats().await.expect("stats"), on(b.url()).await.stats().await.expect("stats"));
    assert_eq!(on_b.queues.keys().collect::<Vec<_>>(), ["email"], "only email on the second server");
    assert!(on_b.queue("email").processed > 0, "email's jobs ran there");
    assert!(!on_a.queues.contains_key("email"), "no email job on the first server");
    assert!(on_a.queue("files").processed > 0, "the other queues stay on the first");
}
