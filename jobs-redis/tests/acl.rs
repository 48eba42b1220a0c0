//! Credentials: the whole conformance suite runs as a Redis ACL user with
//! exactly [`acl_rules`] (and a user name and password in the URL); a wrong
//! password is a clear error at connect; the password never shows up in an
//! error, a `Debug` output or a log line, even while Redis is down and
//! every part of the runtime logs its failures.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jobs_core::backend::LONGEST_PAUSE;
use jobs_core::testing::cases::fetch_of;
use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, run, test_pool, unique_queue, wait_status};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, QueueInspect};
use jobs_redis::testing::{RedisServer, ServerOptions};
use jobs_redis::{acl_rules, RedisConfig, RedisQueue};

const USER: &str = "jobs-worker";
const PASSWORD: &str = "correct-horse-battery-staple";
/// Every key prefix this binary uses starts so.
const PREFIX_PATTERN: &str = "acl-*";

/// A server whose `jobs-worker` user has exactly `acl_rules("acl-*")`.
fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = RedisServer::start();
        s.acl_user(USER, PASSWORD, &acl_rules(PREFIX_PATTERN));
        s
    })
}

/// Creates (or replaces) ACL user `user` with the crate's rules for prefix
/// `prefix`, its key patterns replaced by `keys`.
fn set_user(s: &RedisServer, user: &str, prefix: &str, keys: &str) {
    s.acl_user(user, PASSWORD, &acl_rules(prefix).replace(&format!("~{prefix}:*"), keys));
}

fn user_url(port: u16, password: &str) -> String {
    format!("redis://{USER}:{password}@127.0.0.1:{port}")
}

fn prefix() -> String {
    format!("acl-{}", unique_queue("p"))
}

jobs_core::conformance_suite!(|| async {
    let config = RedisConfig { prefix: prefix(), ..RedisConfig::new(user_url(server().port(), PASSWORD)) };
    RedisQueue::from_config(&config).await.unwrap()
});

/// Spreading a queue over partitions, while a reader listens to its events
/// (which the raise carries to the new partitions), needs no more than the
/// rules; so do its jobs.
#[test]
fn a_partitioned_queue_needs_no_more_than_the_rules() {
    run(async {
        let url = user_url(server().port(), PASSWORD);
        let prefix = prefix();
        let queue = unique_queue("aclparts");
        let plain =
            RedisQueue::from_config(&RedisConfig { prefix: prefix.clone(), ..RedisConfig::new(&url) }).await.unwrap();
        jobs_core::QueueEvents::listen(&plain, &queue, Duration::from_secs(60)).await.unwrap();
        let partitions = [(queue.clone(), 3)].into();
        let q = RedisQueue::from_config(&RedisConfig { prefix, partitions, ..RedisConfig::new(&url) }).await.unwrap();
        assert_eq!(q.partitions(&queue).await.unwrap(), 3);
        let mut ids = Vec::new();
        for seq in 0..3 {
            let job = ProbeJob { key: queue.clone(), seq, act: Act::Succeed };
            ids.push(job.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap());
        }
        assert_eq!(ids.iter().map(|id| id.partition()).collect::<Vec<_>>(), [0, 1, 2]);
        let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
        for id in &ids {
            wait_status(&q, id, JobStatus::Succeeded).await;
        }
        pool.shutdown().await.unwrap();
    });
}

/// The rules are what they say: outside its prefix the user can do nothing.
#[test]
fn the_user_is_confined_to_its_prefix() {
    run(async {
        // Connecting reads the prefix's partition counts: refused outside it.
        let config = RedisConfig { prefix: "other".into(), ..RedisConfig::new(user_url(server().port(), PASSWORD)) };
        let err = RedisQueue::from_config(&config).await.unwrap_err();
        assert!(err.to_string().to_lowercase().contains("noperm"), "{err}");
        let config = RedisConfig::new(user_url(server().port(), PASSWORD));
        let mut c = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let denied: redis::RedisResult<()> = redis::cmd("FLUSHALL").query_async(&mut c).await;
        assert!(denied.unwrap_err().to_string().to_lowercase().contains("noperm"));
    });
}

/// A wrong password fails at connect, says so, and does not show it.
#[test]
fn a_wrong_password_is_a_clear_error_at_connect() {
    run(async {
        let err = RedisQueue::connect(&user_url(server().port(), "tr0ub4dor")).await.unwrap_err();
        let shown = format!("{err} / {err:?}");
        assert!(shown.contains("authentication failed"), "{shown}");
        assert!(shown.contains(&format!("redis://{USER}:***@127.0.0.1")), "{shown}");
        assert!(!shown.contains("tr0ub4dor") && !shown.contains(PASSWORD), "{shown}");
        eprintln!("wrong password: {err}");
    });
}

/// Log lines written by the runtime while this binary runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With Redis killed under a working pool (whose fetches, acks, presence
/// reports and wake-up subscription all fail and log), no log line, error or
/// `Debug` output contains the password.
#[test]
fn passwords_never_appear_in_logs_errors_or_debug() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let secret = "s3cret-p%40ss";
    let decoded = "s3cret-p@ss";
    let mut s = RedisServer::start_with(ServerOptions { password: Some(decoded.into()), ..Default::default() });
    let url = format!("redis://:{secret}@127.0.0.1:{}", s.port());
    run(async {
        let config = RedisConfig {
            command_timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
            ..RedisConfig::new(&url)
        };
        let q = RedisQueue::from_config(&config).await.unwrap();
        let queue = unique_queue("secret");
        let id = ProbeJob { key: queue.clone(), seq: 1, act: Act::Succeed }
            .enqueue_with(&q, JobOptions::new().queue(&queue))
            .await
            .unwrap();
        let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
        wait_status(&q, &id, JobStatus::Succeeded).await;
        tokio::task::block_in_place(|| s.kill());
        let mut errors = Vec::new();
        for _ in 0..5 {
            errors.push(format!("{:?} {}", q.stats().await.unwrap_err(), q.stats().await.unwrap_err()));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eventually("the runtime logged the outage", || async {
            let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
            text.contains("fetch failed") && text.contains("subscription lost")
        })
        .await;
        errors.push(format!("{q:?} {config:?}"));
        errors.push(RedisQueue::connect(&url).await.unwrap_err().to_string());
        let _ = tokio::time::timeout(Duration::from_secs(5), pool.shutdown()).await;
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        for shown in errors.iter().chain([&text]) {
            assert!(!shown.contains(secret) && !shown.contains(decoded), "password shown: {shown}");
        }
        assert!(errors.iter().any(|e| e.contains(":***@")), "{errors:?}");
    });
}

/// A pool serves queues `a` and `b`, and every fetch of `b` is refused (its
/// keys are outside what the user may touch, as after a missing ACL
/// permission): `a`'s jobs still run at once, not after their lease.
#[test]
fn a_queue_that_cannot_be_fetched_does_not_strand_the_others() {
    let s = server();
    let user = "jobs-half";
    let p = prefix();
    let (a, b) = (unique_queue("served"), unique_queue("refused"));
    // Every key of the prefix but those of queue `b` (`[^{]` leaves out
    // every queue's keys, then queue `a`'s are let back in).
    let keys = format!("~{p}:{{{a}}}:* ~{p}:[^{{]*");
    set_user(s, user, &p, &keys);
    run(async {
        let restricted = RedisConfig {
            prefix: p.clone(),
            ..RedisConfig::new(format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", s.port()))
        };
        let q = RedisQueue::from_config(&restricted).await.unwrap();
        let denied = ProbeJob { key: b.clone(), seq: 0, act: Act::Succeed }
            .enqueue_with(&q, JobOptions::new().queue(&b))
            .await
            .unwrap_err();
        assert!(denied.to_string().to_lowercase().contains("noperm"), "{denied}");
        let mut ids = Vec::new();
        for seq in 1..=6 {
            let job = ProbeJob { key: a.clone(), seq, act: Act::Succeed };
            ids.push(job.enqueue_with(&q, JobOptions::new().queue(&a)).await.unwrap());
        }
        // A lease far past the test's deadline: jobs stranded by the failing
        // queue would stay Running until the test gives up.
        let pool = test_pool(q.clone(), &[&a, &b]).lease(Duration::from_secs(600)).start().unwrap();
        for id in &ids {
            let info = wait_status(&q, id, JobStatus::Succeeded).await;
            assert_eq!(info.attempts, 1, "{id} ran once");
        }
        pool.shutdown().await.unwrap();
    });
}

/// When the queues' index cannot be written (here: the user may not touch
/// it), enqueue fails and has stored nothing: a producer that retries never
/// stores the job twice.
#[test]
fn an_enqueue_that_fails_has_stored_nothing() {
    let s = server();
    let user = "jobs-no-index";
    let p = prefix();
    let queue = unique_queue("noindex");
    // Everything of the prefix but the queues' index.
    let keys = format!("~{p}:{{* ~{p}:[^q]*");
    set_user(s, user, &p, &keys);
    run(async {
        let config = RedisConfig {
            prefix: p.clone(),
            ..RedisConfig::new(format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", s.port()))
        };
        let q = RedisQueue::from_config(&config).await.unwrap();
        let err = ProbeJob { key: queue.clone(), seq: 1, act: Act::Succeed }
            .enqueue_with(&q, JobOptions::new().queue(&queue))
            .await
            .unwrap_err();
        assert!(err.to_string().to_lowercase().contains("noperm"), "{err}");
        let admin =
            RedisQueue::from_config(&RedisConfig { prefix: p.clone(), ..RedisConfig::new(s.url()) }).await.unwrap();
        let stats = admin.stats().await.unwrap();
        assert_eq!(stats.queue(&queue).pending, 0, "nothing stored: {stats:?}");
    });
}

/// A partition of a partitioned queue that cannot be fetched (its keys
/// refused, as while its master is down) is left out of fetches for a
/// while: the queue's other partitions are served and the queue is not
/// reported failed, and the answer's due time brings an idle pool back
/// for the partition's retry. Only when none of its partitions can be
/// fetched is the queue reported failed.
#[test]
fn a_failing_partition_does_not_stop_the_queues_others() {
    let s = server();
    let p = prefix();
    let q = unique_queue("partfail");
    // Partitions 0 and 1 of the queue and every key outside the queues;
    // not partition 2.
    let (two_thirds, none) = ("jobs-two-thirds", "jobs-no-queue");
    set_user(s, two_thirds, &p, &format!("~{p}:{{{q}}}:* ~{p}:{{{q}~1~* ~{p}:[^{{]*"));
    set_user(s, none, &p, &format!("~{p}:[^{{]*"));
    let as_user = |user: &str| RedisConfig {
        prefix: p.clone(),
        ..RedisConfig::new(format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", s.port()))
    };
    run(async {
        let admin =
            RedisQueue::from_config(&RedisConfig { prefix: p.clone(), ..RedisConfig::new(s.url()) }).await.unwrap();
        admin.set_partitions(&q, 3).await.unwrap();
        let mut ids = Vec::new();
        for seq in 0..6 {
            let job = ProbeJob { key: q.clone(), seq, act: Act::Succeed };
            ids.push(job.enqueue_with(&admin, JobOptions::new().queue(&q)).await.unwrap());
        }
        assert!(ids.iter().any(|id| id.partition() == 2), "{ids:?}");
        let reachable: HashSet<JobId> = ids.iter().filter(|id| id.partition() != 2).cloned().collect();
        let q2 = RedisQueue::from_config(&as_user(two_thirds)).await.unwrap();
        let mut leased = HashSet::new();
        for _ in 0..3 {
            let got = q2.fetch(&fetch_of(&q, 10)).await.unwrap();
            assert!(got.failed.is_empty(), "one failing partition failed the queue: {:?}", got.failed);
            let due = got.next_due.expect("a due time: the failing partition's retry");
            assert!(due <= LONGEST_PAUSE, "{due:?}");
            leased.extend(got.jobs.into_iter().map(|j| j.id));
        }
        assert_eq!(leased, reachable, "every job of the partitions it may fetch, once");
        let q0 = RedisQueue::from_config(&as_user(none)).await.unwrap();
        match q0.fetch(&fetch_of(&q, 10)).await {
            Err(e) => assert!(e.to_string().to_lowercase().contains("noperm"), "{e}"),
            Ok(got) => panic!("no partition can be fetched, yet the fetch succeeded: {got:?}"),
        }
    });
}
