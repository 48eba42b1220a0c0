//! A configuration whose `jobs.redis.routes` sends a queue to a second
//! Redis server: the command line opens a router over both servers.
#![cfg(feature = "redis")]

use std::sync::OnceLock;

use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use jobs_redis::testing::{shared_server_url, RedisServer};
use serde_json::json;

use crate::support::cli;
use crate::SendMail;

fn server_b() -> String {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).url()
}

fn mail() -> SendMail {
    SendMail { to: "ann@example.com".into(), subject: "hi".into() }
}

/// One server alone, as a command line configured without routes sees it.
async fn only(url: String, prefix: &str) -> SharedQueue {
    let config = jobs_redis::RedisConfig { prefix: prefix.to_owned(), ..jobs_redis::RedisConfig::new(url) };
    std::sync::Arc::new(jobs_redis::RedisQueue::from_config(&config).await.unwrap())
}

/// `jobs queues` lists the queues of both servers; each server alone holds
/// only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_lists_the_queues_of_every_server() {
    let prefix = format!("cli-router-{}", std::process::id());
    let yaml = format!(
        "jobs:\n  redis:\n    url: \"{}\"\n    prefix: {prefix}\n    routes:\n      bulk: \"{}\"\n",
        shared_server_url(),
        server_b()
    );
    let config = jobs_core::config::Config::from_yaml_named(&yaml, "jobs.yaml").unwrap();
    let backend = jobs_cli::open(config).await.unwrap();
    let q = backend.queue;
    mail().enqueue(&q).await.unwrap();
    mail().enqueue_with(&q, JobOptions::new().queue("bulk")).await.unwrap();
    mail().enqueue_with(&q, JobOptions::new().queue("bulk")).await.unwrap();

    let listed = cli(&q, &["queues", "--json"]).await.json();
    let names: Vec<(&str, u64)> = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["pending"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("bulk", 2), ("mail", 1)], "{listed}");
    let table = cli(&q, &["queues"]).await.ok().to_owned();
    assert!(table.lines().any(|l| l.starts_with("bulk ")) && table.lines().any(|l| l.starts_with("mail ")), "{table}");

    let on_b = cli(&only(server_b(), &prefix).await, &["queues", "--json"]).await.json();
    assert_eq!(
        on_b["queues"].as_array().unwrap().iter().map(|l| l["name"].clone()).collect::<Vec<_>>(),
        [json!("bulk")]
    );
    let on_a = cli(&only(shared_server_url(), &prefix).await, &["queues", "--json"]).await.json();
    assert_eq!(
        on_a["queues"].as_array().unwrap().iter().map(|l| l["name"].clone()).collect::<Vec<_>>(),
        [json!("mail")]
    );
}

/// `jobs queues` shows how many partitions a queue is spread over (a PART
/// column, `partitions` in `--json`), from `jobs.redis.partitions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_show_their_partitions() {
    let prefix = format!("cli-parts-{}", std::process::id());
    let yaml = format!(
        "jobs:\n  redis:\n    url: \"{}\"\n    prefix: {prefix}\n    partitions: {{ bulk: 3 }}\n",
        shared_server_url()
    );
    let config = jobs_core::config::Config::from_yaml_named(&yaml, "jobs.yaml").unwrap();
    let q = jobs_cli::open(config).await.unwrap().queue;
    for _ in 0..3 {
        mail().enqueue_with(&q, JobOptions::new().queue("bulk")).await.unwrap();
    }
    mail().enqueue(&q).await.unwrap();
    let listed = cli(&q, &["queues", "--json"]).await.json();
    assert_eq!(listed["queues"][0]["partitions"], 3, "{listed}");
    assert_eq!(listed["queues"][0]["pending"], 3, "the partitions' jobs added up: {listed}");
    assert!(listed["queues"][1].get("partitions").is_none(), "one partition is not written: {listed}");
    let table = cli(&q, &["queues"]).await.ok().to_owned();
    crate::support::fits_80(&table);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(&lines[0][..4], ["QUEUE", "STATE", "PART", "PENDING"], "{table}");
    assert_eq!(&lines[1][..4], ["bulk", "active", "3", "3"], "{table}");
    assert_eq!(&lines[2][..4], ["mail", "active", "1", "1"], "{table}");
}
