//! One hop from an enqueue to an idle pool: a waiter of one queue parks its
//! fetch, and an enqueue leases its jobs to it in the enqueue's own script.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jobs_core::backend::{FetchRequest, Finish, Outcome, Waiter};
use jobs_core::testing::cases::fetch_of;
use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, test_pool, unique_queue, wait_status};
use jobs_core::{JobExt, JobId, JobOptions, JobQueue, JobStatus, NewJob, QueueAdmin, QueueEvents, QueueInspect, When};
use jobs_redis::testing::RedisServer;
use jobs_redis::{RedisConfig, RedisQueue};

fn raw(queue: &str) -> NewJob {
    NewJob { max_retries: Some(0), ..NewJob::new(JobId::new(queue), "x", b"{}".to_vec()) }
}

struct Setup {
    server: RedisServer,
    q: RedisQueue,
    prefix: String,
    conn: redis::aio::MultiplexedConnection,
}

async fn setup() -> Setup {
    let server = RedisServer::start();
    let prefix = unique_queue("p");
    let q = RedisQueue::from_config(&RedisConfig { prefix: prefix.clone(), ..RedisConfig::new(server.url()) })
        .await
        .unwrap();
    let conn = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    Setup { server, q, prefix, conn }
}

impl Setup {
    /// How many fetchers are listed as parked on `queue`.
    async fn parked(&self, queue: &str) -> u64 {
        let key = format!("{}:{{{queue}}}:parked", self.prefix);
        redis::cmd("ZCARD").arg(key).query_async(&mut self.conn.clone()).await.unwrap()
    }

    /// A waiter of `queue` parked for `req` in a task of its own (see
    /// [`park`]), once it is listed.
    async fn parked_waiter(
        &self,
        queue: &str,
        req: FetchRequest,
        timeout: Duration,
    ) -> tokio::task::JoinHandle<(Box<dyn Waiter>, Option<jobs_core::backend::Fetched>)> {
        let task = park(subscribed(&self.q, queue).await, req, timeout);
        eventually("the waiter parks", || async { self.parked(queue).await == 1 }).await;
        task
    }

    /// Script calls (FCALL) so far.
    fn calls(&self) -> u64 {
        self.server.command_stat("fcall", "calls")
    }
}

/// A waiter of `queue`, past its first wait (which returns once its
/// subscription is in place).
async fn subscribed(q: &RedisQueue, queue: &str) -> Box<dyn Waiter> {
    let mut w = q.waiter(&[queue.to_owned()]).unwrap();
    w.wait(Duration::from_secs(10)).await.unwrap();
    w
}

/// Parks `w` for `req` in a task of its own; the task returns what the wait
/// fetched.
fn park(
    mut w: Box<dyn Waiter>,
    req: FetchRequest,
    timeout: Duration,
) -> tokio::task::JoinHandle<(Box<dyn Waiter>, Option<jobs_core::backend::Fetched>)> {
    tokio::spawn(async move {
        let got = w.wait_fetch(&req, timeout).await.unwrap();
        (w, got)
    })
}

/// What a parked waiter's wait ended with, within 10 s.
async fn ended(
    task: tokio::task::JoinHandle<(Box<dyn Waiter>, Option<jobs_core::backend::Fetched>)>,
) -> (Box<dyn Waiter>, Option<jobs_core::backend::Fetched>) {
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the wait ended in time").unwrap()
}

/// The ids of the jobs `f` leased, in order.
fn ids_of(f: &jobs_core::backend::Fetched) -> Vec<jobs_core::JobId> {
    f.jobs.iter().map(|j| j.id.clone()).collect()
}

/// Ends `job` succeeded with its lease's token, and checks that the finish
/// applied: the lease it was handed is its own.
async fn succeed(q: &RedisQueue, job: &jobs_core::backend::LeasedJob) {
    let done = q
        .finish(vec![Finish { id: job.id.clone(), token: job.token, outcome: Outcome::Succeeded { result: None } }])
        .await
        .unwrap();
    assert_eq!(done, vec![jobs_core::backend::FinishResult::Applied(JobStatus::Succeeded)]);
}

/// The job is leased to the parked waiter by the enqueue itself: running
/// when the enqueue returns, and handed over with no further script call
/// (no fetch, no unpark).
#[test]
fn an_enqueue_leases_its_job_to_a_parked_waiter() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(10)).await;
        let before = s.calls();
        let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        let info = s.q.job(&id).await.unwrap().unwrap();
        assert_eq!(info.status, JobStatus::Running, "leased in the enqueue's step");
        let (_, got) = ended(task).await;
        let got = got.expect("the wait fetched");
        assert_eq!(ids_of(&got), vec![id.clone()]);
        // The enqueue and the read above: nothing else ran a script.
        assert_eq!(s.calls() - before, 2, "one enqueue and one read, no fetch");
        assert_eq!(s.parked(&queue).await, 0, "the listing went with the jobs");
        // Counted for operators (`jobs queue limits`, the dashboard, metrics).
        assert_eq!(s.q.stats().await.unwrap().queues[&queue].handed, 1);
        // The lease is the waiter's: its token finishes the job.
        succeed(&s.q, &got.jobs[0]).await;
        wait_status(&s.q, &id, JobStatus::Succeeded).await;
    });
}

/// A lone job that sets no option, for a queue with nothing else to do
/// (its policy set, with no limit), is leased without the fetch's own
/// reads and without being listed: no `LPOP`, where a fetch pops every
/// priority's list. It is leased all the same: attempt 1, with the lease's
/// token, counted running, and its priority and payload as enqueued.
#[test]
fn a_lone_job_is_handed_over_without_a_fetch() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        // A policy set without limits stores its fields empty: no limit.
        s.q.set_policy(&queue, jobs_core::QueuePolicy::default()).await.unwrap();
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(10)).await;
        let pops = s.server.command_stat("lpop", "calls");
        let job = NewJob { priority: jobs_core::Priority::High, ..raw(&queue) };
        let id = s.q.enqueue_many(vec![job]).await.unwrap().remove(0);
        assert_eq!(s.server.command_stat("lpop", "calls") - pops, 0, "no fetch popped the ready lists");
        let (_, got) = ended(task).await;
        let got = got.unwrap();
        assert_eq!(ids_of(&got), vec![id.clone()]);
        let leased = &got.jobs[0];
        assert_eq!((leased.attempt, leased.crashes), (1, 0));
        assert_eq!(leased.priority, jobs_core::Priority::High);
        assert_eq!(leased.payload, b"{}".to_vec());
        let stats = s.q.stats().await.unwrap();
        let counts = &stats.queues[&queue];
        assert_eq!((counts.by_priority[&jobs_core::Priority::High].running, counts.handed), (1, 1));
        succeed(&s.q, leased).await;
        let stats = s.q.stats().await.unwrap();
        assert_eq!(stats.queues[&queue].by_priority[&jobs_core::Priority::High].running, 0);
    });
}

/// A job left waiting while a fetcher is parked (as another pool's
/// housekeeping leaves a delayed job it promotes without taking it) goes
/// before a lone job enqueued after it: the waiter of one slot is handed
/// the older job, and the lone one waits.
#[test]
fn a_lone_job_is_not_handed_ahead_of_a_waiting_one() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let ready = format!("{}:{{{queue}}}:ready:2", s.prefix);
        let older = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        // Out of its ready list while the waiter parks, back in after.
        let taken: String = redis::cmd("LPOP").arg(&ready).query_async(&mut s.conn.clone()).await.unwrap();
        assert!(older.to_string().ends_with(&taken), "{taken} is not {older}");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 1), Duration::from_secs(10)).await;
        redis::cmd("RPUSH").arg(&ready).arg(&taken).query_async::<()>(&mut s.conn.clone()).await.unwrap();
        let lone = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        let (_, got) = ended(task).await;
        assert_eq!(ids_of(&got.unwrap()), vec![older]);
        assert_eq!(s.q.job(&lone).await.unwrap().unwrap().status, JobStatus::Pending);
    });
}

/// A lone job is not handed to a parked waiter while a limit of its queue
/// holds it back, whichever: `max_running` reached, a rate whose window
/// is full, an open breaker. It stays pending, and the wait ends with
/// nothing.
#[test]
fn a_lone_job_waits_while_a_limit_holds_it_back() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let capped = unique_queue("hop");
        s.q.set_policy(&capped, jobs_core::QueuePolicy { max_running: Some(1), ..Default::default() }).await.unwrap();
        let rated = unique_queue("hop");
        let rate = "1/1h".parse().unwrap();
        s.q.set_policy(&rated, jobs_core::QueuePolicy { rate: Some(rate), ..Default::default() }).await.unwrap();
        // One job running takes the one slot; one started fills the window.
        for queue in [&capped, &rated] {
            s.q.enqueue_many(vec![raw(queue)]).await.unwrap();
            assert_eq!(s.q.fetch(&fetch_of(queue, 1)).await.unwrap().jobs.len(), 1, "{queue}: the one start");
        }
        let broken = unique_queue("hop");
        s.q.set_breaker(&broken, jobs_core::BreakerAction::Open(Duration::from_secs(3600))).await.unwrap();
        for queue in [capped, rated, broken] {
            let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(1)).await;
            let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
            assert_eq!(s.q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending, "{queue}");
            let (_, got) = ended(task).await;
            assert!(got.unwrap().jobs.is_empty(), "{queue}: nothing handed over");
        }
    });
}

/// A lone job is listed before anything in its hand-off may fail: with a
/// parked fetcher's listing whose arguments this build cannot read (as a
/// listing written by another build may be), the enqueue fails, and its
/// job waits in the queue all the same, for the next fetch. (A script's
/// writes are not rolled back by an error: a job stored but not listed
/// would never run.)
#[test]
fn a_lone_job_is_listed_when_its_hand_off_fails() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(1)).await;
        let park = format!("{}:{{{queue}}}:park", s.prefix);
        let waiters: Vec<String> = redis::cmd("HKEYS").arg(&park).query_async(&mut s.conn.clone()).await.unwrap();
        assert_eq!(waiters.len(), 1);
        let _: () =
            redis::cmd("HSET").arg(&park).arg(&waiters[0]).arg("x").query_async(&mut s.conn.clone()).await.unwrap();
        assert!(s.q.enqueue_many(vec![raw(&queue)]).await.is_err(), "the hand-off failed");
        let (_, got) = ended(task).await;
        assert!(got.unwrap().jobs.is_empty());
        let fetched = s.q.fetch(&fetch_of(&queue, 4)).await.unwrap();
        assert_eq!(fetched.jobs.len(), 1, "the job was listed");
    });
}

/// A job handed over while someone follows the queue's events has its
/// `started` event recorded with its `enqueued` one, as a fetch records it.
#[test]
fn a_job_handed_over_is_started_for_a_listener() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let listener = s.q.listen(&queue, Duration::from_secs(60)).await.unwrap();
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(10)).await;
        let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        let (_, got) = ended(task).await;
        assert_eq!(ids_of(&got.unwrap()), vec![id.clone()]);
        let page = s.q.read_events(&queue, &listener.cursor, 10).await.unwrap();
        let seen: Vec<_> = page.events.iter().map(|e| (e.job.clone(), e.kind, e.attempt)).collect();
        assert_eq!(seen, vec![(id.clone(), jobs_core::EventKind::Enqueued, 0), (id, jobs_core::EventKind::Started, 1)]);
    });
}

/// A parked waiter is handed no more jobs than it has slots: the rest wait
/// in the queue for the next fetch, in order.
#[test]
fn a_parked_waiter_is_handed_no_more_than_its_slots() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 2), Duration::from_secs(10)).await;
        let ids = s.q.enqueue_many((0..5).map(|_| raw(&queue)).collect()).await.unwrap();
        assert_eq!(s.q.stats().await.unwrap().queues[&queue].handed, 2);
        let (_, got) = ended(task).await;
        let handed: Vec<JobId> = got.unwrap().jobs.into_iter().map(|j| j.id).collect();
        assert_eq!(handed, ids[..2].to_vec());
        let rest: Vec<JobId> = s.q.fetch(&fetch_of(&queue, 10)).await.unwrap().jobs.into_iter().map(|j| j.id).collect();
        assert_eq!(rest, ids[2..].to_vec());
    });
}

/// A wake-up for work an enqueue did not hand over (here a resume) ends
/// the parking: the waiter is unlisted and returns, and a job enqueued
/// after that waits in the queue (is not leased to anyone).
#[test]
fn a_wake_up_unparks_the_waiter() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(30)).await;
        s.q.resume(&queue).await.unwrap();
        let (_, got) =
            tokio::time::timeout(Duration::from_secs(10), task).await.expect("woken before its timeout").unwrap();
        assert!(got.unwrap().jobs.is_empty());
        assert_eq!(s.parked(&queue).await, 0);
        let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending);
    });
}

/// A parked waiter comes back for a job that falls due while it waits at
/// the job's due time, not when Redis next wakes by itself to end the
/// `BLPOP` at its timeout (its cron tick: with `hz` 1, once a second).
/// Four delayed jobs in a row, each due 100 ms after the waiter took the
/// one before: ended by Redis's timeout, each wait but the first would last
/// until a tick of its own, over three seconds in all; ended at the due
/// time, about half a second.
#[test]
fn a_parked_waiter_comes_back_at_the_due_time() {
    jobs_core::testing::run(async {
        let s = setup().await;
        redis::cmd("CONFIG").arg("SET").arg("hz").arg("1").query_async::<()>(&mut s.conn.clone()).await.unwrap();
        let queue = unique_queue("hop");
        let mut w = subscribed(&s.q, &queue).await;
        let began = std::time::Instant::now();
        for i in 0..4 {
            let job = NewJob { run_at: Some(When::In(Duration::from_millis(100))), ..raw(&queue) };
            let id = s.q.enqueue_many(vec![job]).await.unwrap().remove(0);
            // A wait ends with nothing at the due time (the job is promoted
            // by the next fetch), then the next one leases it.
            let mut waits = 0;
            loop {
                waits += 1;
                assert!(waits <= 10, "job {i}: not leased after 10 waits");
                let got = w.wait_fetch(&fetch_of(&queue, 4), Duration::from_secs(30)).await.unwrap();
                if let Some(f) = got.filter(|f| !f.jobs.is_empty()) {
                    assert_eq!(ids_of(&f), vec![id.clone()], "job {i}");
                    break;
                }
            }
        }
        let took = began.elapsed();
        // Three ticks at least (3.1 s) when Redis ends the waits; the bound
        // leaves a loaded machine room.
        assert!(
            took < Duration::from_millis(2500),
            "four jobs due 100 ms apart took {took:?}: the waits ended on Redis's tick"
        );
    });
}

/// A paused queue hands nothing over: the enqueue leaves the waiter listed
/// and the job pending.
#[test]
fn a_paused_queue_hands_nothing_over() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        s.q.pause(&queue).await.unwrap();
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(2)).await;
        let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending);
        let (_, got) = ended(task).await;
        assert!(got.unwrap().jobs.is_empty());
        assert_eq!(s.q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending);
    });
}

/// A waiter whose wait is dropped while parked (its pool stopping) settles:
/// it is unlisted, and jobs handed to it before are returned to it, not
/// left to wait out their lease.
#[test]
fn a_dropped_wait_settles() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let mut w = subscribed(&s.q, &queue).await;
        let req = fetch_of(&queue, 4);
        {
            let wait = w.wait_fetch(&req, Duration::from_secs(30));
            tokio::pin!(wait);
            let parked = async {
                eventually("the waiter parks", || async { s.parked(&queue).await == 1 }).await;
            };
            tokio::select! {
                _ = &mut wait => panic!("the wait returned without a job"),
                () = parked => {}
            }
            // Dropped here, parked.
        }
        let id = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&id).await.unwrap().unwrap().status, JobStatus::Running);
        let settled = w.settle().await.unwrap();
        assert_eq!(ids_of(&settled), vec![id]);
        assert_eq!(s.parked(&queue).await, 0);
        let later = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&later).await.unwrap().unwrap().status, JobStatus::Pending);
    });
}

/// A waiter that dies parked (its process killed) is
/// handed one enqueue's jobs at most; they come back when their lease ends
/// and run elsewhere, and its listing lapses.
#[test]
fn jobs_handed_to_a_dead_waiter_come_back_with_their_lease() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        // The waiter parks on a runtime of its own, which then stops
        // without running another step of it: a killed process.
        let process = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (url, prefix, theirs) = (s.server.url(), s.prefix.clone(), queue.clone());
        process.spawn(async move {
            let config = RedisConfig { prefix, ..RedisConfig::new(url) };
            let q = RedisQueue::from_config(&config).await.unwrap();
            let mut w = subscribed(&q, &theirs).await;
            let req = FetchRequest { lease: Duration::from_millis(500), ..fetch_of(&theirs, 4) };
            let _ = w.wait_fetch(&req, Duration::from_secs(1)).await;
        });
        eventually("the waiter parks", || async { s.parked(&queue).await == 1 }).await;
        process.shutdown_background();
        let lost = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&lost).await.unwrap().unwrap().status, JobStatus::Running);
        let next = s.q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        assert_eq!(s.q.job(&next).await.unwrap().unwrap().status, JobStatus::Pending, "one hand-off per listing");
        // Fetched as any other pool would, until the lost job's lease ends.
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !seen.iter().any(|(id, _)| *id == lost) {
            assert!(std::time::Instant::now() < deadline, "the lost job did not come back: {seen:?}");
            let got = s.q.fetch(&fetch_of(&queue, 4)).await.unwrap();
            seen.extend(got.jobs.into_iter().map(|j| (j.id, j.crashes)));
            if seen.is_empty() || !seen.iter().any(|(id, _)| *id == lost) {
                // Nothing to do but wait for the lease's end (a timer, not
                // an outcome: the loop checks the outcome).
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(seen.contains(&(lost.clone(), 1)), "{seen:?}: its lost lease counted as a crash");
        eventually("the dead waiter's listing lapses", || async { s.parked(&queue).await == 0 }).await;
    });
}

/// A pool of one queue, idle, is handed an enqueued job by the enqueue
/// itself, runs it once, and is unlisted when it stops.
#[test]
fn an_idle_pool_runs_a_job_handed_over() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let probe = jobs_core::testing::probe(&queue);
        let pool = test_pool(s.q.clone(), &[queue.as_str()]).start().unwrap();
        eventually("the pool parks", || async { s.parked(&queue).await == 1 }).await;
        let job = ProbeJob { key: queue.clone(), seq: 1, act: Act::Succeed };
        let id = job.enqueue_with(&s.q, JobOptions::new().queue(&queue)).await.unwrap();
        let status = s.q.job(&id).await.unwrap().unwrap().status;
        assert_ne!(status, JobStatus::Pending, "leased to the parked pool by the enqueue");
        wait_status(&s.q, &id, JobStatus::Succeeded).await;
        assert_eq!(probe.start_count(), 1);
        pool.shutdown().await.unwrap();
        assert_eq!(s.parked(&queue).await, 0, "a stopped pool is not listed");
    });
}

/// An ACL user without `BLPOP` (the rules of earlier releases): the first
/// parking is refused, its listing undone, and from then on the waiter
/// waits for wake-ups, neither parking nor trying `BLPOP` again; a pool
/// of such a user still runs its jobs.
#[test]
fn a_user_without_blpop_waits_for_wake_ups() {
    jobs_core::testing::run(async {
        let server = RedisServer::start();
        let prefix = unique_queue("p");
        let rules = jobs_redis::acl_rules(&prefix).replace(" +blpop", "");
        server.acl_user("old", "secret", &rules);
        let url = server.url().replace("redis://", "redis://old:secret@");
        let q =
            RedisQueue::from_config(&RedisConfig { prefix: prefix.clone(), ..RedisConfig::new(url) }).await.unwrap();
        let queue = unique_queue("hop");
        let mut w = subscribed(&q, &queue).await;
        let req = fetch_of(&queue, 4);
        let first = w.wait_fetch(&req, Duration::from_secs(10)).await.unwrap();
        assert!(first.is_some_and(|f| f.jobs.is_empty()), "the refused parking returns at once");
        assert_eq!(server.command_stat("blpop", "rejected_calls"), 1);
        let conn = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let parked = format!("{prefix}:{{{queue}}}:parked");
        let listed: u64 = redis::cmd("ZCARD").arg(&parked).query_async(&mut conn.clone()).await.unwrap();
        assert_eq!(listed, 0, "the refused parking was undone");
        // Now a plain wait: a wake-up (an enqueue) ends it, and no BLPOP is
        // tried again.
        let calls = server.command_stat("fcall", "calls");
        let wait = tokio::spawn(async move { w.wait_fetch(&req, Duration::from_secs(30)).await.unwrap() });
        let id = q.enqueue_many(vec![raw(&queue)]).await.unwrap().remove(0);
        let woke = tokio::time::timeout(Duration::from_secs(10), wait).await.expect("a wake-up ends the wait").unwrap();
        assert!(woke.is_none(), "a plain wait fetches nothing itself");
        assert_eq!(server.command_stat("fcall", "calls") - calls, 1, "the enqueue alone: no parking fetch");
        assert_eq!(server.command_stat("blpop", "rejected_calls"), 1);
        assert_eq!(q.job(&id).await.unwrap().unwrap().status, JobStatus::Pending);
        // A pool of this user runs it.
        let probe = jobs_core::testing::probe(&queue);
        let pool = test_pool(q.clone(), &[queue.as_str()]).start().unwrap();
        let job = ProbeJob { key: queue.clone(), seq: 1, act: Act::Succeed };
        let ran = job.enqueue_with(&q, JobOptions::new().queue(&queue)).await.unwrap();
        wait_status(&q, &ran, JobStatus::Succeeded).await;
        assert_eq!(probe.start_count(), 1);
        pool.shutdown().await.unwrap();
    });
}

/// The hand-off is the fetch's own code: a group's `concurrency` holds
/// there too. Of two jobs of a group bounded to one, the parked waiter is
/// handed the first; the second waits until the first ends.
#[test]
fn a_hand_off_keeps_a_groups_bound() {
    jobs_core::testing::run(async {
        let s = setup().await;
        let queue = unique_queue("hop");
        let task = s.parked_waiter(&queue, fetch_of(&queue, 4), Duration::from_secs(10)).await;
        let grouped = || NewJob {
            group: Some(jobs_core::JobGroup { key: "tenant".into(), concurrency: Some(1), rate: None }),
            ..raw(&queue)
        };
        let ids = s.q.enqueue_many(vec![grouped(), grouped()]).await.unwrap();
        let (_, got) = ended(task).await;
        let got = got.unwrap();
        assert_eq!(ids_of(&got), vec![ids[0].clone()]);
        assert_eq!(s.q.job(&ids[1]).await.unwrap().unwrap().status, JobStatus::Pending);
        assert!(s.q.fetch(&fetch_of(&queue, 4)).await.unwrap().jobs.is_empty(), "its group's slot is taken");
        succeed(&s.q, &got.jobs[0]).await;
        let next: Vec<JobId> = s.q.fetch(&fetch_of(&queue, 4)).await.unwrap().jobs.into_iter().map(|j| j.id).collect();
        assert_eq!(next, vec![ids[1].clone()]);
    });
}
