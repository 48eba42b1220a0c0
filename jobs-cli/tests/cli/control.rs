//! `cancel`, `queue pause|resume`, `schedules list|pause|resume|remove`.

use std::time::Duration;

use jobs_core::backend::{FetchRequest, Finish, Outcome};
use jobs_core::prelude::*;
use jobs_core::{ScheduleDef, Scheduler, SharedQueue};
use serde_json::json;

use crate::support::{cli, cli_answering, fail, fits_80, on_every_backend, take_one, wait_until};
use crate::BuildReport;

on_every_backend!(
    cancel,
    pause_and_resume_queues,
    queue_limits,
    queue_breaker,
    queue_groups,
    schedules,
    orphaned_schedules
);

async fn cancel(q: SharedQueue) {
    let id = BuildReport { day: 1 }.enqueue(&q).await.unwrap();
    assert_eq!(cli(&q, &["cancel", &id.to_string()]).await.ok(), format!("cancelled {id}\n"));
    assert_eq!(q.job(&id).await.unwrap().unwrap().status, jobs_core::JobStatus::Cancelled);
    assert_eq!(cli(&q, &["cancel", &id.to_string()]).await.ok(), format!("{id} was cancelled already\n"));
    let doc = cli(&q, &["cancel", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc, json!({ "id": id.to_string(), "outcome": "already_cancelled" }));

    let id = BuildReport { day: 2 }.enqueue_with(&q, JobOptions::new().delay(Duration::from_secs(600))).await.unwrap();
    let doc = cli(&q, &["cancel", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc, json!({ "id": id.to_string(), "outcome": "cancelled" }));

    // Running: the worker is told.
    let id = BuildReport { day: 3 }.enqueue(&q).await.unwrap();
    let req = take_one("reports");
    let leased = q.fetch(&req).await.unwrap().jobs.pop().expect("ready");
    let out = cli(&q, &["cancel", &id.to_string()]).await;
    assert_eq!(
        out.ok(),
        format!("cancellation requested: {id} is running; its worker is told, and it ends cancelled\n")
    );
    let doc = cli(&q, &["cancel", &id.to_string(), "--json"]).await.json();
    assert_eq!(doc["outcome"], "requested");

    // Finished: nothing to cancel.
    let done = BuildReport { day: 4 }.enqueue_with(&q, JobOptions::new().queue("done")).await.unwrap();
    let req = FetchRequest { queues: vec!["done".into()], ..req };
    let l = q.fetch(&req).await.unwrap().jobs.pop().expect("ready");
    let outcome = Outcome::Succeeded { result: None };
    q.finish(vec![Finish { id: done.clone(), token: l.token, outcome }]).await.unwrap();
    let out = cli(&q, &["cancel", &done.to_string()]).await;
    assert_eq!(out.fails(1), format!("error: job `{done}` has finished (succeeded): nothing to cancel"));
    let dead = BuildReport { day: 5 }.enqueue_with(&q, JobOptions::new().queue("done")).await.unwrap();
    fail(&q, &dead, &["boom"]).await;
    assert!(cli(&q, &["cancel", &dead.to_string()]).await.fails(1).ends_with("has finished (dead): nothing to cancel"));
    let missing = JobId::new("reports");
    assert_eq!(cli(&q, &["cancel", &missing.to_string()]).await.fails(1), format!("error: no job `{missing}`"));
    drop(leased);
}

async fn pause_and_resume_queues(q: SharedQueue) {
    BuildReport { day: 1 }.enqueue(&q).await.unwrap();
    let out = cli(&q, &["queue", "pause", "reports"]).await;
    assert_eq!(out.ok(), "paused queue `reports`: workers take none of its jobs until `queue resume reports`\n");
    assert_eq!(cli(&q, &["stats", "--json"]).await.json()["queues"]["reports"]["paused"], true);
    let text = cli(&q, &["queues"]).await.ok().to_owned();
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("reports") && l.contains("paused")), "{text}");
    let req = take_one("reports");
    assert!(q.fetch(&req).await.unwrap().jobs.is_empty(), "workers are held off");

    let doc = cli(&q, &["queue", "resume", "reports", "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "paused": false }));
    assert_eq!(cli(&q, &["queues", "--json"]).await.json()["queues"][0]["paused"], false);
    let doc = cli(&q, &["queue", "pause", "reports", "--json"]).await.json();
    assert_eq!(doc, json!({ "queue": "reports", "paused": true }));
    assert_eq!(
        cli(&q, &["queue", "resume", "reports"]).await.ok(),
        "resumed queue `reports`: workers take its jobs again\n"
    );
    assert!(cli(&q, &["queue", "pause", "no/slash"])
        .await
        .fails(2)
        .starts_with("error: invalid queue name `no/slash`"));
}

async fn queue_limits(q: SharedQueue) {
    let shown = |head: &str, max_running: &str| {
        format!(
            "queue `reports`{head}\nmax_running        {max_running}\nmax_jobs           none\nrate               none\n\
             group_concurrency  each job's own\ngroup_rate         each job's own\nbreaker            none\n\
             group_breaker      none\npriority_levels    all\nkeep_succeeded     the backend's\nmax_succeeded      the backend's\n\
             keep_dead          the backend's\nmax_dead           the backend's\narchive            off\n\
             held back          0 times by a bound, 0 by a rate\nhanded over        0 jobs to an idle pool by their enqueue\n"
        )
    };
    assert_eq!(cli(&q, &["queue", "limits", "reports"]).await.ok(), shown("", "none"));
    let out = cli(&q, &["queue", "limits", "reports", "--max-running", "5"]).await;
    assert_eq!(out.ok(), shown(": limits set", "5"));
    assert_eq!(q.policy("reports").await.unwrap().max_running, Some(5), "stored in the backend");
    let doc = cli(&q, &["queue", "limits", "reports", "--max-jobs", "100", "--json"]).await.json();
    assert_eq!(
        doc,
        json!({ "queue": "reports", "max_running": 5, "max_jobs": 100, "rate": null, "group_concurrency": null,
                "group_rate": null, "breaker": null, "group_breaker": null, "priority_levels": [], "retention": {},
                "archive": false, "limited": 0, "throttled": 0, "handed": 0 }),
        "one limit changed, the other kept"
    );
    let doc = cli(&q, &["queue", "limits", "reports", "--max-running", "none", "--json"]).await.json();
    assert_eq!(doc["max_running"], serde_json::Value::Null);
    let doc = cli(&q, &["queue", "limits", "reports", "--rate", "100/1m", "--json"]).await.json();
    assert_eq!(doc["rate"], "100/1m");
    assert_eq!(q.policy("reports").await.unwrap().rate, Some("100/1m".parse().unwrap()));
    assert_eq!(cli(&q, &["queue", "limits", "reports", "--rate", "fast"]).await.code, 2);
    let args = ["queue", "limits", "reports", "--group-concurrency", "2", "--group-rate", "10/1s", "--json"];
    let doc = cli(&q, &args).await.json();
    assert_eq!((doc["group_concurrency"].clone(), doc["group_rate"].clone()), (json!(2), json!("10/1s")));
    let p = q.policy("reports").await.unwrap();
    assert_eq!((p.group_concurrency, p.group_rate), (Some(2), Some("10/1s".parse().unwrap())), "stored");
    assert_eq!(cli(&q, &["queue", "limits", "reports", "--group-concurrency", "0"]).await.code, 2);
    let doc = cli(&q, &["queue", "limits", "reports", "--group-concurrency", "none", "--json"]).await.json();
    assert_eq!(doc["group_concurrency"], serde_json::Value::Null);
    for bad in ["0", "many"] {
        let out = cli(&q, &["queue", "limits", "reports", "--max-running", bad]).await;
        assert_eq!(out.code, 2, "{bad}: {out:?}");
    }

    // Retention and archiving.
    let args = ["queue", "limits", "reports", "--keep-succeeded", "1h", "--max-succeeded", "0", "--max-dead", "10"];
    let doc = cli(&q, &[&args[..], &["--archive", "on", "--json"]].concat()).await.json();
    assert_eq!(doc["retention"], json!({ "succeeded": "1h", "succeeded_max": 0, "dead_max": 10 }));
    assert_eq!(doc["archive"], true);
    let p = q.policy("reports").await.unwrap();
    assert_eq!(
        (p.retention.succeeded, p.retention.succeeded_max, p.retention.dead_age, p.retention.dead_max, p.archive),
        (Some(Duration::from_secs(3600)), Some(0), None, Some(10), true),
        "stored"
    );
    assert_eq!(p.rate, Some("100/1m".parse().unwrap()), "the other limits stay");
    let doc = cli(&q, &["queue", "limits", "reports", "--keep-succeeded", "none", "--archive", "off", "--json"]).await;
    let doc = doc.json();
    assert_eq!(doc["retention"], json!({ "succeeded_max": 0, "dead_max": 10 }));
    assert_eq!(doc["archive"], false);
    for bad in [["--keep-dead", "soon"], ["--max-dead", "-1"], ["--archive", "maybe"]] {
        let out = cli(&q, &[&["queue", "limits", "reports"][..], &bad[..]].concat()).await;
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
    }
}

async fn queue_breaker(q: SharedQueue) {
    let doc = cli(&q, &["queue", "limits", "reports", "--breaker", "5/1m:30s", "--json"]).await.json();
    assert_eq!(doc["breaker"], "5/1m:30s");
    assert_eq!(cli(&q, &["queue", "limits", "reports", "--breaker", "5/1m"]).await.code, 2, "no cool-down");
    let shown = cli(&q, &["queue", "breaker", "reports"]).await.ok().to_owned();
    assert_eq!(
        shown,
        "queue `reports`\nbreaker          5/1m:30s\nstate            closed: jobs start as usual\n\
         recent failures  0\nopened           0 times\ngroup breaker    none configured\n\
         groups open      0 (opened 0 times)\n"
    );
    let doc = cli(&q, &["queue", "breaker", "reports", "--open", "10m", "--json"]).await.json();
    assert_eq!((doc["state"].clone(), doc["opened"].clone()), (json!("open"), json!(1)), "{doc}");
    let info = q.breaker("reports").await.unwrap();
    assert!(matches!(info.state, jobs_core::BreakerState::Open { .. }), "stored in the backend: {info:?}");
    let shown = cli(&q, &["queue", "breaker", "reports"]).await.ok().to_owned();
    assert!(
        shown.contains("state            open: no job starts for 9m ") && shown.contains(", then one probe"),
        "{shown}"
    );
    let doc = cli(&q, &["queue", "breaker", "reports", "--close", "--json"]).await.json();
    assert_eq!(doc["state"], "closed");
    assert_eq!(cli(&q, &["queue", "breaker", "reports", "--open", "10m", "--close"]).await.code, 2);
    let doc = cli(&q, &["queue", "limits", "reports", "--breaker", "none", "--json"]).await.json();
    assert_eq!(doc["breaker"], serde_json::Value::Null);

    // A group's own breaker.
    let doc = cli(&q, &["queue", "limits", "reports", "--group-breaker", "3/1m:20s", "--json"]).await.json();
    assert_eq!(doc["group_breaker"], "3/1m:20s");
    assert_eq!(q.policy("reports").await.unwrap().group_breaker, Some("3/1m:20s".parse().unwrap()), "stored");
    let doc = cli(&q, &["queue", "breaker", "reports", "--group", "acme", "--open", "10m", "--json"]).await.json();
    assert_eq!((doc["groups_open"].clone(), doc["groups_opened"].clone()), (json!(1), json!(1)), "{doc}");
    assert_eq!((doc["groups"][0]["group"].clone(), doc["groups"][0]["state"].clone()), (json!("acme"), json!("open")));
    assert_eq!(doc["state"], "closed", "the queue's own breaker is not touched");
    let shown = cli(&q, &["queue", "breaker", "reports"]).await.ok().to_owned();
    assert!(shown.contains("group breaker    3/1m:20s\ngroups open      1 (opened 1 times)\n  acme           open: no job starts for 9m "), "{shown}");
    let doc = cli(&q, &["queue", "breaker", "reports", "--group", "acme", "--close", "--json"]).await.json();
    assert_eq!((doc["groups_open"].clone(), doc["groups"].clone()), (json!(0), json!([])), "{doc}");
    assert_eq!(
        cli(&q, &["queue", "breaker", "reports", "--group", "acme"]).await.code,
        2,
        "a group needs --open or --close"
    );
    let doc = cli(&q, &["queue", "limits", "reports", "--group-breaker", "none", "--json"]).await.json();
    assert_eq!(doc["group_breaker"], serde_json::Value::Null);
}

async fn queue_groups(q: SharedQueue) {
    assert_eq!(cli(&q, &["queue", "groups", "sync"]).await.ok(), "no group of queue `sync` has pending jobs\n");
    for (account, n) in [(7u64, 3), (9, 1)] {
        for _ in 0..n {
            let job = json!({ "account_id": account, "full": false }).to_string();
            cli(&q, &["enqueue", "sync_account", "--json", &job]).await.ok();
        }
    }
    let text = cli(&q, &["queue", "groups", "sync"]).await.ok().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("GROUP") && lines[0].contains("CONCURRENCY"), "{text}");
    assert!(lines[1].starts_with('7') && lines[1].ends_with("3        0            2"), "{text}");
    let doc = cli(&q, &["queue", "groups", "sync", "--limit", "1", "--json"]).await.json();
    assert_eq!(
        doc,
        json!({ "queue": "sync", "groups": [{ "key": "7", "pending": 3, "running": 0, "concurrency": 2 }] })
    );
    assert_eq!(cli(&q, &["queue", "groups", "sync", "--limit", "0"]).await.code, 2);
}

async fn schedules(q: SharedQueue) {
    assert_eq!(cli(&q, &["schedules", "list"]).await.ok(), "no schedules\n");
    assert_eq!(cli(&q, &["schedules", "list", "--json"]).await.json(), json!({ "schedules": [] }));
    let scheduler = Scheduler::new(q.clone());
    scheduler.add("nightly-report", "0 0 3 * * *", "Europe/Berlin", BuildReport { day: 1 }).await.unwrap();
    let text = cli(&q, &["schedules", "list"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAME", "JOB", "CRON", "ZONE", "NEXT", "LAST"]);
    for want in ["nightly-report  build_report  0 0 3 * * *  Europe/Berlin  in ", "  never"] {
        assert!(lines[1].contains(want), "`{want}` in {}", lines[1]);
    }
    let long = format!("monthly-{}", "x".repeat(100));
    scheduler.add(&long, "0 0 1 * *", "America/Argentina/Buenos_Aires", BuildReport { day: 2 }).await.unwrap();
    let text = cli(&q, &["schedules", "list"]).await.ok().to_owned();
    fits_80(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("monthly-xxx") && lines[1].contains('…'), "{text}");
    assert!(lines[2].starts_with("nightly-report  ") && lines[2].contains("0 0 3 * * *"), "{text}");
    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    let s = &doc["schedules"][1];
    assert_eq!(
        (s["name"].as_str(), s["job"].as_str(), s["queue"].as_str()),
        (Some("nightly-report"), Some("build_report"), Some("reports"))
    );
    assert_eq!((s["cron"].as_str(), s["timezone"].as_str()), (Some("0 0 3 * * *"), Some("Europe/Berlin")));
    assert_eq!((s["paused"].as_bool(), s["catch_up"].as_str()), (Some(false), Some("one")));
    assert_eq!(s["orphaned"], false, "no live pool: nothing can be called orphaned");
    assert!(s["next_fire"].as_str().is_some_and(|t| t.ends_with(":00:00.000Z")) && s["last_run"].is_null(), "{s}");

    let out = cli(&q, &["schedules", "pause", "nightly-report"]).await;
    assert_eq!(
        out.ok(),
        "paused schedule `nightly-report`: it enqueues nothing until `schedules resume nightly-report`\n"
    );
    let text = cli(&q, &["schedules", "list"]).await.ok().to_owned();
    assert!(text.lines().nth(2).is_some_and(|l| l.contains("paused")), "{text}");
    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    assert_eq!(
        (doc["schedules"][1]["paused"].as_bool(), doc["schedules"][1]["next_fire"].is_null()),
        (Some(true), true)
    );
    let doc = cli(&q, &["schedules", "resume", "nightly-report", "--json"]).await.json();
    assert_eq!(doc, json!({ "schedule": "nightly-report", "paused": false }));
    let out = cli(&q, &["schedules", "resume", "nope"]).await;
    assert_eq!(out.fails(1), "error: no schedule named `nope`");
    assert_eq!(cli(&q, &["schedules", "pause", "nope"]).await.fails(1), "error: no schedule named `nope`");
}

/// A stored schedule whose job no live pool runs (its code was removed):
/// shown orphaned in the table and in JSON, removed with confirmation.
async fn orphaned_schedules(q: SharedQueue) {
    // A pool links this binary's jobs; its scheduler is off so that nothing
    // ticks or stores schedules under the test.
    let pool =
        WorkerPool::builder(q.clone()).queues(["orphan-pool"]).scheduler(false).data(crate::Factor(2)).start().unwrap();
    wait_until("the pool reported its presence", || async { !q.pools().await.unwrap().is_empty() }).await;
    Scheduler::new(q.clone()).add("nightly-report", "0 0 3 * * *", "UTC", BuildReport { day: 1 }).await.unwrap();
    q.put_schedule(ScheduleDef::new("legacy-export", "0 0 4 * * *", "UTC", "export_removed_from_code", "reports"))
        .await
        .unwrap();

    let out = cli(&q, &["schedules", "list"]).await;
    let text = out.ok();
    fits_80(text);
    let lines: Vec<&str> = text.lines().collect();
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        ["legacy-export", "export_removed_from_code", "0", "0", "4", "*", "*", "*", "UTC", "orphaned", "never"]
    );
    assert!(lines[2].starts_with("nightly-report") && lines[2].contains("  in "), "{text}");
    assert!(!lines[2].contains("orphaned"), "its job is run by the pool: {text}");
    assert_eq!(
        out.err,
        "1 schedule is orphaned: no live worker pool runs its job, so its ticks are skipped \
         (`schedules remove NAME` deletes it)\n"
    );
    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    let flags: Vec<(&str, bool)> = doc["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["orphaned"].as_bool().unwrap()))
        .collect();
    assert_eq!(flags, [("legacy-export", true), ("nightly-report", false)]);

    cli(&q, &["schedules", "pause", "legacy-export"]).await.ok();
    let text = cli(&q, &["schedules", "list"]).await.ok().to_owned();
    fits_80(&text);
    assert!(text.lines().nth(1).is_some_and(|l| l.ends_with("  paused, orphaned  never")), "{text}");

    // Asked first: refused without a terminal, declined, then confirmed.
    let args = ["schedules", "remove", "legacy-export"];
    assert_eq!(
        cli(&q, &args).await.fails(2),
        "error: refusing to remove schedule `legacy-export` without confirmation: stdin is not a terminal; \
         pass --yes to confirm"
    );
    let out = cli_answering(&q, &args, "n\n").await;
    assert_eq!((out.code, out.out.as_str()), (1, ""), "{out:?}");
    assert_eq!(
        out.err,
        "Remove schedule `legacy-export` (job `export_removed_from_code`, orphaned: no live pool runs it)? \
         This cannot be undone. [y/N] error: not confirmed: did not remove schedule `legacy-export`\n"
    );
    assert_eq!(cli(&q, &["schedules", "list", "--json"]).await.json()["schedules"].as_array().unwrap().len(), 2);
    let out = cli(&q, &["schedules", "remove", "legacy-export", "--yes"]).await;
    assert_eq!(out.ok(), "removed schedule `legacy-export`: it enqueues no more `export_removed_from_code` jobs\n");
    let out = cli(&q, &["schedules", "list"]).await;
    assert_eq!((out.ok().lines().count(), out.err.as_str()), (2, ""), "{out:?}");
    assert!(out.out.lines().nth(1).is_some_and(|l| l.starts_with("nightly-report")), "{out:?}");

    // An unknown name fails before anything is asked.
    let out = cli(&q, &["schedules", "remove", "legacy-export"]).await;
    assert_eq!(out.fails(1), "error: no schedule named `legacy-export`");
    assert_eq!(out.err, "error: no schedule named `legacy-export`\n", "nothing asked: {out:?}");

    // A schedule a pool still runs can be removed too; the prompt says so.
    let out = cli_answering(&q, &["schedules", "remove", "nightly-report", "--json"], "y\n").await;
    assert_eq!(out.json(), json!({ "schedule": "nightly-report", "job": "build_report", "removed": true }));
    assert!(out.err.starts_with("Remove schedule `nightly-report` (job `build_report`, still run by a live pool)?"));
    assert_eq!(cli(&q, &["schedules", "list"]).await.ok(), "no schedules\n");
    pool.shutdown().await.unwrap();
}
