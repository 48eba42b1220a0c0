//! The parser's usage errors, help, and opening the backend.

use jobs_cli::{open, BackendKind};
use jobs_core::config::Config;

use crate::support::{cli, memory};

#[tokio::test]
async fn help_and_version_go_to_stdout_with_exit_0() {
    let q = memory();
    let out = cli(&q, &["--help"]).await;
    let help = out.ok();
    assert!(help.contains("Usage: jobs [OPTIONS] <COMMAND>"), "{help}");
    for command in ["worker", "enqueue", "stats", "queues", "job", "cancel", "dead", "schedules", "queue", "workers"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "`{command}` in:\n{help}");
    }
    assert!(help.contains("69 backend unavailable"), "exit codes are documented:\n{help}");
    assert!(cli(&q, &["dead", "--help"]).await.ok().contains("purge"));
    assert!(cli(&q, &["--version"]).await.ok().starts_with("jobs "));
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let q = memory();
    for args in [&[][..], &["frobnicate"], &["dead"], &["stats", "--yaml"], &["dead", "list", "--limit", "many"]] {
        let out = cli(&q, args).await;
        assert_eq!((out.code, out.out.as_str()), (2, ""), "{args:?}: {out:?}");
        assert!(out.err.starts_with("error: ") || out.err.contains("Usage: jobs"), "{args:?}: {out:?}");
    }
}

#[tokio::test]
async fn no_redis_url_opens_an_embedded_queue() {
    let backend = open(Config::default()).await.unwrap();
    assert_eq!(backend.kind, BackendKind::Memory);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn an_unreachable_redis_is_exit_69_without_the_password() {
    let refusing = jobs_redis::testing::RefusingPort::new();
    let port = refusing.port();
    let args = jobs_cli::BackendArgs { config: None, redis_url: Some(format!("redis://:hunter2@127.0.0.1:{port}")) };
    let config = jobs_cli::load_config_with_env(&args, [("", ""); 0]).unwrap();
    let e = open(config).await.unwrap_err();
    assert_eq!(e.exit_code(), jobs_cli::exit::UNAVAILABLE, "{e}");
    let line = e.one_line();
    assert!(line.contains(&format!("127.0.0.1:{port}")) && !line.contains("hunter2"), "{line}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_url_opens_redis() {
    let url = jobs_redis::testing::shared_server_url();
    let args = jobs_cli::BackendArgs { config: None, redis_url: Some(url.clone()) };
    let backend = jobs_cli::connect(&args).await.unwrap();
    assert_eq!(backend.kind, BackendKind::Redis { url });
}
