//! Scripts sent whole by `EVALSHA`: the whole conformance suite runs as an
//! ACL user with [`acl_rules`] less `FCALL` and `FUNCTION LOAD` (as on a
//! server before Redis 7, or under an ACL written for earlier releases), so
//! every script works both ways; and a server that loses its scripts
//! (`SCRIPT FLUSH`) gets them again.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use jobs_core::testing::cases::fetch_of;
use jobs_core::testing::{run, unique_queue};
use jobs_core::{JobId, JobQueue, NewJob};
use jobs_redis::testing::RedisServer;
use jobs_redis::{acl_rules, RedisConfig, RedisQueue};

const USER: &str = "jobs-eval";
const PASSWORD: &str = "no-functions-here";
/// Every key prefix this binary uses starts so.
const PREFIX_PATTERN: &str = "eval-*";

/// The crate's rules without the function commands.
fn rules() -> String {
    let rules = acl_rules(PREFIX_PATTERN).replace(" +fcall", "").replace(" +function|load", "");
    assert!(!rules.contains("fcall") && !rules.contains("function"), "{rules}");
    rules
}

/// A server whose `jobs-eval` user may not call functions.
fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = RedisServer::start();
        s.acl_user(USER, PASSWORD, &rules());
        s
    })
}

fn config() -> RedisConfig {
    let url = format!("redis://{USER}:{PASSWORD}@127.0.0.1:{}", server().port());
    RedisConfig { prefix: format!("eval-{}", unique_queue("p")), ..RedisConfig::new(url) }
}

jobs_core::conformance_suite!(|| async { RedisQueue::from_config(&config()).await.unwrap() });

fn job(queue: &str) -> NewJob {
    NewJob::new(JobId::new(queue), "x", b"{}".to_vec())
}

/// The calls go by `EVALSHA`, and a script lost by the server (`SCRIPT
/// FLUSH`, as after a restart) is loaded again.
#[test]
fn scripts_go_by_evalsha_and_are_reloaded_after_script_flush() {
    run(async {
        let s = server();
        let q = RedisQueue::from_config(&config()).await.unwrap();
        let queue = unique_queue("evalsha");
        let before = s.command_stat("evalsha", "calls");
        q.enqueue_many(vec![job(&queue)]).await.unwrap();
        assert!(s.command_stat("evalsha", "calls") > before, "the enqueue went by EVALSHA");
        let mut c = redis::Client::open(s.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut c).await.unwrap();
        assert_eq!(q.fetch(&fetch_of(&queue, 1)).await.unwrap().jobs.len(), 1);
        let libraries: Vec<redis::Value> = redis::cmd("FUNCTION").arg("LIST").query_async(&mut c).await.unwrap();
        assert!(libraries.is_empty(), "nothing loaded a library: {libraries:?}");
    });
}
