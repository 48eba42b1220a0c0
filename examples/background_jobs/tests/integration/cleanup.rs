//! Cleanup jobs on a real SQLite database and real files.

use std::io::Read;
use std::time::{Duration, SystemTime};

use background_jobs::db::DbCounts;
use background_jobs::demo::seed;
use background_jobs::jobs::cleanup::*;
use jobs_core::prelude::*;
use jobs_core::test_util::{perform, TestContext};
use jobs_core::Scheduler;

use crate::support::{dead_after, succeeded, Harness};

fn counts(h: &Harness) -> DbCounts {
    let db = &h.app.env.db;
    db.counts(&db.open().expect("open")).expect("counts")
}

fn rows(v: serde_json::Value) -> u64 {
    serde_json::from_value::<RowsReport>(v).expect("a RowsReport").rows
}

fn set_age(path: &std::path::Path, age: Duration) {
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - age).expect("set mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_job_runs_alone_through_the_test_kit() {
    let h = Harness::start(|_| {}).await;
    seed::database(&h.app.env).expect("seed");
    // The job's own glue, with only the database it takes: no pool, no queue.
    let ctx = TestContext::new("deactivate_inactive_users").data(h.app.env.db.clone()).build();
    let report = perform(DeactivateInactiveUsers::new(365), ctx).await.expect("the job succeeds");
    assert_eq!(report.map(rows), Some(1), "bob: no login for 400 days");
    let ctx = TestContext::new("deactivate_inactive_users").data(h.app.env.db.clone()).build();
    let e = perform(DeactivateInactiveUsers::new(0), ctx).await.expect_err("0 days breaks the range rule");
    assert!(e.to_string().contains("inactive_days"), "{e}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_are_cleaned() {
    let h = Harness::start(|_| {}).await;
    seed::database(&h.app.env).expect("seed");
    let q = &h.app.queue;
    let before = counts(&h);
    assert_eq!((before.users, before.sessions, before.files), (6, 8, 2));

    // One at a time, so each job's count is its own.
    let id = DeactivateInactiveUsers::new(365).enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 1, "bob: no login for 400 days");
    let id = DeleteUnverifiedUsers::new(7 * 24).enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 1, "carol: unverified for 10 days");
    let id = PurgeDeletedUsers::new(30).enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 1, "erin: deactivated 40 days ago");
    let id = CleanupExpiredSessions::new().enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 1, "ann's old session");
    let id = CleanupOrphanedSessions::new().enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 2, "frank's (deactivated) and the ghost's");

    let after = counts(&h);
    assert_eq!(
        after,
        DbCounts { users: 4, active_users: 2, unverified_users: 1, deactivated_users: 2, sessions: 2, files: 1 }
    );
    // Running them again finds nothing more to do.
    let id = CleanupOrphanedSessions::new().enqueue(q).await.expect("valid");
    assert_eq!(rows(succeeded(&h.finished(&id).await)), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_scratch_and_orphaned_files_go_fresh_and_known_ones_stay() {
    let h = Harness::start(|_| {}).await;
    seed::database(&h.app.env).expect("seed");
    for (rel, days) in [("tmp/a.part", 3), ("tmp/deep/b.part", 2), ("tmp/new.part", 0)] {
        h.write(rel, b"scratch");
        set_age(&h.path(rel), Duration::from_secs(days * 86_400));
    }
    for (rel, days) in
        [("user_files/ann/avatar.png", 100), ("user_files/x/orphan.bin", 5), ("user_files/x/young.bin", 0)]
    {
        h.write(rel, b"data");
        set_age(&h.path(rel), Duration::from_secs(days * 86_400));
    }
    let q = &h.app.queue;
    let id = CleanupTempFiles::new("tmp".into(), 86_400).enqueue(q).await.expect("valid");
    let r: FilesReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!((r.removed, r.bytes), (2, 14));
    assert!(h.path("tmp/new.part").is_file() && !h.path("tmp/deep").exists(), "empty folders go too");

    let id = CleanupOrphanedFiles::new("user_files".into(), 3600).enqueue(q).await.expect("valid");
    let r: FilesReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!(r.removed, 1);
    assert!(!h.path("user_files/x/orphan.bin").exists());
    assert!(h.path("user_files/ann/avatar.png").is_file(), "named by a row of `files`");
    assert!(h.path("user_files/x/young.bin").is_file(), "younger than the minimum age");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_rotate_into_gzip() {
    let h = Harness::start(|_| {}).await;
    let log = "GET / 200\n".repeat(500);
    h.write("logs/app.log", log.as_bytes());
    h.write("logs/quiet.log", b"small");
    let id = RotateLogs::new("logs".into(), 1000, 3).enqueue(&h.app.queue).await.expect("valid");
    let r: RotateReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!(r.rotated, ["app.log"]);
    assert!(r.bytes_after < r.bytes_before / 10, "{r:?}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(h.path("logs/app.log.1.gz")).expect("gz"))
        .read_to_string(&mut text)
        .expect("gunzip");
    assert_eq!(text, log);
    assert_eq!(std::fs::metadata(h.path("logs/app.log")).expect("kept").len(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_maintenance_is_scheduled_and_runs_every_cleanup() {
    let h = Harness::start(|_| {}).await;
    let d = jobs_core::backend::descriptors().find(|d| d.name == "nightly_maintenance").expect("linked");
    let cron = d.cron.expect("declared with cron");
    assert_eq!((cron.expression, cron.timezone), ("0 0 3 * * *", "Europe/Berlin"));
    // The pool's scheduler adds the attribute's schedule as it starts.
    let scheduler = Scheduler::new(h.app.queue.clone());
    let deadline = std::time::Instant::now() + crate::support::DEADLINE;
    let s = loop {
        let listed = scheduler.list().await.expect("list");
        if let Some(s) = listed.into_iter().find(|s| s.job_name == "nightly_maintenance") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the pool did not add the nightly schedule");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((s.cron.as_str(), s.timezone.as_str()), ("0 0 3 * * *", "Europe/Berlin"));
    assert!(s.next_fire.is_some());

    seed::database(&h.app.env).expect("seed");
    h.write("tmp/old.part", b"x");
    set_age(&h.path("tmp/old.part"), Duration::from_secs(2 * 86_400));
    h.write("logs/app.log", &vec![b'x'; 2 * 1024 * 1024]);
    let id = NightlyMaintenance::new().enqueue(&h.app.queue).await.expect("valid");
    let r: MaintenanceReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!((r.deactivated_users, r.unverified_deleted, r.purged_users), (1, 1, 1));
    assert_eq!(r.expired_sessions + r.orphaned_sessions, 3, "{r:?}");
    assert_eq!(r.temp_files.removed, 1);
    assert_eq!(r.logs.rotated, ["app.log"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanups_stay_inside_their_configured_folders() {
    let h = Harness::start(|_| {}).await;
    seed::database(&h.app.env).expect("seed");
    h.write("keep.txt", b"the data folder's own file");
    h.write("user_files/x/old.bin", b"a user's file");
    h.write("tmp/sub/old.part", b"scratch");
    for rel in ["keep.txt", "user_files/x/old.bin", "tmp/sub/old.part"] {
        set_age(&h.path(rel), Duration::from_secs(10 * 86_400));
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(&h.dir.0, h.path("tmp/escape")).expect("symlink");
    let q = &h.app.queue;
    let mut refused = vec![
        CleanupTempFiles::new(".".into(), 0).enqueue(q).await.expect("valid"),
        CleanupTempFiles::new("user_files".into(), 0).enqueue(q).await.expect("valid"),
        CleanupOrphanedFiles::new(".".into(), 0).enqueue(q).await.expect("valid"),
        RotateLogs::new(".".into(), 1, 1).enqueue(q).await.expect("valid"),
    ];
    #[cfg(unix)]
    refused.push(CleanupTempFiles::new("tmp/escape".into(), 0).enqueue(q).await.expect("valid"));
    for id in &refused {
        let err = dead_after(&h.finished(id).await, 1);
        assert!(err.contains("is not inside") || err.contains("through a symlink"), "{err}");
    }
    assert!(h.path("keep.txt").is_file(), "the data folder is untouched");
    assert!(h.app.env.paths.database.is_file(), "so is the database");
    assert!(h.path("user_files/x/old.bin").is_file(), "and the user files");
    for bad in ["..", "/tmp", "tmp/../.."] {
        let e = CleanupTempFiles::new(bad.into(), 0).enqueue(q).await.expect_err("refused at enqueue");
        assert!(e.to_string().contains("field `dir`"), "{bad}: {e}");
    }
    // The scratch folder itself and folders inside it are cleaned.
    let id = CleanupTempFiles::new("tmp/sub".into(), 86_400).enqueue(q).await.expect("valid");
    let r: FilesReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!(r.removed, 1);
    assert!(!h.path("tmp/sub/old.part").exists());
    let id = CleanupTempFiles::new("tmp/missing".into(), 0).enqueue(q).await.expect("valid");
    assert_eq!(serde_json::from_value::<FilesReport>(succeeded(&h.finished(&id).await)).expect("report").removed, 0);
    h.stop().await;
}
