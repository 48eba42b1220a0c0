//! `archive`: archived jobs read back from the files a pool's archiver
//! wrote, by queue, id and time range, as a table and as JSON.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use jobs_core::archive::JsonLinesSink;
use jobs_core::config::Config;
use jobs_core::prelude::*;
use jobs_core::{JobId, JobStatus, QueuePolicy, QueueRetention, SharedQueue};
use serde_json::json;

use crate::support::{cli, exec, fits_80, on_every_backend, take_one, wait_until};
use crate::BuildReport;

on_every_backend!(archived_jobs_read_back);

/// A fresh folder, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs three reports and a fourth that dies through a pool that archives
/// `reports` (keeping none of its finished jobs), then reads them back.
async fn archived_jobs_read_back(q: SharedQueue) {
    let dir = Scratch(std::env::temp_dir().join(format!("jobs-cli-archive-{}", JobId::new("t").ulid())));
    let retention = QueueRetention { succeeded_max: Some(0), dead_max: Some(0), ..Default::default() };
    q.set_policy("reports", QueuePolicy { retention, archive: true, ..Default::default() }).await.unwrap();
    let settings = jobs_core::archive::ArchiveSettings { interval: Duration::from_millis(20), ..Default::default() };
    let pool = WorkerPool::builder(q.clone())
        .queues(["reports"])
        .data(crate::Factor(2))
        .archive(JsonLinesSink::new(&dir.0))
        .archive_settings(settings)
        .start()
        .unwrap();
    let mut ids = Vec::new();
    for day in 1..=3 {
        ids.push(BuildReport { day }.enqueue(&q).await.unwrap());
    }
    for id in &ids {
        wait_until("the report ran", || async {
            q.job(id).await.unwrap().is_none_or(|j| j.status == JobStatus::Succeeded)
        })
        .await;
    }
    pool.shutdown().await.unwrap();
    // A dead one, by hand: the pool is gone, so the sweep of this fetch
    // (which finds nothing to take) is what deletes the three.
    let dead = BuildReport { day: 4 }.enqueue(&q).await.unwrap();
    let leased = q.fetch(&take_one("reports")).await.unwrap().jobs.pop().unwrap();
    let outcome = jobs_core::backend::Outcome::Dead { error: "printer on fire".into() };
    q.finish(vec![jobs_core::backend::Finish { id: dead.clone(), token: leased.token, outcome }]).await.unwrap();
    assert!(q.fetch(&take_one("reports")).await.unwrap().jobs.is_empty());
    let mut archiver = jobs_core::archive::Archiver::new(
        q.archive().unwrap(),
        std::sync::Arc::new(JsonLinesSink::new(&dir.0)),
        "cli-test",
        vec!["reports".into()],
    );
    archiver.drain().await.unwrap();

    let d = dir.0.to_str().unwrap();
    let doc = cli(&q, &["archive", "--dir", d, "--queue", "reports", "--json"]).await.json();
    let jobs = doc["jobs"].as_array().unwrap();
    let got: Vec<&str> = jobs.iter().map(|j| j["job"]["id"].as_str().unwrap()).collect();
    let mut want: Vec<String> = ids.iter().map(ToString::to_string).collect();
    want.push(dead.to_string());
    let (mut got_three, mut want_three) = (got[..3].to_vec(), want[..3].to_vec());
    got_three.sort_unstable();
    want_three.sort_unstable();
    assert_eq!(got_three, want_three, "the three reports");
    assert_eq!(got[3], want[3], "then the dead one");
    assert_eq!(jobs[0]["seq"], 1);
    assert_eq!(jobs[3]["job"]["status"], "dead");
    assert_eq!(jobs[3]["job"]["last_error"], "printer on fire");
    assert!(jobs[1]["job"]["payload"]["day"].as_u64().is_some(), "payloads kept: {jobs:?}");
    assert!(jobs.iter().take(3).all(|j| j["job"]["result"].as_u64().is_some()), "results kept: {jobs:?}");

    // By id: the whole job.
    let one = cli(&q, &["archive", "--dir", d, "--id", &dead.to_string()]).await;
    let text = one.ok();
    assert!(text.contains(&format!("id        {dead}")), "{text}");
    assert!(text.contains("printer on fire") && text.contains("archived  "), "{text}");
    let doc = cli(&q, &["archive", "--dir", d, "--id", &dead.to_string(), "--json"]).await.json();
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 1);

    // A table, by time range.
    let table = cli(&q, &["archive", "--dir", d]).await;
    let table = table.ok();
    fits_80(table);
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.lines().count(), 5, "a header and four jobs:\n{table}");
    assert!(table.contains("dead") && table.contains("succeeded"), "{table}");
    let later = humantime::format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).to_string();
    let doc = cli(&q, &["archive", "--dir", d, "--since", &later, "--json"]).await.json();
    assert_eq!(doc, json!({ "jobs": [] }), "nothing finished an hour from now");
    let doc = cli(&q, &["archive", "--dir", d, "--until", &later, "--limit", "2", "--json"]).await.json();
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 2, "the limit holds");
    let none = cli(&q, &["archive", "--dir", d, "--queue", "mail"]).await;
    assert_eq!(none.ok(), format!("no archived jobs match at {d}\n"));

    // The folder from the configuration; none at all is a usage error.
    let config = Config::from_yaml_str(&format!("jobs: {{ archive: {{ dir: \"{d}\" }} }}")).unwrap();
    let ctx = jobs_cli::Context::new(q.clone()).with_config(config);
    let doc = exec(ctx, &["archive", "--json"], None).await.json();
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 4);
    let out = cli(&q, &["archive"]).await;
    assert!(out.fails(2).contains("jobs.archive.dir"), "{out:?}");
}
