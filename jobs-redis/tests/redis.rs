//! Behaviours of the Redis backend beyond the conformance suite: key layout,
//! script reloads, credentials, bounded batches, retention, gauges,
//! wake-ups and pool presence.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use jobs_core::backend::{FetchRequest, Finish, Outcome};
use jobs_core::testing::cases::fetch_of as req;
use jobs_core::testing::unique_queue;
use jobs_core::{
    JobId, JobQueue, JobStatus, NewJob, PoolInfo, PoolPresence, Priority, QueueAdmin, QueueInspect, Retention,
    ScheduleStore, When,
};
use jobs_redis::keys::key_slot;
use jobs_redis::testing::{shared_server_url, RedisServer, ServerOptions};
use jobs_redis::{RedisConfig, RedisQueue};

fn run<F: std::future::Future<Output = ()>>(f: F) {
    jobs_core::testing::run(f)
}

fn raw(queue: &str, run_at: Option<SystemTime>) -> NewJob {
    NewJob { max_retries: Some(0), run_at: run_at.map(When::At), ..NewJob::new(JobId::new(queue), "x", b"{}".to_vec()) }
}

async fn raw_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_server_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// A queue handle with its own key prefix, so tests can look at every key.
async fn isolated(retention: Retention) -> (RedisQueue, String) {
    let prefix = unique_queue("p");
    let config = RedisConfig { prefix: prefix.clone(), retention, ..RedisConfig::new(shared_server_url()) };
    (RedisQueue::from_config(&config).await.unwrap(), prefix)
}

async fn run_one(q: &RedisQueue, queue: &str, outcome: Outcome) -> JobId {
    q.enqueue_many(vec![raw(queue, None)]).await.unwrap();
    let job = q.fetch(&req(queue, 1)).await.unwrap().jobs.remove(0);
    q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
    job.id
}

#[test]
fn every_key_of_a_queue_is_in_one_slot() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "email";
        let mut unique = raw(queue, None);
        unique.unique_for = Some(Duration::from_secs(60));
        q.enqueue_many(vec![unique, raw(queue, Some(SystemTime::now() + Duration::from_secs(60)))]).await.unwrap();
        let done = run_one(&q, queue, Outcome::Succeeded { result: Some(b"1".to_vec()) }).await;
        run_one(&q, queue, Outcome::Dead { error: "x".into() }).await;
        q.pause(queue).await.unwrap();
        assert!(q.job(&done).await.unwrap().is_some());
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut raw_conn().await).await.unwrap();
        let queue_keys: Vec<&String> = keys.iter().filter(|k| k.contains("{email}")).collect();
        assert!(queue_keys.len() >= 8, "{keys:?}");
        for k in &queue_keys {
            assert_eq!(key_slot(k.as_bytes()), key_slot(b"email"), "{k}");
        }
        // Only the global list of queues lives elsewhere.
        let others: Vec<&String> = keys.iter().filter(|k| !k.contains("{email}")).collect();
        assert_eq!(others, vec![&format!("{prefix}:queues")]);
    });
}

/// One job sent again (its enqueue retried after a lost reply) is stored
/// and listed once, with its first record.
#[test]
fn one_job_sent_again_is_stored_once() {
    run(async {
        let (q, _prefix) = isolated(Retention::default()).await;
        let queue = "again";
        let job = raw(queue, None);
        let first = q.enqueue_many(vec![job.clone()]).await.unwrap();
        let changed = NewJob { payload: b"{\"x\":1}".to_vec(), ..job };
        assert_eq!(q.enqueue_many(vec![changed]).await.unwrap(), first);
        assert_eq!(q.stats().await.unwrap().queue(queue).pending, 1);
        let got = q.fetch(&req(queue, 4)).await.unwrap();
        assert_eq!(got.jobs.len(), 1);
        assert_eq!(got.jobs[0].payload, b"{}".to_vec(), "the first record kept");
    });
}

/// The per-minute history of ended attempts expires after 25 hours: its
/// hash gets its expiry from the call that creates it, and a call that
/// creates one of its counts sets it again.
#[test]
fn the_history_of_a_minute_expires() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "history";
        let minutes = format!("{prefix}:{{{queue}}}:minute:*");
        let keys = || async {
            let k: Vec<String> = redis::cmd("KEYS").arg(&minutes).query_async(&mut raw_conn().await).await.unwrap();
            k
        };
        let ttl = |k: String| async move {
            let t: i64 = redis::cmd("TTL").arg(&k).query_async(&mut raw_conn().await).await.unwrap();
            t
        };
        run_one(&q, queue, Outcome::Succeeded { result: None }).await;
        let made = keys().await;
        assert!(!made.is_empty());
        for k in made {
            assert!(ttl(k.clone()).await > 89_000, "{k}: set by the call that made the hash");
            let _: () = redis::cmd("PERSIST").arg(&k).query_async(&mut raw_conn().await).await.unwrap();
        }
        run_one(&q, queue, Outcome::Dead { error: "x".into() }).await;
        let mut failed = 0;
        for k in keys().await {
            let has: bool =
                redis::cmd("HEXISTS").arg(&k).arg("failed").query_async(&mut raw_conn().await).await.unwrap();
            if has {
                failed += 1;
                assert!(ttl(k.clone()).await > 89_000, "{k}: set again by the call that made its `failed` count");
            }
        }
        assert_eq!(failed, 1, "one minute counts the failure");
    });
}

#[test]
fn scripts_are_reloaded_after_script_flush() {
    run(async {
        let q = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let queue = unique_queue("noscript");
        q.enqueue_many(vec![raw(&queue, None)]).await.unwrap();
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw_conn().await).await.unwrap();
        // EVALSHA answers NOSCRIPT; the script is loaded and the call succeeds.
        assert_eq!(q.fetch(&req(&queue, 1)).await.unwrap().jobs.len(), 1);
        q.enqueue_many(vec![raw(&queue, None)]).await.unwrap();
    });
}

/// The scripts are functions of one library, loaded again when the server
/// lost it (`FUNCTION FLUSH`, as after a restart or a failover to a replica
/// that never saw it).
#[test]
fn the_library_is_reloaded_after_function_flush() {
    run(async {
        let server = RedisServer::start();
        let q = RedisQueue::connect(&server.url()).await.unwrap();
        let mut c = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let queue = unique_queue("nofunction");
        q.enqueue_many(vec![raw(&queue, None)]).await.unwrap();
        let _: () = redis::cmd("FUNCTION").arg("FLUSH").query_async(&mut c).await.unwrap();
        assert_eq!(q.fetch(&req(&queue, 1)).await.unwrap().jobs.len(), 1);
        assert_eq!(server.command_stat("evalsha", "calls"), 0, "no call went by EVALSHA");
        // The enqueue on the fresh server and the fetch after the flush each
        // found no function, had the library loaded, and were sent again.
        assert_eq!(server.command_stat("fcall", "calls"), 4);
        assert_eq!(server.command_stat("fcall", "failed_calls"), 2);
        assert_eq!(server.command_stat("function|load", "calls"), 2);
    });
}

/// A full Redis (`maxmemory` reached) that lost the library cannot load it
/// again (`FUNCTION LOAD` writes): a job is still read, by `EVALSHA`, and
/// an enqueue is refused with Redis's own word for it, storing nothing.
#[test]
fn a_full_redis_without_the_library_still_answers_reads() {
    run(async {
        let server = RedisServer::start();
        let q = RedisQueue::connect(&server.url()).await.unwrap();
        let queue = unique_queue("full");
        let id = q.enqueue_many(vec![raw(&queue, None)]).await.unwrap().remove(0);
        let mut c = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("FUNCTION").arg("FLUSH").query_async(&mut c).await.unwrap();
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query_async(&mut c).await.unwrap();
        let job = q.job(&id).await.unwrap().expect("the job is read");
        assert_eq!(job.status, JobStatus::Pending);
        let err = q.enqueue_many(vec![raw(&queue, None)]).await.unwrap_err();
        assert!(err.to_string().contains("OOM"), "{err}");
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query_async(&mut c).await.unwrap();
        assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 1, "the refused enqueue stored nothing");
        // The read and the enqueue each tried to load the library and were
        // refused; with room again, the fetch loads it.
        assert_eq!(server.command_stat("function|load", "rejected_calls"), 2);
        assert_eq!(q.fetch(&req(&queue, 1)).await.unwrap().jobs.len(), 1);
        assert_eq!(server.command_stat("function|load", "calls"), 2, "on the fresh server, and after the flush");
    });
}

/// Each call of a library function starts from a script's fresh state:
/// what one call looked up about its queue (here whether the queue has
/// groups, and the groups' bounds) is never what the next call, on another
/// queue, goes by.
#[test]
fn a_call_never_sees_what_the_last_call_looked_up() {
    run(async {
        let (q, _prefix) = isolated(Retention::default()).await;
        let grouped = |queue: &str, limit: Option<u32>| NewJob {
            group: Some(jobs_core::JobGroup { key: "g".into(), concurrency: limit, rate: None }),
            ..raw(queue, None)
        };
        q.enqueue_many(vec![grouped("with-groups", None), grouped("with-groups", None)]).await.unwrap();
        q.enqueue_many(vec![grouped("bounded", Some(1)), grouped("bounded", Some(1))]).await.unwrap();
        for _ in 0..2 {
            // A queue without groups (and without jobs) first: a call that
            // carried its "no groups" into the next would leave the grouped
            // job unseen.
            assert_eq!(q.fetch(&req("without-groups", 10)).await.unwrap().jobs.len(), 0);
            assert_eq!(q.fetch(&req("with-groups", 1)).await.unwrap().jobs.len(), 1);
        }
        // Group `g` of `bounded` runs one job at a time; of `with-groups`,
        // any number: each call reads its own queue's bound.
        assert_eq!(q.fetch(&req("with-groups", 10)).await.unwrap().jobs.len(), 0);
        assert_eq!(q.fetch(&req("bounded", 10)).await.unwrap().jobs.len(), 1);
        assert_eq!(q.fetch(&req("bounded", 10)).await.unwrap().jobs.len(), 0);
    });
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_password() {
    run(async {
        let server =
            RedisServer::start_with(ServerOptions { password: Some("right-horse".into()), ..Default::default() });
        let url = format!("redis://:battery-staple@127.0.0.1:{}", server.port());
        let err = RedisQueue::connect(&url).await.unwrap_err();
        let shown = format!("{err} / {err:?}");
        assert!(shown.contains("cannot connect to Redis at redis://:***@127.0.0.1"), "{shown}");
        assert!(!shown.contains("battery-staple"), "{shown}");
        assert!(!shown.contains("right-horse"), "{shown}");
        // The right one works, and its handle's Debug hides it too.
        let q = RedisQueue::connect(&server.url()).await.unwrap();
        assert!(q.stats().await.unwrap().queues.is_empty());
        let shown = format!("{q:?} {:?}", RedisConfig::new(server.url()));
        assert!(!shown.contains("right-horse"), "{shown}");
        assert!(shown.contains(":***@"), "{shown}");
    });
}

#[test]
fn an_unreachable_server_fails_fast() {
    run(async {
        let refusing = jobs_redis::testing::RefusingPort::new();
        let port = refusing.port();
        let started = std::time::Instant::now();
        let err = RedisQueue::connect(&format!("redis://127.0.0.1:{port}")).await.unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = RedisQueue::connect("http://nope").await.unwrap_err();
        assert!(err.to_string().contains("invalid Redis configuration"), "{err}");
    });
}

#[test]
fn due_jobs_are_promoted_in_bounded_batches() {
    run(async {
        let q = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let queue = unique_queue("promote");
        let due = SystemTime::now() + Duration::from_millis(300);
        q.enqueue_many((0..2500).map(|_| raw(&queue, Some(due))).collect()).await.unwrap();
        assert_eq!(q.stats().await.unwrap().queue(&queue).scheduled, 2500);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = q.fetch(&req(&queue, 1)).await.unwrap();
        assert_eq!(got.jobs.len(), 1);
        let c = q.stats().await.unwrap().queue(&queue);
        assert_eq!((c.pending, c.scheduled, c.running), (999, 1500, 1));
        assert_eq!(got.next_due, Some(Duration::ZERO), "more are due: look again at once");
    });
}

#[test]
fn succeeded_jobs_are_dropped_after_retention() {
    run(async {
        let (q, _) = isolated(Retention { succeeded: Duration::ZERO, ..Retention::default() }).await;
        let id = run_one(&q, "r", Outcome::Succeeded { result: Some(b"1".to_vec()) }).await;
        assert!(q.job(&id).await.unwrap().is_some(), "kept until the next sweep");
        q.fetch(&req("r", 1)).await.unwrap();
        assert!(q.job(&id).await.unwrap().is_none());
    });
}

/// A job's `progress` field is deleted with the job's other fields: by the
/// retention sweep of a succeeded job and by a purge of the dead set.
#[test]
fn progress_fields_go_with_their_jobs() {
    use jobs_core::backend::{ProgressUpdate, ProgressWrite};
    run(async {
        let (q, prefix) = isolated(Retention { succeeded: Duration::ZERO, ..Retention::default() }).await;
        let hash = jobs_redis::keys::QueueKeys::new(&prefix, "r").progress();
        let mut c = raw_conn().await;
        for outcome in [Outcome::Succeeded { result: None }, Outcome::Dead { error: "x".into() }] {
            q.enqueue_many(vec![raw("r", None)]).await.unwrap();
            let job = q.fetch(&req("r", 1)).await.unwrap().jobs.remove(0);
            let update = ProgressUpdate { id: job.id.clone(), token: job.token, fraction: 0.5, note: "half".into() };
            assert_eq!(q.report_progress(&update).await.unwrap(), ProgressWrite::Stored);
            q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
            let kept: Option<String> =
                redis::cmd("HGET").arg(&hash).arg(job.id.ulid().to_string()).query_async(&mut c).await.unwrap();
            assert!(kept.is_some_and(|v| v.starts_with("0.5|") && v.ends_with("|1|half")), "kept when it ends");
        }
        // The sweep of the next fetch takes the succeeded job, the purge the dead one.
        q.fetch(&req("r", 1)).await.unwrap();
        assert_eq!(q.purge_dead("r").await.unwrap(), 1);
        let left: u64 = redis::cmd("HLEN").arg(&hash).query_async(&mut c).await.unwrap();
        assert_eq!(left, 0, "no progress field outlives its job ({prefix})");
    });
}

/// Once its jobs are swept (succeeded) or purged (dead), a queue holds
/// nothing of them: no hash field, no list, set or sorted-set member and no
/// value anywhere names them, whatever options they were enqueued with and
/// whatever they went through (a retry, a snooze, a start mark, progress).
#[test]
fn ended_jobs_leave_nothing_of_theirs() {
    use jobs_core::backend::{ProgressUpdate, ProgressWrite};
    use jobs_core::{CallerId, IfExists, JobGroup, JobKey, KeyMode};
    run(async {
        let (q, prefix) = isolated(Retention { succeeded: Duration::ZERO, ..Retention::default() }).await;
        let queue = "r";
        let now = || When::In(Duration::ZERO);
        let mut ids = Vec::new();
        for (n, end) in [Outcome::Succeeded { result: Some(b"1".to_vec()) }, Outcome::Dead { error: "x".into() }]
            .into_iter()
            .enumerate()
        {
            let job = NewJob {
                max_retries: Some(3),
                timeout: Some(Duration::from_secs(60)),
                unique_for: Some(Duration::from_secs(60)),
                caller_id: Some(CallerId { id: format!("caller-{n}"), if_exists: IfExists::Fail }),
                key: Some(JobKey { key: format!("key-{n}"), mode: KeyMode::Keep }),
                group: Some(JobGroup { key: format!("g{n}"), concurrency: Some(2), rate: None }),
                expires: Some(When::In(Duration::from_secs(3600))),
                payload: format!("{{\"n\":{n}}}").into_bytes(),
                ..raw(queue, None)
            };
            q.enqueue_many(vec![job]).await.unwrap();
            let outcomes = [
                Outcome::Started,
                Outcome::Retry { error: "again".into(), at: now() },
                Outcome::Snooze { at: now(), reason: "later".into(), limit: 5, holds_group: false },
                end,
            ];
            for (i, outcome) in outcomes.into_iter().enumerate() {
                let job = q.fetch(&req(queue, 1)).await.unwrap().jobs.remove(0);
                let finish = |outcome| q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]);
                if i == 0 {
                    ids.push(job.id.ulid().to_string());
                    let update =
                        ProgressUpdate { id: job.id.clone(), token: job.token, fraction: 0.5, note: "half".into() };
                    assert_eq!(q.report_progress(&update).await.unwrap(), ProgressWrite::Stored);
                }
                finish(outcome).await.unwrap();
                if i == 0 {
                    // The start mark leaves the attempt running: it fails.
                    finish(Outcome::Retry { error: "again".into(), at: now() }).await.unwrap();
                }
            }
        }
        // The sweep of the next fetch takes the succeeded job, the purge the dead one.
        assert!(q.fetch(&req(queue, 1)).await.unwrap().jobs.is_empty());
        assert_eq!(q.purge_dead(queue).await.unwrap(), 1);
        let mut c = raw_conn().await;
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut c).await.unwrap();
        let mut held = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut c).await.unwrap();
            let items: Vec<String> = match kind.as_str() {
                "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut c).await.unwrap(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(&mut c).await.unwrap(),
                "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await.unwrap(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query_async(&mut c).await.unwrap(),
                _ => vec![redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
                    .unwrap()
                    .unwrap_or_default()],
            };
            for item in items {
                if ids.iter().any(|id| item.contains(id.as_str()))
                    || item.starts_with("caller-")
                    || item.contains("key-")
                {
                    held.push(format!("{key} ({kind}): {item}"));
                }
            }
        }
        assert!(held.is_empty(), "what the ended jobs left behind: {held:#?}");
    });
}

#[test]
fn dead_set_is_bounded_by_count_and_age() {
    run(async {
        let (q, _) = isolated(Retention { dead_max: 2, ..Retention::default() }).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(run_one(&q, "r", Outcome::Dead { error: "x".into() }).await);
        }
        let dead: Vec<_> = q.dead_jobs("r", 10).await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(dead, vec![ids[2].clone(), ids[1].clone()]);
        assert!(q.job(&ids[0]).await.unwrap().is_none());
        assert_eq!(q.stats().await.unwrap().queue("r").dead, 2);

        let (q, _) = isolated(Retention { dead_age: Duration::ZERO, ..Retention::default() }).await;
        let id = run_one(&q, "r", Outcome::Dead { error: "x".into() }).await;
        q.fetch(&req("r", 1)).await.unwrap();
        assert!(q.job(&id).await.unwrap().is_none());
        assert_eq!(q.stats().await.unwrap().queue("r").dead, 0);
    });
}

/// A job of `queue` deduplicated by its payload `{"n": n}`.
fn unique_job(queue: &str, n: u32) -> NewJob {
    NewJob {
        payload: format!("{{\"n\":{n}}}").into_bytes(),
        format: jobs_core::backend::PayloadFormat::Json,
        unique_for: Some(Duration::from_secs(3600)),
        ..raw(queue, None)
    }
}

/// Finished jobs are bounded by count as well as by age: past
/// `succeeded_max` the oldest go, young as they are, and what they stored
/// goes with them.
#[test]
fn finished_jobs_are_bounded_by_count() {
    run(async {
        let (q, prefix) = isolated(Retention { succeeded_max: 2, ..Retention::default() }).await;
        let mut ids = Vec::new();
        for n in 0..4 {
            let id = q.enqueue_many(vec![unique_job("r", n)]).await.unwrap().remove(0);
            if n == 1 {
                assert_eq!(q.cancel(&id).await.unwrap(), jobs_core::CancelResult::Cancelled);
            } else {
                let job = q.fetch(&req("r", 1)).await.unwrap().jobs.remove(0);
                assert_eq!(job.id, id);
                let outcome = Outcome::Succeeded { result: Some(b"1".to_vec()) };
                q.finish(vec![Finish { id: job.id.clone(), token: job.token, outcome }]).await.unwrap();
            }
            ids.push(id);
        }
        q.fetch(&req("r", 1)).await.unwrap();
        assert!(q.job(&ids[0]).await.unwrap().is_none(), "the oldest succeeded job is gone");
        assert!(q.job(&ids[1]).await.unwrap().is_none(), "the oldest cancelled job is gone");
        assert!(q.job(&ids[2]).await.unwrap().is_some());
        assert!(q.job(&ids[3]).await.unwrap().is_some());
        let mut c = raw_conn().await;
        let base = format!("{prefix}:{{r}}:");
        let done: usize = redis::cmd("LLEN").arg(format!("{base}done")).query_async(&mut c).await.unwrap();
        let records: usize = redis::cmd("HLEN").arg(format!("{base}jobs")).query_async(&mut c).await.unwrap();
        let results: usize = redis::cmd("HLEN").arg(format!("{base}result")).query_async(&mut c).await.unwrap();
        assert_eq!((done, records, results), (2, 2, 2));
        let uniq: Vec<String> = redis::cmd("KEYS").arg(format!("{base}uniq:*")).query_async(&mut c).await.unwrap();
        assert!(uniq.is_empty(), "{uniq:?}");
        let again = q.enqueue_many(vec![unique_job("r", 0)]).await.unwrap().remove(0);
        assert_ne!(again, ids[0], "the same payload is a new job");
    });
}

/// The count bound works off a large backlog in bounded steps.
#[test]
fn finished_jobs_past_the_count_go_in_bounded_batches() {
    run(async {
        let (q, prefix) = isolated(Retention { succeeded_max: 10, ..Retention::default() }).await;
        let jobs: Vec<NewJob> = (0..2500).map(|_| raw("b", None)).collect();
        let ids = q.enqueue_many(jobs).await.unwrap();
        for id in &ids {
            assert_eq!(q.cancel(id).await.unwrap(), jobs_core::CancelResult::Cancelled);
        }
        let mut c = raw_conn().await;
        let done_key = format!("{prefix}:{{b}}:done");
        let done = |c: &mut redis::aio::MultiplexedConnection| {
            let mut c = c.clone();
            let key = done_key.clone();
            async move { redis::cmd("LLEN").arg(key).query_async::<usize>(&mut c).await.unwrap() }
        };
        assert_eq!(done(&mut c).await, 2500);
        q.fetch(&req("b", 1)).await.unwrap();
        assert_eq!(done(&mut c).await, 1500, "one batch per fetch");
        q.fetch(&req("b", 1)).await.unwrap();
        q.fetch(&req("b", 1)).await.unwrap();
        assert_eq!(done(&mut c).await, 10);
        assert!(q.job(&ids[2489]).await.unwrap().is_none());
        assert!(q.job(&ids[2490]).await.unwrap().is_some());
    });
}

#[test]
fn a_resent_batch_is_stored_once() {
    run(async {
        let q = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let queue = unique_queue("resend");
        let jobs = vec![raw(&queue, None), raw(&queue, None)];
        let first = q.enqueue_many(jobs.clone()).await.unwrap();
        // A retry of a call whose reply was lost.
        assert_eq!(q.enqueue_many(jobs).await.unwrap(), first);
        assert_eq!(q.stats().await.unwrap().queue(&queue).pending, 2);
    });
}

/// The gauges kept by the scripts agree with a recount of every job's status.
#[test]
fn gauges_agree_with_a_recount() {
    run(async {
        let (q, _) = isolated(Retention::default()).await;
        let queue = "g";
        let mut jobs: Vec<NewJob> = (0..40).map(|_| raw(queue, None)).collect();
        for (i, j) in jobs.iter_mut().enumerate() {
            j.priority = Priority::ALL[i % 4];
            if i % 5 == 0 {
                j.run_at = Some(When::In(Duration::from_secs(600)));
            }
        }
        let mut all = q.enqueue_many(jobs).await.unwrap();
        let taken = q.fetch(&req(queue, 20)).await.unwrap().jobs;
        let now = SystemTime::now();
        let outcomes = taken.iter().enumerate().map(|(i, j)| Finish {
            id: j.id.clone(),
            token: j.token,
            outcome: match i % 5 {
                0 => Outcome::Succeeded { result: None },
                1 => Outcome::Retry { error: "e".into(), at: When::At(now + Duration::from_secs(60)) },
                2 => Outcome::Dead { error: "e".into() },
                3 => Outcome::Release { at: None, reason: "r".into() },
                _ => Outcome::Release { at: Some(When::In(Duration::from_secs(60))), reason: "r".into() },
            },
        });
        // The last four stay running.
        q.finish(outcomes.take(16).collect()).await.unwrap();
        let dead = q.dead_jobs(queue, 1).await.unwrap().remove(0);
        q.retry_dead(&dead.id).await.unwrap();
        let pending = q.fetch(&req(queue, 0)).await.unwrap();
        assert!(pending.jobs.is_empty());
        // Cancel one pending and one scheduled job.
        let ids =
            q.enqueue_many(vec![raw(queue, None), raw(queue, Some(now + Duration::from_secs(60)))]).await.unwrap();
        for id in &ids {
            assert_eq!(q.cancel(id).await.unwrap(), jobs_core::CancelResult::Cancelled);
        }
        all.extend(ids);
        // A lease that expires: reclaimed, out of attempts (max_retries 0),
        // dead.
        let short = FetchRequest { lease: Duration::from_millis(1), ..req(queue, 1) };
        let lost = q.fetch(&short).await.unwrap().jobs.remove(0);
        // Its handler started: the lost lease is an attempt.
        q.finish(vec![Finish { id: lost.id.clone(), token: lost.token, outcome: Outcome::Started }]).await.unwrap();
        jobs_core::testing::eventually("reclaimed", || async {
            q.fetch(&req(queue, 0)).await.unwrap();
            q.job(&lost.id).await.unwrap().unwrap().status == JobStatus::Dead
        })
        .await;
        assert!(q.stats().await.unwrap().queue(queue).dead >= 3);

        let mut recount: HashMap<(String, String), u64> = HashMap::new();
        for id in &all {
            let info = q.job(id).await.unwrap().unwrap();
            *recount.entry((info.status.to_string(), info.priority.rank().to_string())).or_default() += 1;
        }
        let stats = q.stats().await.unwrap();
        for p in Priority::ALL {
            let c = stats.get(queue, p);
            let n = |s: &str| recount.get(&(s.to_owned(), p.rank().to_string())).copied().unwrap_or(0);
            assert_eq!(
                (c.pending, c.scheduled, c.running, c.retrying, c.dead),
                (n("pending"), n("scheduled"), n("running"), n("retrying"), n("dead")),
                "{p}"
            );
        }
        let t = stats.queue(queue);
        assert_eq!(t.running, 4);
        assert_eq!(t.processed, 4);
        assert_eq!(t.failed, 3 + 3 + 1, "retried, dead, reclaimed");
        // Purged dead jobs leave the gauge too.
        let purged = q.purge_dead(queue).await.unwrap();
        assert_eq!(purged, t.dead);
        assert_eq!(q.stats().await.unwrap().queue(queue).dead, 0);
    });
}

#[test]
fn a_waiter_wakes_on_an_enqueue_from_another_handle() {
    run(async {
        let a = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let b = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let queue = unique_queue("wake");
        let mut w = a.waiter(std::slice::from_ref(&queue)).unwrap();
        // The first wait returns once the subscription is in place.
        w.arm();
        tokio::time::timeout(Duration::from_secs(5), w.wait(Duration::from_secs(3600))).await.unwrap().unwrap();
        w.arm();
        b.enqueue_many(vec![raw(&queue, None)]).await.unwrap();
        // Would block for an hour if the wake-up were lost.
        tokio::time::timeout(Duration::from_secs(5), w.wait(Duration::from_secs(3600))).await.expect("woken").unwrap();
        // Nothing more: a wait times out.
        w.arm();
        let started = std::time::Instant::now();
        w.wait(Duration::from_millis(200)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(190));
    });
}

/// A presence record of pool `id`.
fn pool_info(id: &str) -> PoolInfo {
    PoolInfo {
        id: id.into(),
        host: "h".into(),
        pid: 1,
        queues: vec!["a".into()],
        workers: 2,
        running: 0,
        running_jobs: vec![],
        ahead: 0,
        started_at: SystemTime::now(),
        last_seen: SystemTime::now(),
        jobs: vec![],
    }
}

#[test]
fn pools_are_listed_until_their_presence_expires() {
    run(async {
        let (q, _) = isolated(Retention::default()).await;
        q.report_pool(pool_info("short"), Duration::from_millis(150)).await.unwrap();
        q.report_pool(pool_info("long"), Duration::from_secs(60)).await.unwrap();
        q.report_pool(pool_info("gone"), Duration::from_secs(60)).await.unwrap();
        q.remove_pool("gone").await.unwrap();
        let ids = |v: Vec<PoolInfo>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
        assert_eq!(ids(q.pools().await.unwrap()), vec!["short", "long"]);
        jobs_core::testing::eventually("the short one expired", || async {
            ids(q.pools().await.unwrap()) == vec!["long"]
        })
        .await;
    });
}

/// The pools' index keeps no entry of a pool that died without removing
/// itself once another pool reports, though nobody lists the pools.
#[test]
fn heartbeats_prune_the_pools_index() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let mut c = redis::Client::open(shared_server_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let index = format!("{prefix}:{{:pools}}:index");
        for i in 0..20 {
            q.report_pool(pool_info(&format!("dead-{i}")), Duration::from_millis(20)).await.unwrap();
        }
        // Until their records have expired on the server's clock.
        let keys: Vec<String> = (0..20).map(|i| format!("{prefix}:{{:pools}}:dead-{i}")).collect();
        jobs_core::testing::eventually("the dead pools' records expired", || {
            let mut c = c.clone();
            let keys = keys.clone();
            async move {
                let n: usize = redis::cmd("EXISTS").arg(keys).query_async(&mut c).await.unwrap();
                n == 0
            }
        })
        .await;
        q.report_pool(pool_info("alive"), Duration::from_secs(60)).await.unwrap();
        let members: Vec<String> = redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1).query_async(&mut c).await.unwrap();
        assert_eq!(members, vec!["alive".to_owned()]);
    });
}

#[test]
fn job_info_reports_the_running_attempt_and_status() {
    run(async {
        let q = RedisQueue::connect(&shared_server_url()).await.unwrap();
        let queue = unique_queue("info");
        let id = q.enqueue_many(vec![raw(&queue, None)]).await.unwrap().remove(0);
        let job = q.fetch(&req(&queue, 1)).await.unwrap().jobs.remove(0);
        let info = q.job(&id).await.unwrap().unwrap();
        assert_eq!(info.status, JobStatus::Running);
        assert_eq!((info.attempts, info.attempt_log.len()), (1, 1));
        assert!(info.attempt_log[0].finished_at.is_none());
        let r = q.finish(vec![Finish {
            id: id.clone(),
            token: job.token,
            outcome: Outcome::Succeeded { result: Some(b"\"ok\"".to_vec()) },
        }]);
        r.await.unwrap();
        let info = q.job(&id).await.unwrap().unwrap();
        assert_eq!(info.result, Some(serde_json::json!("ok")));
        assert!(info.attempt_log[0].finished_at.is_some());
    });
}

/// A schedule moved back and forth between two queues while two schedulers
/// fire its ticks: every tick enqueues one job at most, whichever queue the
/// schedule was on when it fired.
#[test]
fn moving_a_schedule_between_queues_never_fires_a_tick_twice() {
    run(async {
        let (q, _) = isolated(Retention::default()).await;
        let (a, b) = (unique_queue("move.a"), unique_queue("move.b"));
        let name = format!("{a}.moving");
        let schedule_name = name.clone();
        let def = move |queue: &str| jobs_core::ScheduleDef {
            catch_up: jobs_core::CatchUp::All,
            created_at: SystemTime::UNIX_EPOCH,
            ..jobs_core::ScheduleDef::new(&schedule_name, "* * * * * *", "UTC", "x", queue)
        };
        q.put_schedule(def(&a)).await.unwrap();
        let moves = 150;
        let mover = {
            let q = q.clone();
            let (a, b) = (a.clone(), b.clone());
            let def = def.clone();
            tokio::spawn(async move {
                for i in 0..moves {
                    q.put_schedule(def(if i % 2 == 0 { &b } else { &a })).await.unwrap();
                }
            })
        };
        let fire = |q: RedisQueue, name: String, a: String, b: String| async move {
            let mut fired: Vec<(u64, JobId)> = Vec::new();
            for tick in 1..=300u64 {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(tick);
                // Whichever queue the schedule is on now; a refusal because
                // it moved in between is tried on the other one.
                for queue in [&a, &b, &a] {
                    match q.fire_schedule(&name, at, Some(raw(queue, None))).await {
                        Ok(Some(id)) => {
                            fired.push((tick, id));
                            break;
                        }
                        Ok(None) => break,
                        Err(_) => continue,
                    }
                }
            }
            fired
        };
        let one = tokio::spawn(fire(q.clone(), name.clone(), a.clone(), b.clone()));
        let two = tokio::spawn(fire(q.clone(), name.clone(), a.clone(), b.clone()));
        mover.await.unwrap();
        let mut all = one.await.unwrap();
        all.extend(two.await.unwrap());
        let mut per_tick: HashMap<u64, Vec<JobId>> = HashMap::new();
        for (tick, id) in all {
            per_tick.entry(tick).or_default().push(id);
        }
        let twice: Vec<_> = per_tick.iter().filter(|(_, ids)| ids.len() > 1).collect();
        assert!(twice.is_empty(), "ticks fired twice: {twice:?}");
        assert!(per_tick.len() > 100, "the schedulers fired most ticks: {}", per_tick.len());
    });
}

/// Groups stored before `gpend` held their pending counts (only `gwait`
/// had them) keep them: the first script call that meets the queue copies
/// them, and every job still runs, in turn, with the counts right.
#[test]
fn groups_of_the_earlier_layout_keep_their_counts() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "grouped";
        let grouped = |key: &str| NewJob {
            group: Some(jobs_core::JobGroup { key: key.into(), concurrency: None, rate: None }),
            ..raw(queue, None)
        };
        q.enqueue_many(vec![grouped("a"), grouped("a"), grouped("a"), grouped("b")]).await.unwrap();
        // The earlier layout: the pending counts only in `gwait`, no `gpend`.
        let keys = jobs_redis::keys::QueueKeys::new(&prefix, queue);
        let mut conn = raw_conn().await;
        let () = redis::cmd("DEL").arg(keys.group_pending()).query_async(&mut conn).await.unwrap();
        let counts = |q: RedisQueue| async move {
            q.groups(queue, 10).await.unwrap().into_iter().map(|g| (g.key, g.pending)).collect::<Vec<_>>()
        };
        let first = q.fetch(&req(queue, 1)).await.unwrap().jobs;
        assert_eq!(first.len(), 1);
        assert_eq!(counts(q.clone()).await, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        let rest = q.fetch(&req(queue, 10)).await.unwrap().jobs;
        assert_eq!(rest.len(), 3, "every job is fetched");
        assert_eq!(counts(q.clone()).await, vec![], "nothing pending");
        assert_eq!(q.stats().await.unwrap().queue(queue).pending, 0);
    });
}

/// The loaded name of the queue library's function for script `script`
/// (`jobs_<hash>_<script>`).
async fn function_named(conn: &mut redis::aio::MultiplexedConnection, script: &str) -> String {
    let libraries: redis::Value = redis::cmd("FUNCTION").arg("LIST").query_async(conn).await.unwrap();
    let text = format!("{libraries:?}");
    let suffix = format!("_{script}");
    text.split('"')
        .find(|t| t.starts_with("jobs_") && t.ends_with(&suffix) && !t.starts_with("jobs_flows"))
        .unwrap_or_else(|| panic!("no {script} function in {text}"))
        .to_owned()
}

/// An enqueue whose arguments do not parse (more jobs announced than sent,
/// in either layout, a layout or a rank that is none, an option letter
/// enqueue.lua does not know, an option without its value) is refused with an error and stores nothing of its batch.
#[test]
fn an_enqueue_whose_arguments_do_not_parse_stores_nothing() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "malformed";
        // A first enqueue loads the library.
        q.enqueue_many(vec![raw(queue, None)]).await.unwrap();
        let mut conn = raw_conn().await;
        let name = function_named(&mut conn, "enqueue").await;
        let keys = jobs_redis::keys::QueueKeys::new(&prefix, queue);
        let stored = |mut c: redis::aio::MultiplexedConnection, key: String| async move {
            redis::cmd("HLEN").arg(key).query_async::<u64>(&mut c).await.unwrap()
        };
        assert_eq!(stored(conn.clone(), keys.jobs()).await, 1);
        let ulid = JobId::new(queue).ulid().to_string();
        let record = "2|||0|4|0|noop{}";
        let cases: [(&str, Vec<&str>); 6] = [
            ("more jobs announced than sent", vec!["2", "", "", &ulid, record, ""]),
            ("more plain jobs announced than sent", vec!["2", "", "p2", &ulid, record]),
            ("a layout enqueue.lua does not know", vec!["1", "", "q", &ulid, record]),
            ("a plain batch's rank out of range", vec!["1", "", "p7", &ulid, record]),
            ("an unknown option letter", vec!["1", "", "", &ulid, record, "z", "value"]),
            ("an option without its value", vec!["1", "", "", &ulid, record, "gx", "/:a"]),
        ];
        for (what, args) in cases {
            let reply: redis::RedisResult<redis::Value> =
                redis::cmd("FCALL").arg(&name).arg(1).arg(keys.base()).arg(&args).query_async(&mut conn).await;
            let err = reply.expect_err(what);
            assert!(err.to_string().contains("enqueue.lua"), "{what}: {err}");
            assert_eq!(stored(conn.clone(), keys.jobs()).await, 1, "{what}: nothing stored");
        }
        // The same job with its arguments whole is stored.
        let reply: redis::Value = redis::cmd("FCALL")
            .arg(&name)
            .arg(1)
            .arg(keys.base())
            .arg(&["1", "", "", &ulid, record, "g", "/:a"])
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(format!("{reply:?}").contains("okc"), "{reply:?}");
        assert_eq!(stored(conn.clone(), keys.jobs()).await, 2);
        assert_eq!(q.groups(queue, 10).await.unwrap().into_iter().map(|g| g.key).collect::<Vec<_>>(), vec!["a"]);
    });
}

/// A finish whose runs do not match what was sent (a run longer than the
/// items announced, a kind it does not know) is refused with an error, and
/// no item of the batch is recorded, not even those of a run before the
/// one that does not parse.
#[test]
fn a_finish_whose_runs_do_not_parse_records_nothing() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "malformed-finish";
        let ids = q.enqueue_many(vec![raw(queue, None), raw(queue, None)]).await.unwrap();
        let leased = q.fetch(&req(queue, 2)).await.unwrap().jobs;
        assert_eq!(leased.len(), 2);
        let token = leased[0].token.to_string();
        let mut conn = raw_conn().await;
        let name = function_named(&mut conn, "finish").await;
        let keys = jobs_redis::keys::QueueKeys::new(&prefix, queue);
        let (a, b) = (ids[0].ulid().to_string(), ids[1].ulid().to_string());
        let cases: [(&str, Vec<&str>); 2] = [
            ("a run longer than the items announced", vec!["0", "2", &token, "ok", "1", &a, &token, "ok", "2", &b]),
            ("an unknown kind", vec!["0", "2", &token, "ok", "1", &a, &token, "done", "1", &b]),
        ];
        for (what, args) in cases {
            let reply: redis::RedisResult<redis::Value> =
                redis::cmd("FCALL").arg(&name).arg(1).arg(keys.base()).arg(&args).query_async(&mut conn).await;
            let err = reply.expect_err(what);
            assert!(err.to_string().contains("finish.lua"), "{what}: {err}");
            for id in &ids {
                assert_eq!(q.job(id).await.unwrap().unwrap().status, JobStatus::Running, "{what}: nothing recorded");
            }
        }
        let ends = ids
            .iter()
            .map(|id| Finish { id: id.clone(), token: leased[0].token, outcome: Outcome::Succeeded { result: None } })
            .collect();
        assert!(q
            .finish(ends)
            .await
            .unwrap()
            .iter()
            .all(|r| *r == jobs_core::backend::FinishResult::Applied(JobStatus::Succeeded)));
    });
}

/// The busiest group is found behind many groups whose scores are stale
/// (jobs left their lines since their last enqueue): listing reads on past
/// its first window until the top of the set is exact.
#[test]
fn the_busiest_group_is_found_behind_many_stale_scores() {
    run(async {
        let (q, _prefix) = isolated(Retention::default()).await;
        let queue = "stale";
        let grouped = |key: String| NewJob {
            group: Some(jobs_core::JobGroup { key, concurrency: None, rate: None }),
            ..raw(queue, None)
        };
        let mut left = Vec::new();
        for g in 0..60 {
            let jobs: Vec<NewJob> = (0..3).map(|_| grouped(format!("g{g:02}"))).collect();
            let ids = q.enqueue_many(jobs).await.unwrap();
            left.extend(ids[1..].iter().cloned());
        }
        q.enqueue_many(vec![grouped("b".into()), grouped("b".into())]).await.unwrap();
        for id in &left {
            assert_eq!(q.cancel(id).await.unwrap(), jobs_core::CancelResult::Cancelled);
        }
        let top: Vec<(String, u64)> =
            q.groups(queue, 1).await.unwrap().into_iter().map(|g| (g.key, g.pending)).collect();
        assert_eq!(top, vec![("b".to_string(), 2)], "60 groups scored 3 hold 1 job each now");
        let all = q.groups(queue, 100).await.unwrap();
        assert_eq!(all.len(), 61);
        assert!(all[1..].iter().all(|g| g.pending == 1), "{all:?}");
    });
}

/// The per-group hashes are hash tables from a queue's first group on, and
/// stay when the last group goes: a listpack is searched end to end on
/// every read and write.
#[test]
fn group_hashes_are_hash_tables_at_any_size() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "few";
        let job = NewJob {
            group: Some(jobs_core::JobGroup { key: "only".into(), concurrency: None, rate: None }),
            ..raw(queue, None)
        };
        q.enqueue_many(vec![job]).await.unwrap();
        let keys = jobs_redis::keys::QueueKeys::new(&prefix, queue);
        let hashes = [keys.group_pending(), keys.group_running(), keys.group_bounds()];
        let mut conn = raw_conn().await;
        for h in &hashes {
            let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(h).query_async(&mut conn).await.unwrap();
            assert_eq!(enc, "hashtable", "{h}");
        }
        let leased = q.fetch(&req(queue, 1)).await.unwrap().jobs;
        let done = leased.into_iter().map(|j| Finish {
            id: j.id,
            token: j.token,
            outcome: Outcome::Succeeded { result: None },
        });
        q.finish(done.collect()).await.unwrap();
        assert_eq!(q.groups(queue, 10).await.unwrap(), vec![], "the group is gone");
        for h in &hashes {
            let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(h).query_async(&mut conn).await.unwrap();
            assert_eq!(enc, "hashtable", "{h} once its last group went");
        }
    });
}

/// A listing of more groups than Lua unpacks at once (about 8,000) works.
#[test]
fn thousands_of_groups_are_listed() {
    run(async {
        let (q, _prefix) = isolated(Retention::default()).await;
        let queue = "many";
        let jobs: Vec<NewJob> = (0..9_000)
            .map(|g| NewJob {
                group: Some(jobs_core::JobGroup { key: format!("g{g:05}"), concurrency: None, rate: None }),
                ..raw(queue, None)
            })
            .collect();
        for chunk in jobs.chunks(1_000) {
            q.enqueue_many(chunk.to_vec()).await.unwrap();
        }
        let all = q.groups(queue, 20_000).await.unwrap();
        assert_eq!(all.len(), 9_000);
        assert_eq!(all[0].key, "g08999", "ties: the greater key first");
    });
}

/// The hash of start marks is a hash table from the first mark on: it holds
/// a field per running job, and a listpack is searched end to end on every
/// write and delete.
#[test]
fn start_marks_are_kept_in_a_hash_table() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "marks";
        q.enqueue_many(vec![raw(queue, None)]).await.unwrap();
        let job = q.fetch(&req(queue, 1)).await.unwrap().jobs.remove(0);
        let mark = Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Started };
        q.finish(vec![mark]).await.unwrap();
        let key = jobs_redis::keys::QueueKeys::new(&prefix, queue).started();
        let mut conn = raw_conn().await;
        let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query_async(&mut conn).await.unwrap();
        assert_eq!(enc, "hashtable");
        let marked: bool =
            redis::cmd("HEXISTS").arg(&key).arg(job.id.ulid().to_string()).query_async(&mut conn).await.unwrap();
        assert!(marked, "the start is recorded");
        q.finish(vec![Finish { id: job.id, token: job.token, outcome: Outcome::Succeeded { result: None } }])
            .await
            .unwrap();
        let marks: u64 = redis::cmd("HLEN").arg(&key).query_async(&mut conn).await.unwrap();
        assert_eq!(marks, 1, "only the field that keeps the hash a hash table is left");
    });
}

/// A wide workflow's member hashes are hash tables from their first write:
/// a listpack is searched end to end for each field added until it holds
/// `hash-max-listpack-entries` of them. The field that makes them so is gone
/// once the call ends.
#[test]
fn a_wide_workflows_member_hashes_are_hash_tables() {
    use jobs_core::testing::jobs::{Act, ProbeJob};
    use jobs_core::JobOptions;
    use jobs_core::{Step, Workflow};
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = unique_queue("wide");
        let id = unique_queue("wide-flow");
        let step = |name: &str, seq: u64| {
            Step::with_options(
                name,
                ProbeJob { key: queue.clone(), seq, act: Act::Succeed },
                JobOptions::new().queue(&queue),
            )
        };
        let width = 300;
        let mut flow = Workflow::new(&id).add_step(step("first", 0));
        for i in 1..=width {
            flow = flow.add_step(step(&format!("w{i}"), i).after(["first"]));
        }
        flow.enqueue(&q).await.unwrap();
        let base = jobs_redis::keys::flow_record(&prefix, &id);
        let mut conn = raw_conn().await;
        // Every member has a status, a count of dependencies left and its
        // job's id and name; all but the first have dependencies.
        for (part, members) in [("st", width + 1), ("left", width + 1), ("info", width + 1), ("after", width)] {
            let key = format!("{base}:{part}");
            let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query_async(&mut conn).await.unwrap();
            assert_eq!(enc, "hashtable", "{key}");
            let fields: Vec<String> = redis::cmd("HKEYS").arg(&key).query_async(&mut conn).await.unwrap();
            assert_eq!(fields.len() as u64, members, "{key}: the members' fields only");
            assert!(fields.iter().all(|f| f == "first" || f.starts_with('w')), "{key}: {fields:?}");
        }
    });
}

/// An enqueue of many jobs with caller ids writes its indexes into hash
/// tables from the first field (see `a_wide_workflows_member_hashes_are_hash_tables`),
/// and leaves no field of its own in them.
#[test]
fn a_large_enqueue_writes_its_indexes_into_hash_tables() {
    run(async {
        let (q, prefix) = isolated(Retention::default()).await;
        let queue = "indexed";
        let n = 300;
        let jobs: Vec<NewJob> = (0..n)
            .map(|i| NewJob {
                caller_id: Some(jobs_core::CallerId {
                    id: format!("order-{i}"),
                    if_exists: jobs_core::IfExists::ReturnExisting,
                }),
                ..raw(queue, None)
            })
            .collect();
        q.enqueue_many(jobs).await.unwrap();
        let base = jobs_redis::keys::QueueKeys::new(&prefix, queue).base().to_owned();
        let mut conn = raw_conn().await;
        for part in ["ids", "cid"] {
            let key = format!("{base}{part}");
            let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query_async(&mut conn).await.unwrap();
            assert_eq!(enc, "hashtable", "{key}");
            let fields: Vec<Vec<u8>> = redis::cmd("HKEYS").arg(&key).query_async(&mut conn).await.unwrap();
            assert_eq!(fields.len(), n, "{key}: one field per job");
            assert!(
                fields.iter().all(|f| std::str::from_utf8(f).is_ok() && f.len() <= 256),
                "{key}: only jobs' fields"
            );
        }
    });
}
