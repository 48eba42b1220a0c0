//! `schedules add|trigger|remove`: a schedule stored, run once and deleted
//! from the command line, and what each refuses.

use std::time::SystemTime;

use jobs_core::{CronSchedule, SharedQueue};
use serde_json::json;

use crate::support::{cli, on_every_backend};

on_every_backend!(
    add_trigger_and_remove,
    add_refuses_what_is_wrong,
    unknown_schedules,
    add_with_rules,
    grouped_jobs_keep_their_group
);

/// `2030-01-31T02:00:00Z`: how `schedules add` prints a tick.
fn tick(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn add_trigger_and_remove(q: SharedQueue) {
    let add = ["schedules", "add", "nightly", "--job", "build_report", "--cron", "0 3 * * *"];
    let out = cli(&q, &[&add[..], &["--timezone", "Europe/Berlin", "--json", r#"{"day": 3}"#]].concat()).await;
    let text = out.ok().to_owned();
    let next = CronSchedule::parse("0 3 * * *", "Europe/Berlin").unwrap().next_after(SystemTime::now()).unwrap();
    let head = "added schedule `nightly`: `build_report` on queue `reports` at `0 3 * * *` (Europe/Berlin); next tick";
    assert!(text.starts_with(&format!("{head} {} (in ", tick(next))), "{text}");
    assert_eq!(out.err, "", "no pool runs, so nothing is orphaned");

    // Listed with its next tick.
    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    let s = &doc["schedules"][0];
    assert_eq!(
        (s["name"].as_str(), s["job"].as_str(), s["queue"].as_str(), s["timezone"].as_str()),
        (Some("nightly"), Some("build_report"), Some("reports"), Some("Europe/Berlin"))
    );
    assert_eq!(s["next_fire"].as_str(), Some(tick(next).replace('Z', ".000Z").as_str()));
    assert_eq!((s["paused"].as_bool(), s["last_run"].is_null()), (Some(false), true));
    assert!(cli(&q, &["schedules", "list"]).await.ok().contains("nightly"));

    // Trigger: a pending job of the schedule's name and payload, ticks unmoved.
    let out = cli(&q, &["schedules", "trigger", "nightly"]).await;
    let id = out.ok().trim_end().to_owned();
    assert_eq!(out.out, format!("{id}\n"), "stdout is the id alone");
    assert_eq!(
        out.err,
        "enqueued `build_report` on queue `reports` from schedule `nightly`, due now; its ticks are unchanged\n"
    );
    let job = cli(&q, &["job", &id, "--json"]).await.json();
    assert_eq!(
        (job["name"].as_str(), job["queue"].as_str(), job["status"].as_str(), &job["payload"]),
        (Some("build_report"), Some("reports"), Some("pending"), &json!({ "day": 3 }))
    );
    let after = cli(&q, &["schedules", "list", "--json"]).await.json();
    assert_eq!(after, doc, "last run, last job and next tick unchanged");
    let out = cli(&q, &["schedules", "trigger", "nightly", "--json"]).await.json();
    let second = out["id"].as_str().unwrap().to_owned();
    assert_eq!(out, json!({ "schedule": "nightly", "job": "build_report", "id": second }));
    assert_ne!(second, id, "each trigger enqueues a job of its own");

    // Overrides reach the triggered job; adding again replaces.
    let mail = r#"{"to": "ann@example.com", "subject": "digest"}"#;
    let add = ["schedules", "add", "digest", "--job", "send_mail", "--cron", "0 0 9 * * 1", "--json", mail];
    let out = cli(&q, &[&add[..], &["--queue", "digests", "--priority", "low"]].concat()).await;
    assert!(out.ok().starts_with("added schedule `digest`: `send_mail` on queue `digests` at `0 0 9 * * 1` (UTC);"));
    let out = cli(&q, &[&add[..], &["--queue", "digests", "--priority", "critical"]].concat()).await;
    assert!(out.ok().starts_with("replaced schedule `digest`: "), "{out:?}");
    let id = cli(&q, &["schedules", "trigger", "digest"]).await.ok().trim_end().to_owned();
    let job = cli(&q, &["job", &id, "--json"]).await.json();
    assert_eq!(
        (job["queue"].as_str(), job["priority"].as_str(), job["max_retries"].as_u64()),
        (Some("digests"), Some("critical"), Some(2)),
        "the job's own retries"
    );

    // A paused schedule says so, and can still be triggered.
    cli(&q, &["schedules", "pause", "digest"]).await.ok();
    let out = cli(&q, &[&add[..], &["--queue", "digests"]].concat()).await;
    assert!(out.ok().ends_with("; paused: no tick until `schedules resume digest`\n"), "{out:?}");
    cli(&q, &["schedules", "trigger", "digest"]).await.ok();

    // Remove: gone from the list.
    let out = cli(&q, &["schedules", "remove", "nightly", "--yes"]).await;
    assert_eq!(out.ok(), "removed schedule `nightly`: it enqueues no more `build_report` jobs\n");
    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    let names: Vec<&str> = doc["schedules"].as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["digest"]);
}

async fn add_refuses_what_is_wrong(q: SharedQueue) {
    let add = |job: &'static str, cron: &'static str, more: &'static [&'static str]| {
        let q = q.clone();
        async move {
            let argv = [&["schedules", "add", "nightly", "--job", job, "--cron", cron][..], more].concat();
            cli(&q, &argv).await
        }
    };
    let out = add("build_reprot", "0 3 * * *", &[]).await;
    let line = out.fails(2);
    assert!(
        line.starts_with("error: unknown job `build_reprot` (did you mean `build_report`?); linked jobs: "),
        "{line}"
    );
    for name in ["always_fails", "build_report", "send_mail"] {
        assert!(line.contains(name), "{line}");
    }
    let out = add("build_report", "61 3 * * *", &["--json", r#"{"day": 3}"#]).await;
    assert!(out.fails(2).starts_with("error: invalid cron expression `61 3 * * *`: "), "{out:?}");
    let out = add("build_report", "3 * *", &["--json", r#"{"day": 3}"#]).await;
    assert!(out.fails(2).starts_with("error: cron expression `3 * *` has 3 fields: use 5"), "{out:?}");
    let out = add("build_report", "0 3 * * *", &["--timezone", "Mars/Olympus", "--json", r#"{"day": 3}"#]).await;
    assert_eq!(
        out.fails(2),
        "error: unknown time zone `Mars/Olympus`: use an IANA name such as `Europe/Berlin` or `UTC`"
    );
    let out = add("build_report", "0 3 * * *", &["--json", r#"{"day": 40}"#]).await;
    assert!(out.fails(2).starts_with("error: invalid payload for job `build_report`: field `day` (range): "));
    let out = add("build_report", "0 3 * * *", &[]).await;
    assert_eq!(out.fails(2), "error: invalid payload for job `build_report`: missing field `day`");
    let out = add("send_mail", "0 3 * * *", &["--json", r#"{"to": "nope", "subject": ""}"#]).await;
    let line = out.fails(2);
    assert!(line.starts_with("error: invalid payload for job `send_mail`: field `to` (email): "), "{line}");
    assert!(line.contains("; field `subject` (length): "), "every broken rule: {line}");
    let out = add("build_report", "0 3 * * *", &["--json", "[3]"]).await;
    assert!(out.fails(2).starts_with("error: --json must be a JSON object with the job's fields"), "{out:?}");
    let out = add("build_report", "0 3 * * *", &["--json", r#"{"day": 3}"#, "--queue", "a b"]).await;
    assert!(out.fails(2).starts_with("error: invalid queue name `a b`"), "{out:?}");
    let argv = ["schedules", "add", "a b", "--job", "build_report", "--cron", "0 3 * * *", "--json", r#"{"day": 3}"#];
    assert!(cli(&q, &argv).await.fails(2).starts_with("error: invalid schedule name `a b`"));
    // Refused by the parser: no --cron.
    let out = cli(&q, &["schedules", "add", "nightly", "--job", "build_report"]).await;
    assert_eq!((out.code, out.out.as_str()), (2, ""));
    assert!(out.err.contains("--cron <EXPR>"), "{out:?}");

    assert_eq!(cli(&q, &["schedules", "list"]).await.ok(), "no schedules\n", "nothing was stored");
}

async fn unknown_schedules(q: SharedQueue) {
    for args in [
        &["schedules", "trigger", "nope"][..],
        &["schedules", "trigger", "nope", "--json"],
        &["schedules", "remove", "nope", "--yes"],
        &["schedules", "remove", "nope"],
    ] {
        let out = cli(&q, args).await;
        assert_eq!(out.fails(1), "error: no schedule named `nope`", "{args:?}");
        assert_eq!(out.err, "error: no schedule named `nope`\n", "nothing asked or enqueued: {args:?}");
    }
}

/// `schedules add` with an interval, bounds, jitter, overlap and exclusion
/// dates: printed on add, listed in the table and in `--json`; an ended
/// schedule says so; bad values are refused by name.
async fn add_with_rules(q: SharedQueue) {
    let day = ["--json", r#"{"day": 3}"#];
    let argv = [
        &["schedules", "add", "prices", "--job", "build_report", "--every", "90s", "--jitter", "30s"][..],
        &["--overlap", "skip", "--exclude", "2030-12-25", "--exclude", "2030-12-26"],
        &["--ends-at", "2099-01-01T00:00:00Z"],
        &day,
    ]
    .concat();
    let text = cli(&q, &argv).await.ok().to_owned();
    let head = "added schedule `prices`: `build_report` on queue `reports` every 1m 30s \
                (UTC, until 2099-01-01T00:00:00Z, jitter 30s, overlap skip, except 2 dates); next tick ";
    assert!(text.starts_with(head), "{text}");

    let past = [&["schedules", "add", "old", "--job", "build_report", "--every", "1m"][..], &day]
        .concat()
        .into_iter()
        .chain(["--starts-at", "2020-01-01T00:00:00Z", "--ends-at", "2020-01-02T00:00:00Z"])
        .collect::<Vec<_>>();
    let text = cli(&q, &past).await.ok().to_owned();
    assert!(text.ends_with("; it has ended: no tick comes after its end\n"), "{text}");

    let doc = cli(&q, &["schedules", "list", "--json"]).await.json();
    let (old, prices) = (&doc["schedules"][0], &doc["schedules"][1]);
    assert_eq!(
        (prices["cron"].as_str(), prices["every"].as_str(), prices["jitter"].as_str()),
        (Some(""), Some("1m 30s"), Some("30s"))
    );
    assert_eq!((prices["overlap"].as_str(), &prices["exclude"]), (Some("skip"), &json!(["2030-12-25", "2030-12-26"])));
    assert_eq!(
        (prices["ends_at"].as_str(), prices["ended"].as_bool()),
        (Some("2099-01-01T00:00:00.000Z"), Some(false))
    );
    assert_eq!((prices["skipped"].as_u64(), prices["held_tick"].is_null()), (Some(0), true));
    assert_eq!((old["ended"].as_bool(), old["next_fire"].is_null()), (Some(true), true), "{old}");

    let table = cli(&q, &["schedules", "list"]).await.ok().to_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "JOB", "CRON", "ZONE", "NEXT", "LAST", "RULES"]
    );
    assert!(lines[1].starts_with("old ") && lines[1].contains(" ended "), "{table}");
    assert!(lines[2].contains("every 1m 30s") && lines[2].contains("until 2099"), "{table}");

    let refused = |more: &'static [&'static str]| {
        let q = q.clone();
        async move {
            let argv =
                [&["schedules", "add", "x", "--job", "build_report"][..], more, &["--json", r#"{"day": 3}"#]].concat();
            cli(&q, &argv).await
        }
    };
    let out = refused(&["--every", "0s"]).await;
    assert_eq!(
        out.fails(2),
        "error: schedule `x`: invalid `every` `0s`: an interval is at least 1s (write e.g. `90s` or `1h 30m`)"
    );
    let out =
        refused(&["--every", "1m", "--starts-at", "2030-01-02T00:00:00Z", "--ends-at", "2030-01-01T00:00:00Z"]).await;
    assert!(
        out.fails(2).starts_with("error: schedule `x`: invalid `ends_at` `2030-01-01T00:00:00Z`: must be after"),
        "{out:?}"
    );
    for parser in [
        &["--every", "1m", "--cron", "0 3 * * *"][..],
        &["--every", "soon"],
        &["--every", "1m", "--overlap", "sometimes"],
        &["--every", "1m", "--exclude", "25.12.2030"],
    ] {
        let out = refused(parser).await;
        assert_eq!((out.code, out.out.as_str()), (2, ""), "{parser:?}: {out:?}");
    }
    let names: Vec<String> = cli(&q, &["schedules", "list", "--json"]).await.json()["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["old", "prices"], "nothing refused was stored");
}

/// A schedule of a grouped job type, added by name with a JSON payload:
/// its jobs are in the payload's group, with the type's bound.
async fn grouped_jobs_keep_their_group(q: SharedQueue) {
    let payload = r#"{"account_id": 7, "full": false}"#;
    cli(&q, &["schedules", "add", "sync-7", "--job", "sync_account", "--cron", "0 3 * * *", "--json", payload])
        .await
        .ok();
    for _ in 0..3 {
        cli(&q, &["schedules", "trigger", "sync-7"]).await.ok();
    }
    let doc = cli(&q, &["queue", "groups", "sync", "--json"]).await.json();
    assert_eq!(
        doc,
        json!({ "queue": "sync", "groups": [{ "key": "7", "pending": 3, "running": 0, "concurrency": 2 }] }),
        "every triggered job is in group 7, bounded at 2"
    );
}
