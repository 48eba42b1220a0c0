//! `QueueRouter` over Redis: the conformance suite over two `RedisQueue`s on
//! two separate servers (and over a server and a Cluster), and routes read from the configuration keeping
//! each queue's jobs on its own server.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{split_router, test_pool, unique_queue, wait_status};
use jobs_core::{JobExt, JobOptions, JobStatus, QueueInspect, QueueRouter};
use jobs_redis::keys::{queues_key, QueueKeys};
use jobs_redis::testing::{shared_server_url, RedisServer};
use jobs_redis::{RedisConfig, RedisQueue};

/// The second server, beside the shared one, for every test of this binary.
fn server_b() -> String {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).url()
}

async fn on(url: String, prefix: &str) -> RedisQueue {
    RedisQueue::from_config(&RedisConfig { prefix: prefix.to_owned(), ..RedisConfig::new(url) }).await.unwrap()
}

jobs_core::conformance_suite!(|| async {
    let prefix = unique_queue("router");
    split_router(on(shared_server_url(), &prefix).await, on(server_b(), &prefix).await)
});

mod workflows {
    use super::*;

    jobs_core::conformance_suite!(|| async {
        let prefix = unique_queue("router");
        split_router(on(shared_server_url(), &prefix).await, on(server_b(), &prefix).await)
    }; workflows);
}

/// The suite again with a Redis Cluster as the second backend: the
/// router changes no key, so hash tags hold on the Cluster's side.
mod with_a_cluster {
    use super::*;
    use jobs_redis::testing::shared_cluster;

    jobs_core::conformance_suite!(|| async {
        let prefix = unique_queue("rc");
        split_router(on(shared_server_url(), &prefix).await, on(shared_cluster().url(), &prefix).await)
    });
}

/// The configuration's routes, as an application reads them: `bulk` on
/// server B, everything else on the shared server A.
async fn routed(prefix: &str) -> QueueRouter<RedisQueue> {
    let yaml = format!(
        "jobs:\n  redis:\n    url: \"{}\"\n    prefix: {prefix}\n    routes: {{ bulk: \"{}\" }}\n",
        shared_server_url(),
        server_b()
    );
    let config = jobs_core::config::Config::from_yaml_str(&yaml).unwrap();
    RedisQueue::router(&RedisConfig::from_config(&config).unwrap().unwrap()).await.unwrap()
}

async fn raw(url: String) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Whether the server of `url` holds a record of the job (`ulid`) of `queue`.
async fn holds(url: String, prefix: &str, queue: &str, ulid: &str) -> bool {
    let mut c = raw(url).await;
    redis::cmd("HEXISTS").arg(QueueKeys::new(prefix, queue).jobs()).arg(ulid).query_async(&mut c).await.unwrap()
}

async fn known_queues(url: String, prefix: &str) -> Vec<String> {
    let mut c = raw(url).await;
    let mut queues: Vec<String> = redis::cmd("SMEMBERS").arg(queues_key(prefix)).query_async(&mut c).await.unwrap();
    queues.sort();
    queues
}

/// Jobs of `bulk` are stored on server B only, jobs of `default` on
/// server A only, read on each server directly; the router finds both by
/// id and counts both queues.
#[test]
fn each_queue_lives_on_its_own_server() {
    jobs_core::testing::run(async {
        let prefix = unique_queue("routes");
        let q = routed(&prefix).await;
        assert_eq!(q.backend_name("default").unwrap(), "default");
        assert_eq!(q.backend_name("bulk").unwrap(), server_b());
        let key = unique_queue("where");
        let job = |seq| ProbeJob { key: key.clone(), seq, act: Act::Succeed };
        let bulk = job(1).enqueue_with(&q, JobOptions::new().queue("bulk")).await.unwrap();
        let default = job(2).enqueue_with(&q, JobOptions::new().queue("default")).await.unwrap();
        let (bulk_ulid, default_ulid) = (bulk.ulid().to_string(), default.ulid().to_string());

        assert!(holds(server_b(), &prefix, "bulk", &bulk_ulid).await, "bulk's job is on B");
        assert!(!holds(shared_server_url(), &prefix, "bulk", &bulk_ulid).await, "and not on A");
        assert!(holds(shared_server_url(), &prefix, "default", &default_ulid).await, "default's job is on A");
        assert!(!holds(server_b(), &prefix, "default", &default_ulid).await, "and not on B");
        assert_eq!(known_queues(server_b(), &prefix).await, ["bulk"]);
        assert_eq!(known_queues(shared_server_url(), &prefix).await, ["default"]);

        assert_eq!(q.job(&bulk).await.unwrap().unwrap().status, JobStatus::Pending);
        assert_eq!(q.job(&default).await.unwrap().unwrap().status, JobStatus::Pending);
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.queues.keys().collect::<Vec<_>>(), ["bulk", "default"]);
        assert_eq!((stats.queue("bulk").pending, stats.queue("default").pending), (1, 1));
    });
}

/// One pool over the router serves a queue on each server and runs both
/// queues' jobs to success, each finished on its own server.
#[test]
fn one_pool_runs_the_jobs_of_both_servers() {
    jobs_core::testing::run(async {
        let prefix = unique_queue("pool");
        let q = routed(&prefix).await;
        let key = unique_queue("both");
        let mut ids = Vec::new();
        for (seq, queue) in [(1, "bulk"), (2, "default"), (3, "bulk"), (4, "default")] {
            let job = ProbeJob { key: key.clone(), seq, act: Act::Succeed };
            ids.push(job.enqueue_with(&q, JobOptions::new().queue(queue)).await.unwrap());
        }
        let pool = test_pool(q.clone(), &["bulk", "default"]).start().unwrap();
        for id in &ids {
            wait_status(&q, id, JobStatus::Succeeded).await;
        }
        pool.shutdown().await.unwrap();
        let mut ran: Vec<(u64, String)> =
            jobs_core::testing::probe(&key).starts().into_iter().map(|s| (s.seq, s.queue)).collect();
        ran.sort();
        let expected: Vec<(u64, String)> =
            [(1, "bulk"), (2, "default"), (3, "bulk"), (4, "default")].map(|(s, q)| (s, q.to_owned())).into();
        assert_eq!(ran, expected, "each job ran once, from its queue");
        let b = on(server_b(), &prefix).await;
        assert_eq!(b.stats().await.unwrap().queue("bulk").processed, 2, "bulk's jobs finished on B");
        let a = on(shared_server_url(), &prefix).await;
        assert_eq!(a.stats().await.unwrap().queue("default").processed, 2, "default's jobs finished on A");
    });
}
