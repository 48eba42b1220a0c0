//! The YAML configuration: parsing, errors naming file and key, environment
//! overrides, masking, and policies reaching the backend.

use std::time::{Duration, Instant};

use jobs_core::config::{mask_url_password, Config, ConfigError, DEFAULT_HTTP_BIND};
use jobs_core::{job, Error, JobError, JobId, JobQueue, MemoryQueue, NewJob, Priority, QueueInspect, ScheduleStore};
use serde::Deserialize;

const FULL: &str = r#"
jobs:
  redis: { url: "redis://app:hunter2@127.0.0.1:6379/0", pool_size: 8 }
  worker_pool: { worker_count: 5, max_retries: 4, retry_delay: "2s", grace_period: "1m", lease: "10s" }
  scheduler: { enabled: false }
  metrics: { enabled: true, prefix: "app_jobs_" }
  http: { bind: "0.0.0.0:9090" }
queues:
  email: { max_jobs: 5000, priority_levels: ["normal", "high"] }
  default: { max_jobs: 2 }
  bulk:
"#;

/// The keys of `jobs.redis` these tests look at (the backend crate owns the
/// section's type).
#[derive(Debug, Deserialize)]
struct RedisKeys {
    url: String,
    pool_size: Option<usize>,
    prefix: Option<String>,
}

fn redis(c: &Config) -> RedisKeys {
    c.jobs.redis.as_ref().expect("redis section").parse().expect("redis keys")
}

fn parse_err(yaml: &str) -> String {
    match Config::from_yaml_named(yaml, "config.yaml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_full_file_parses_with_every_value() {
    let c = Config::from_yaml_str(FULL).expect("valid");
    let r = redis(&c);
    assert_eq!((r.url.as_str(), r.pool_size), ("redis://app:hunter2@127.0.0.1:6379/0", Some(8)));
    let p = &c.jobs.worker_pool;
    assert_eq!((p.worker_count, p.max_retries), (5, 4));
    assert_eq!(p.retry_delay, Duration::from_secs(2));
    assert_eq!(p.grace_period, Duration::from_secs(60));
    assert_eq!(p.lease, Duration::from_secs(10));
    assert!(!c.jobs.scheduler.enabled);
    assert_eq!(c.jobs.metrics.prefix, "app_jobs_");
    assert_eq!(c.jobs.http.bind.to_string(), "0.0.0.0:9090");
    assert_eq!(c.queues.names().collect::<Vec<_>>(), ["email", "default", "bulk"], "file order is kept");
    let email = c.queues.get("email").expect("email");
    assert_eq!(email.priority_levels, [Priority::Normal, Priority::High]);
    assert_eq!(c.queues.get("bulk").expect("bulk").max_jobs, None);
}

#[test]
fn everything_has_a_default() {
    let c = Config::from_yaml_str("jobs: { worker_pool: { progress_interval: \"1s\" } }").expect("valid");
    assert_eq!(c.jobs.worker_pool.progress_interval, Duration::from_secs(1));
    for yaml in ["", "jobs: {}", "queues: {}", "jobs:\n  worker_pool: {}\n"] {
        let c = Config::from_yaml_str(yaml).expect(yaml);
        assert_eq!(c.jobs.worker_pool.worker_count, 10);
        assert_eq!(c.jobs.worker_pool.retry_delay, Duration::from_secs(5));
        assert_eq!(c.jobs.worker_pool.progress_interval, Duration::from_millis(250));
        assert_eq!(c.jobs.http.bind, DEFAULT_HTTP_BIND);
        assert_eq!(c.jobs.http.bind.to_string(), "127.0.0.1:8080");
        assert!(c.jobs.redis.is_none() && c.jobs.scheduler.enabled && c.jobs.metrics.enabled);
        assert_eq!(c.jobs.metrics.prefix, "jobs_");
    }
}

#[test]
fn unknown_keys_name_the_file_the_path_and_the_valid_keys() {
    let e = parse_err("jobs:\n  worker_pool:\n    workers: 3\n");
    assert!(e.starts_with("config.yaml: jobs.worker_pool: unknown field `workers`"), "{e}");
    assert!(e.contains("worker_count") && e.contains("grace_period"), "lists the valid keys: {e}");
    assert!(e.contains("line 3"), "{e}");

    let e = parse_err("job: {}\n");
    assert!(e.contains("unknown field `job`") && e.contains("`jobs`") && e.contains("`queues`"), "{e}");
    let e = parse_err("queues:\n  email: { max_job: 3 }\n");
    assert!(e.contains("queues.email: unknown field `max_job`") && e.contains("max_jobs"), "{e}");
    let e = parse_err("jobs: { redis: { pool_size: 2 } }\n");
    assert!(e.contains("jobs.redis.url: missing"), "the URL selects Redis: {e}");
}

#[test]
fn bad_values_name_the_key() {
    let e = parse_err("jobs:\n  worker_pool:\n    worker_count: many\n");
    assert!(e.starts_with("config.yaml: jobs.worker_pool.worker_count: invalid type: string \"many\""), "{e}");
    let e = parse_err("jobs: { worker_pool: { worker_count: 0 } }");
    assert_eq!(e, "config.yaml: jobs.worker_pool.worker_count: must be at least 1");
    let e = parse_err("jobs: { worker_pool: { max_retries: -1 } }");
    assert!(e.contains("jobs.worker_pool.max_retries: invalid type: integer `-1`, expected u32"), "{e}");
    let e = parse_err("jobs: { http: { bind: \"localhost\" } }");
    assert!(e.contains("jobs.http.bind: `localhost` is not an IP:port address; write e.g. \"127.0.0.1:8080\""), "{e}");
    let e = parse_err("jobs: { metrics: { prefix: \"my-app\" } }");
    assert!(e.contains("jobs.metrics.prefix: invalid metrics prefix `my-app`"), "{e}");
    let e = parse_err("jobs: { metrics: { enabled: maybe } }");
    assert!(e.contains("jobs.metrics.enabled: `maybe` is not a boolean"), "{e}");
    let e = parse_err("jobs: { redis: { url: \"http://u:topsecret@h\" } }");
    assert!(e.contains("jobs.redis.url: `http://u:***@h` is not a Redis URL"), "{e}");
    assert!(!e.contains("topsecret"), "{e}");
}

#[test]
fn bad_durations_say_how_to_write_one() {
    let e = parse_err("jobs: { worker_pool: { retry_delay: \"5 parsecs\" } }");
    assert!(e.contains("jobs.worker_pool.retry_delay: invalid duration `5 parsecs`"), "{e}");
    assert!(e.contains("\"30s\""), "{e}");
    let e = parse_err("jobs: { worker_pool: { grace_period: 30 } }");
    assert!(e.contains("jobs.worker_pool.grace_period:"), "{e}");
    let e = parse_err("jobs: { worker_pool: { lease: \"10ms\" } }");
    assert!(e.contains("jobs.worker_pool.lease: must be at least 100ms"), "{e}");
}

#[test]
fn queue_names_and_priorities_are_checked() {
    let e = parse_err("queues:\n  \"bad name\": { max_jobs: 3 }\n");
    assert!(e.contains("queues.bad name: invalid queue name `bad name`"), "{e}");
    let e = parse_err("queues:\n  email: { priority_levels: [\"normal\", \"urgent\"] }\n");
    assert!(e.contains("queues.email.priority_levels[1]: unknown variant `urgent`"), "{e}");
    assert!(e.contains("`critical`"), "lists the valid priorities: {e}");
    let e = parse_err("queues:\n  email: { max_jobs: 0 }\n");
    assert!(e.contains("queues.email.max_jobs: must be at least 1"), "{e}");
    let e = parse_err("queues:\n  email: { max_running: 0 }\n");
    assert!(e.contains("queues.email.max_running: must be at least 1"), "{e}");
    let c = Config::from_yaml_str("queues:\n  email: { max_running: 5 }\n").expect("valid");
    assert_eq!(c.queues.get("email").expect("email").policy().max_running, Some(5));
    let c = Config::from_yaml_str("queues:\n  email: { rate: \"100/1m\" }\n").expect("valid");
    assert_eq!(c.queues.get("email").expect("email").policy().rate, Some("100/1m".parse().expect("a rate")));
    let e = parse_err("queues:\n  email: { rate: \"lots\" }\n");
    assert!(e.contains("queues.email") && e.contains("invalid rate \"lots\"") && e.contains("N/period"), "{e}");
    let c =
        Config::from_yaml_str("queues:\n  hooks: { group_concurrency: 2, group_rate: \"10/1s\" }\n").expect("valid");
    let p = c.queues.get("hooks").expect("hooks").policy();
    assert_eq!((p.group_concurrency, p.group_rate), (Some(2), Some("10/1s".parse().expect("a rate"))));
    let c = Config::from_yaml_str("queues:\n  hooks: { breaker: \"5/1m:30s\" }\n").expect("valid");
    assert_eq!(c.queues.get("hooks").expect("hooks").policy().breaker, Some("5/1m:30s".parse().expect("a breaker")));
    let e = parse_err("queues:\n  hooks: { breaker: \"5/1m\" }\n");
    assert!(e.contains("queues.hooks") && e.contains("invalid breaker") && e.contains("N/window:cooldown"), "{e}");
    let e = parse_err("queues:\n  hooks: { group_concurrency: 0 }\n");
    assert!(e.contains("queues.hooks.group_concurrency: must be at least 1"), "{e}");
    let e = parse_err("queues:\n  email: {}\n  email: {}\n");
    assert!(e.contains("email"), "{e}");
}

#[test]
fn env_overrides_apply_and_are_checked() {
    let c = Config::from_yaml_str(FULL).expect("valid");
    let c = c
        .with_env_overrides([
            ("JOBS_REDIS_URL", "redis://other:6380"),
            ("JOBS_WORKER_COUNT", "32"),
            ("JOBS_MAX_RETRIES", "0"),
            ("JOBS_RETRY_DELAY", "250ms"),
            ("JOBS_GRACE_PERIOD", "5s"),
            ("JOBS_HTTP_BIND", "127.0.0.1:0"),
            ("JOBS_METRICS_PREFIX", "x_"),
            ("JOBS_METRICS_ENABLED", "false"),
            ("JOBS_SCHEDULER_ENABLED", "yes"),
            ("JOBS_UNRELATED", "ignored"),
            ("PATH", "/bin"),
            ("JOBS_LEASE", ""),
        ])
        .expect("valid overrides");
    assert_eq!(redis(&c).url, "redis://other:6380");
    assert_eq!(redis(&c).pool_size, Some(8), "other redis keys are kept");
    let p = &c.jobs.worker_pool;
    assert_eq!((p.worker_count, p.max_retries), (32, 0));
    assert_eq!((p.retry_delay, p.grace_period), (Duration::from_millis(250), Duration::from_secs(5)));
    assert_eq!(p.lease, Duration::from_secs(10), "an empty value is unset");
    assert_eq!(c.jobs.http.bind.port(), 0);
    assert_eq!(c.jobs.metrics.prefix, "x_");
    assert!(!c.jobs.metrics.enabled && c.jobs.scheduler.enabled);

    let c = Config::default().with_env_overrides([("JOBS_REDIS_URL", "redis://h:1")]).expect("adds redis");
    assert_eq!(c.jobs.redis.as_ref().and_then(|r| r.url()), Some("redis://h:1"));

    for (var, value, expect) in [
        (
            "JOBS_WORKER_COUNT",
            "0",
            "environment variable JOBS_WORKER_COUNT (jobs.worker_pool.worker_count): must be at least 1",
        ),
        (
            "JOBS_WORKER_COUNT",
            "lots",
            "JOBS_WORKER_COUNT (jobs.worker_pool.worker_count): invalid type: string \"lots\", expected usize",
        ),
        ("JOBS_RETRY_DELAY", "soon", "JOBS_RETRY_DELAY (jobs.worker_pool.retry_delay): invalid duration `soon`"),
        ("JOBS_HTTP_BIND", "8080", "JOBS_HTTP_BIND (jobs.http.bind): `8080` is not an IP:port address"),
        ("JOBS_MAX_RETRIES", "-1", "JOBS_MAX_RETRIES (jobs.worker_pool.max_retries): invalid value: integer `-1`"),
        ("JOBS_METRICS_ENABLED", "perhaps", "JOBS_METRICS_ENABLED (jobs.metrics.enabled): `perhaps` is not a boolean"),
        ("JOBS_METRICS_PREFIX", "a-b", "JOBS_METRICS_PREFIX (jobs.metrics.prefix): invalid metrics prefix"),
        ("JOBS_REDIS_URL", "localhost:6379", "JOBS_REDIS_URL (jobs.redis.url): `localhost:6379` is not a Redis URL"),
    ] {
        let e = Config::default().with_env_overrides([(var, value)]).expect_err(var);
        assert!(matches!(e, ConfigError::Env { .. }), "{e:?}");
        assert!(e.to_string().contains(expect), "{var}={value}: {e}");
    }
}

#[test]
fn load_reads_a_file_names_it_in_errors_and_applies_env() {
    let dir = std::env::temp_dir().join(format!("jobs-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.yaml");
    std::fs::write(&good, FULL).expect("write");
    let c = Config::load_with_env(&good, [("JOBS_WORKER_COUNT", "7")]).expect("loads");
    assert_eq!(c.jobs.worker_pool.worker_count, 7);

    let bad = dir.join("config.yaml");
    std::fs::write(&bad, "jobs:\n  scheduler: { enabled: true, every: \"1s\" }\n").expect("write");
    let e = Config::load_with_env(&bad, std::iter::empty::<(&str, &str)>()).expect_err("unknown key");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{}: jobs.scheduler: unknown field `every`", bad.display())), "{shown}");

    let e = Config::load_with_env(dir.join("missing.yaml"), std::iter::empty::<(&str, &str)>()).expect_err("missing");
    assert!(matches!(e, ConfigError::Read { .. }) && e.to_string().contains("missing.yaml"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn debug_output_masks_the_redis_password() {
    let c = Config::from_yaml_str(FULL).expect("valid");
    let shown = format!("{c:?} {:#?}", c.jobs.redis);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis://app:***@127.0.0.1:6379/0"), "{shown}");
    assert_eq!(mask_url_password("rediss://default:pa:ss@h:6380"), "rediss://default:***@h:6380");
    assert_eq!(mask_url_password("redis+unix:///run/r.sock?pass=pw&db=2"), "redis+unix:///run/r.sock?pass=***&db=2");
    assert_eq!(mask_url_password("redis://h:6379"), "redis://h:6379");
}

fn new_job(queue: &str, priority: Priority) -> NewJob {
    NewJob { priority, ..NewJob::new(JobId::new(queue), "config.test", b"{}".to_vec()) }
}

#[tokio::test]
async fn max_jobs_and_priority_levels_from_yaml_reach_the_backend() {
    let c = Config::from_yaml_str(FULL).expect("valid");
    let q = MemoryQueue::new();
    c.apply_queue_policies(&q).await.expect("policies set");

    q.enqueue_many(vec![new_job("default", Priority::Normal), new_job("default", Priority::Low)]).await.expect("2 fit");
    let e = q.enqueue_many(vec![new_job("default", Priority::Normal)]).await.expect_err("third is refused");
    assert!(matches!(e, Error::QueueFull { ref queue, max_jobs: 2 } if queue == "default"), "{e:?}");
    assert_eq!(q.stats().await.expect("stats").queue("default").pending, 2, "nothing was dropped or added");

    let e = q.enqueue_many(vec![new_job("email", Priority::Critical)]).await.expect_err("priority refused");
    assert!(matches!(e, Error::PriorityNotAccepted { .. }), "{e:?}");
    q.enqueue_many(vec![new_job("email", Priority::High)]).await.expect("accepted priority");
}

#[test]
fn pool_builder_and_metrics_follow_the_config() {
    let c = Config::from_yaml_str(FULL).expect("valid");
    let m = c.job_metrics().expect("valid prefix").expect("enabled");
    assert_eq!(m.prefix(), "app_jobs_");
    let off = c.clone().with_env_overrides([("JOBS_METRICS_ENABLED", "0")]).expect("valid");
    assert!(off.job_metrics().expect("ok").is_none());
    // The builder is opaque; building it is what there is to check here (a
    // pool run from a configured builder is in the metrics test).
    let _ = c.pool_builder(MemoryQueue::new()).metrics(&m);
}

#[test]
fn the_admin_token_comes_from_yaml_or_env_and_is_never_shown() {
    let c = Config::from_yaml_str("jobs:\n  http:\n    admin_token: s3cret-token\n").expect("valid");
    assert_eq!(c.jobs.http.admin_token.as_deref(), Some("s3cret-token"));
    assert!(!format!("{c:?}").contains("s3cret-token"), "{c:?}");
    let c = Config::default().with_env_overrides([("JOBS_HTTP_ADMIN_TOKEN", "from-env")]).expect("valid");
    assert_eq!(c.jobs.http.admin_token.as_deref(), Some("from-env"));
    assert!(Config::default().jobs.http.admin_token.is_none(), "read-only by default");
}

#[test]
fn allowed_hosts_come_from_yaml_or_env_and_are_checked() {
    let c =
        Config::from_yaml_str("jobs:\n  http:\n    allowed_hosts: [\"jobs.example.com\", \"metrics.internal:9090\"]\n")
            .expect("valid");
    assert_eq!(c.jobs.http.allowed_hosts, ["jobs.example.com", "metrics.internal:9090"]);
    assert!(Config::default().jobs.http.allowed_hosts.is_empty(), "none by default");

    let c =
        c.with_env_overrides([("JOBS_HTTP_ALLOWED_HOSTS", " a.example , b.example:8443,, ")]).expect("valid override");
    assert_eq!(c.jobs.http.allowed_hosts, ["a.example", "b.example:8443"], "the variable replaces the list");
    let c = c.with_env_overrides([("JOBS_HTTP_ALLOWED_HOSTS", "")]).expect("empty: unset");
    assert_eq!(c.jobs.http.allowed_hosts, ["a.example", "b.example:8443"]);

    let e = parse_err("jobs:\n  http:\n    allowed_hosts: [\"ok.example\", \"https://jobs.example.com\"]\n");
    assert!(
        e.starts_with("config.yaml: jobs.http.allowed_hosts[1]: `https://jobs.example.com` is not a host name"),
        "{e}"
    );
    for bad in ["jobs.example.com:http", "jobs.example.com:70000", "a b", ":8080", "jobs.example.com/ui"] {
        let e = parse_err(&format!("jobs: {{ http: {{ allowed_hosts: [\"{bad}\"] }} }}"));
        assert!(e.contains("jobs.http.allowed_hosts[0]") && e.contains("not a host name"), "{bad}: {e}");
    }
    let e = parse_err("jobs: { http: { allowed_hosts: \"jobs.example.com\" } }");
    assert!(e.contains("jobs.http.allowed_hosts: invalid type: string"), "a list, not a string: {e}");
    let e = parse_err("jobs: { http: { allowed_host: [\"jobs.example.com\"] } }");
    assert!(e.contains("jobs.http: unknown field `allowed_host`") && e.contains("allowed_hosts"), "{e}");

    let e = Config::default()
        .with_env_overrides([("JOBS_HTTP_ALLOWED_HOSTS", "ok.example,http://evil.example")])
        .expect_err("checked");
    assert!(matches!(e, ConfigError::Env { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("JOBS_HTTP_ALLOWED_HOSTS (jobs.http.allowed_hosts[1]): `http://evil.example` is not a host name"),
        "{e}"
    );
}

#[test]
fn every_key_is_settable_by_its_path() {
    let c = Config::from_yaml_str(FULL)
        .expect("valid")
        .with_env_overrides([
            ("JOBS_WORKER_POOL__LEASE", "45s"),
            ("JOBS_QUEUES__EMAIL__MAX_JOBS", "7"),
            ("JOBS_QUEUES__EMAIL__PRIORITY_LEVELS", "low, critical"),
            ("JOBS_QUEUES__REPORTS__MAX_JOBS", "3"),
            ("JOBS_REDIS__PREFIX", "app"),
            ("JOBS_HTTP__ADMIN_TOKEN", "12345"),
            ("JOBS_SCHEDULER__ENABLED", "off"),
            ("JOBS_CONFIG", "/etc/jobs.yaml"),
        ])
        .expect("valid overrides");
    assert_eq!(c.jobs.worker_pool.lease, Duration::from_secs(45), "a nested key set only by the environment");
    let email = c.queues.get("email").expect("email");
    assert_eq!(email.max_jobs, Some(7));
    assert_eq!(email.priority_levels, [Priority::Low, Priority::Critical], "a list replaces the file's");
    assert_eq!(c.queues.get("reports").and_then(|q| q.max_jobs), Some(3), "a queue the file does not list");
    assert_eq!(c.queues.names().collect::<Vec<_>>(), ["email", "default", "bulk", "reports"]);
    assert_eq!(redis(&c).prefix.as_deref(), Some("app"));
    assert_eq!(redis(&c).pool_size, Some(8), "the file's other redis keys are kept");
    assert_eq!(c.jobs.http.admin_token.as_deref(), Some("12345"), "digits stay text where text is wanted");
    assert!(!c.jobs.scheduler.enabled);

    // A configured queue is found whatever the case of its name.
    let c = Config::from_yaml_str("queues:\n  Mail: {}\n").expect("valid");
    let c = c.with_env_overrides([("JOBS_QUEUES__MAIL__MAX_JOBS", "9")]).expect("valid");
    assert_eq!(c.queues.get("Mail").and_then(|q| q.max_jobs), Some(9));
}

#[test]
fn the_long_form_wins_over_the_short_name() {
    for vars in [
        [("JOBS_WORKER_COUNT", "3"), ("JOBS_WORKER_POOL__WORKER_COUNT", "4")],
        [("JOBS_WORKER_POOL__WORKER_COUNT", "4"), ("JOBS_WORKER_COUNT", "3")],
    ] {
        let c = Config::default().with_env_overrides(vars).expect("valid");
        assert_eq!(c.jobs.worker_pool.worker_count, 4, "{vars:?}");
    }
    // The order of variables does not matter for keys that need each other.
    let c = Config::default()
        .with_env_overrides([("JOBS_REDIS_POOL_SIZE", "4"), ("JOBS_REDIS_URL", "redis://h:1")])
        .expect("valid");
    assert_eq!((redis(&c).url.as_str(), redis(&c).pool_size), ("redis://h:1", Some(4)));
    let e = Config::default().with_env_overrides([("JOBS_REDIS_POOL_SIZE", "4")]).expect_err("no URL");
    assert!(e.to_string().starts_with("environment variable JOBS_REDIS_POOL_SIZE (jobs.redis.url): missing"), "{e}");
}

#[test]
fn unknown_keys_in_variables_name_the_variable_the_path_and_the_valid_keys() {
    let e = Config::default().with_env_overrides([("JOBS_WORKER_POOL__WORKERS", "3")]).expect_err("unknown");
    let shown = e.to_string();
    assert!(matches!(e, ConfigError::Env { ref key, .. } if key == "jobs.worker_pool.workers"), "{e:?}");
    assert!(
        shown.starts_with(
            "environment variable JOBS_WORKER_POOL__WORKERS (jobs.worker_pool.workers): unknown field `workers`"
        ),
        "{shown}"
    );
    assert!(shown.contains("worker_count") && shown.contains("grace_period"), "lists the valid keys: {shown}");

    let e = Config::default().with_env_overrides([("JOBS_WORKERPOOL__LEASE", "1s")]).expect_err("unknown section");
    assert!(e.to_string().contains("unknown field `workerpool`") && e.to_string().contains("worker_pool"), "{e}");
    let e = Config::default().with_env_overrides([("JOBS_QUEUES__EMAIL__MAX_JOB", "1")]).expect_err("unknown key");
    assert!(e.to_string().contains("(queues.email.max_job): unknown field `max_job`"), "{e}");
    let e = Config::default().with_env_overrides([("JOBS_LEASE__X", "1")]).expect_err("not a section");
    assert!(e.to_string().contains("JOBS_LEASE__X (jobs.lease.x): unknown field `lease`"), "{e}");
    let e = Config::default().with_env_overrides([("JOBS_WORKER_POOL__LEASE__X", "1")]).expect_err("a value");
    assert!(e.to_string().contains("(jobs.worker_pool.lease.x):"), "{e}");
}

#[test]
fn an_application_file_keeps_its_own_sections() {
    let text =
        "app:\n  name: demo\n  anything: [1, 2]\njobs:\n  worker_pool: { worker_count: 3 }\nqueues:\n  email: {}\n";
    let c = Config::from_app_yaml(text, "app.yaml").expect("other sections are the application's");
    assert_eq!(c.jobs.worker_pool.worker_count, 3);
    assert_eq!(c.queues.names().collect::<Vec<_>>(), ["email"]);
    let e = Config::from_yaml_named(text, "app.yaml").expect_err("a file of its own has no other sections");
    assert!(e.to_string().contains("unknown field `app`"), "{e}");

    let e = Config::from_app_yaml("app: {}\njobs:\n  worker_pool: { workers: 3 }\n", "app.yaml").expect_err("typo");
    let shown = e.to_string();
    assert!(shown.starts_with("app.yaml: jobs.worker_pool: unknown field `workers`"), "{shown}");
    assert!(shown.contains("line 3"), "{shown}");
    let e = Config::from_app_yaml("app: {}\nqueues:\n  email: { max_job: 3 }\n", "app.yaml").expect_err("typo");
    assert!(e.to_string().contains("queues.email: unknown field `max_job`"), "{e}");
}

#[test]
fn overrides_from_elsewhere_name_their_source() {
    let c = Config::default().with_override("jobs.redis.url", "redis://db:6379", "--redis-url").expect("valid");
    assert_eq!(redis(&c).url, "redis://db:6379");
    let e = Config::default().with_override("jobs.redis.url", "db:6379", "--redis-url").expect_err("bad url");
    assert!(e.to_string().starts_with("--redis-url: jobs.redis.url: `db:6379` is not a Redis URL"), "{e}");
    let e = Config::default().with_override("jobs.worker_pool.count", "3", "--count").expect_err("unknown key");
    assert!(e.to_string().starts_with("--count: jobs.worker_pool.count: unknown field `count`"), "{e}");
}

#[test]
fn redis_keys_name_the_file_or_the_variable() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Read by `Debug` only: parsing is what is tested.
    struct Strict {
        url: String,
        pool_size: Option<usize>,
    }
    let c = Config::from_yaml_named("jobs:\n  redis:\n    url: redis://h\n    pool_size: many\n", "config.yaml")
        .expect("the core does not know the backend's keys");
    let e = c.jobs.redis.as_ref().expect("section").parse::<Strict>().expect_err("bad pool size");
    let shown = e.to_string();
    assert!(shown.starts_with("config.yaml: jobs.redis.pool_size: invalid type: string \"many\""), "{shown}");
    assert!(shown.contains("line 4"), "{shown}");

    let c = Config::from_yaml_named("jobs:\n  redis: { url: redis://h }\n", "config.yaml")
        .expect("valid")
        .with_env_overrides([("JOBS_REDIS__POOL_SIZE", "lots"), ("JOBS_REDIS__PASSWORD", "x")])
        .expect("the core does not know the backend's keys");
    let e = c.jobs.redis.as_ref().expect("section").parse::<Strict>().expect_err("unknown key");
    let shown = e.to_string();
    assert!(matches!(e, ConfigError::Env { .. }), "{e:?}");
    assert!(
        shown.starts_with("environment variable JOBS_REDIS__PASSWORD (jobs.redis.password): unknown field `password`")
            || shown.starts_with("environment variable JOBS_REDIS__POOL_SIZE (jobs.redis.pool_size): invalid type"),
        "{shown}"
    );
}

/// A recurring job: a pool with the scheduler on adds its schedule.
#[job(name = "config.nightly", queue = "config_cron", cron = "0 0 3 * * *")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_builder_honours_scheduler_enabled() {
    let on = Config::from_yaml_str("queues: { config_cron: {} }").expect("valid");
    assert!(on.jobs.scheduler.enabled, "on by default");
    let off = on.clone().with_env_overrides([("JOBS_SCHEDULER_ENABLED", "false")]).expect("valid");

    let queue = MemoryQueue::new();
    let pool = off.pool_builder(queue.clone()).start().expect("starts");
    pool.shutdown().await.expect("stops");
    assert!(queue.schedules().await.expect("schedules").is_empty(), "no scheduler ran, so nothing was added");

    let pool = on.pool_builder(queue.clone()).start().expect("starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.schedules().await.expect("schedules").is_empty() {
        assert!(Instant::now() < deadline, "the scheduler adds the declared schedule");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.shutdown().await.expect("stops");
    let _ = nightly;
}

/// A queue's retention and archiving, and `jobs.archive`, from the file and
/// from the environment; a bad value names its key.
#[test]
fn retention_and_archive_keys() {
    let yaml = "jobs:\n  archive: { dir: \"/var/lib/jobs/archive\", batch: 50 }\nqueues:\n  reports: { retention: { succeeded: \"1h\", dead_max: 5 }, archive: true }\n  email: {}\n";
    let c = Config::from_yaml_str(yaml).unwrap();
    let p = c.queues.get("reports").unwrap().policy();
    assert_eq!(
        (p.retention.succeeded, p.retention.dead_max, p.retention.succeeded_max),
        (Some(Duration::from_secs(3600)), Some(5), None)
    );
    assert!(p.archive);
    assert!(!c.queues.get("email").unwrap().policy().archive);
    assert_eq!(c.jobs.archive.dir.as_deref(), Some(std::path::Path::new("/var/lib/jobs/archive")));
    let default_interval = jobs_core::archive::ArchiveSettings::default().interval;
    assert_eq!(
        (c.jobs.archive.batch, c.jobs.archive.interval),
        (50, default_interval),
        "an unset key keeps its default"
    );

    let c = c
        .with_env_overrides([
            ("JOBS_QUEUES__EMAIL__RETENTION__SUCCEEDED_MAX", "0"),
            ("JOBS_QUEUES__EMAIL__ARCHIVE", "yes"),
            ("JOBS_ARCHIVE__INTERVAL", "5s"),
        ])
        .unwrap();
    let p = c.queues.get("email").unwrap().policy();
    assert_eq!((p.retention.succeeded_max, p.archive), (Some(0), true));
    assert_eq!(c.jobs.archive.interval, Duration::from_secs(5));

    let e = parse_err("queues:\n  reports: { retention: { kept: 3 } }\n");
    assert!(e.contains("queues") && e.contains("kept"), "{e}");
    let e = parse_err("queues:\n  reports: { retention: { succeeded: \"soon\" } }\n");
    assert!(e.contains("queues.reports.retention.succeeded") && e.contains("soon"), "{e}");
    let e = parse_err("jobs:\n  archive: { batch: 0 }\n");
    assert!(e.contains("jobs.archive.batch"), "{e}");
}

#[test]
fn the_sandbox_section_parses_is_checked_and_is_settable_by_variables() {
    let c = Config::from_yaml_str(
        "jobs:\n  worker_pool:\n    sandbox: { memory_limit_mb: 512, cpu_time_limit: 30s, network: no, warm_children: 3 }\n",
    )
    .expect("valid");
    let s = &c.jobs.worker_pool.sandbox;
    assert_eq!(s.memory_limit_mb, Some(512));
    assert_eq!(s.cpu_time_limit, Some(Duration::from_secs(30)));
    assert!(!s.network);
    assert_eq!(s.warm_children, 3);
    assert_eq!(s.open_files_limit, Some(256), "an unset key keeps its default");
    let e = parse_err("jobs:\n  worker_pool:\n    sandbox: { memory: 512 }\n");
    assert!(e.contains("jobs.worker_pool.sandbox: unknown field `memory`") && e.contains("memory_limit_mb"), "{e}");
    let e = parse_err("jobs:\n  worker_pool:\n    sandbox: { cpu_time_limit: forever }\n");
    assert!(e.contains("jobs.worker_pool.sandbox.cpu_time_limit"), "{e}");
    let c = c
        .with_env_overrides([
            ("JOBS_WORKER_POOL__SANDBOX__ENABLED", "off"),
            ("JOBS_WORKER_POOL__SANDBOX__CPU_TIME_LIMIT", "2m"),
        ])
        .expect("valid overrides");
    assert!(!c.jobs.worker_pool.sandbox.enabled);
    assert_eq!(c.jobs.worker_pool.sandbox.cpu_time_limit, Some(Duration::from_secs(120)));
}
