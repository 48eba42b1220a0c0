//! What the types alone do not check: bounds, names, the Redis URL, the
//! allowed host names. Each problem comes back as (key path, message).

use std::time::Duration;

use super::Config;
use crate::parse::validate_queue_name;

/// A problem: the key path and what is wrong.
pub(super) type Problem = (String, String);

/// The first problem of `config`, if any.
pub(super) fn config(config: &Config) -> Result<(), Problem> {
    fn at(key: &'static str) -> impl Fn(String) -> Problem {
        move |m| (key.to_owned(), m)
    }
    let jobs = &config.jobs;
    worker_count(jobs.worker_pool.worker_count).map_err(at("jobs.worker_pool.worker_count"))?;
    lease(jobs.worker_pool.lease).map_err(at("jobs.worker_pool.lease"))?;
    metrics_prefix(&jobs.metrics.prefix).map_err(at("jobs.metrics.prefix"))?;
    worker_count(jobs.archive.batch).map_err(at("jobs.archive.batch"))?;
    lease(jobs.archive.lease).map_err(at("jobs.archive.lease"))?;
    if jobs.archive.max_file_size == 0 {
        return Err(at("jobs.archive.max_file_size")("must be at least 1 (bytes)".into()));
    }
    if let Some(r) = &jobs.redis {
        match r.value().get("url") {
            None => {
                return Err(at("jobs.redis.url")(
                    "missing: the URL selects Redis; write e.g. redis://127.0.0.1:6379".into(),
                ))
            }
            Some(url) => match url.as_str() {
                Some(url) => redis_url(url).map_err(at("jobs.redis.url"))?,
                None => return Err(at("jobs.redis.url")("must be text, e.g. redis://127.0.0.1:6379".into())),
            },
        }
    }
    for (i, host) in jobs.http.allowed_hosts.iter().enumerate() {
        allowed_host(host).map_err(|m| (format!("jobs.http.allowed_hosts[{i}]"), m))?;
    }
    for (name, q) in config.queues.iter() {
        validate_queue_name(name).map_err(|e| (format!("queues.{name}"), e.to_string()))?;
        if q.max_jobs == Some(0) {
            return Err((format!("queues.{name}.max_jobs"), "must be at least 1 (leave it out for no bound)".into()));
        }
        if q.max_running == Some(0) {
            return Err((
                format!("queues.{name}.max_running"),
                "must be at least 1 (leave it out for no bound; pause the queue to run none)".into(),
            ));
        }
        if q.group_concurrency == Some(0) {
            return Err((
                format!("queues.{name}.group_concurrency"),
                "must be at least 1 (leave it out for each job's own bound)".into(),
            ));
        }
    }
    Ok(())
}

fn worker_count(n: usize) -> Result<(), String> {
    if n == 0 {
        Err("must be at least 1".into())
    } else {
        Ok(())
    }
}

fn lease(d: Duration) -> Result<(), String> {
    if d < Duration::from_millis(100) {
        Err(format!("must be at least 100ms, not {}", humantime::format_duration(d)))
    } else {
        Ok(())
    }
}

/// The prefix must make valid Prometheus names. Without the `metrics`
/// feature no metric is named, so any prefix goes.
fn metrics_prefix(p: &str) -> Result<(), String> {
    #[cfg(feature = "metrics")]
    crate::metrics::check_prefix(p).map_err(|e| e.to_string())?;
    let _ = p;
    Ok(())
}

fn redis_url(url: &str) -> Result<(), String> {
    const SCHEMES: [&str; 6] = ["redis", "rediss", "redis+cluster", "rediss+cluster", "redis+unix", "unix"];
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if SCHEMES.contains(&s) => Ok(()),
        _ => Err(format!(
            "`{}` is not a Redis URL: write e.g. redis://127.0.0.1:6379 (schemes: {})",
            super::mask_url_password(url),
            SCHEMES.join(", ")
        )),
    }
}

/// An entry of `jobs.http.allowed_hosts`: a DNS name, optionally with a
/// port (`jobs.example.com`, `jobs.example.com:8443`). The same form the
/// HTTP endpoints' `Host` check compares requests against.
fn allowed_host(entry: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{entry}` is not a host name: write `name` or `name:port`, e.g. jobs.example.com or \
             jobs.example.com:8443 (no scheme, no path)"
        )
    };
    let (name, port) = match entry.trim().split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (entry.trim(), None),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let name_ok =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}
