//! `JOBS_*` environment overrides.

use std::net::SocketAddr;
use std::str::FromStr;

use super::de::parse_duration;
use super::{check, Config, ConfigError, RedisSettings};

/// Applies one variable; variables that are not overrides are ignored, and an
/// empty value counts as unset.
pub(super) fn apply(config: &mut Config, var: &str, value: &str) -> Result<(), ConfigError> {
    let Some(key) = key_of(var) else {
        if var.starts_with("JOBS_") {
            tracing::debug!(var, "ignoring environment variable: not a configuration override");
        }
        return Ok(());
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let err = |message: String| ConfigError::Env { var: var.to_owned(), key, message };
    let jobs = &mut config.jobs;
    let pool = &mut jobs.worker_pool;
    match var {
        "JOBS_REDIS_URL" => {
            check::redis_url(value).map_err(err)?;
            match &mut jobs.redis {
                Some(r) => r.url = value.to_owned(),
                None => jobs.redis = Some(RedisSettings::new(value)),
            }
        }
        "JOBS_REDIS_POOL_SIZE" => {
            let n: usize = number(value).map_err(err)?;
            if n == 0 {
                return Err(err("must be at least 1".into()));
            }
            match &mut jobs.redis {
                Some(r) => r.pool_size = Some(n),
                None => return Err(err("no Redis is configured: set JOBS_REDIS_URL or jobs.redis.url too".into())),
            }
        }
        "JOBS_WORKER_COUNT" => {
            let n = number(value).map_err(err)?;
            check::worker_count(n).map_err(err)?;
            pool.worker_count = n;
        }
        "JOBS_MAX_RETRIES" => pool.max_retries = number(value).map_err(err)?,
        "JOBS_RETRY_DELAY" => pool.retry_delay = parse_duration(value).map_err(err)?,
        "JOBS_GRACE_PERIOD" => pool.grace_period = parse_duration(value).map_err(err)?,
        "JOBS_LEASE" => {
            let d = parse_duration(value).map_err(err)?;
            check::lease(d).map_err(err)?;
            pool.lease = d;
        }
        "JOBS_SCHEDULER_ENABLED" => jobs.scheduler.enabled = boolean(value).map_err(err)?,
        "JOBS_METRICS_ENABLED" => jobs.metrics.enabled = boolean(value).map_err(err)?,
        "JOBS_METRICS_PREFIX" => {
            check::metrics_prefix(value).map_err(err)?;
            jobs.metrics.prefix = value.to_owned();
        }
        "JOBS_HTTP_BIND" => {
            jobs.http.bind = SocketAddr::from_str(value)
                .map_err(|e| err(format!("`{value}` is not a socket address ({e}): write e.g. 127.0.0.1:8080")))?;
        }
        "JOBS_HTTP_ADMIN_TOKEN" => jobs.http.admin_token = Some(value.to_owned()),
        "JOBS_HTTP_ALLOWED_HOSTS" => {
            let hosts: Vec<String> =
                value.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
            for host in &hosts {
                check::allowed_host(host).map_err(err)?;
            }
            jobs.http.allowed_hosts = hosts;
        }
        _ => {}
    }
    Ok(())
}

/// The key a variable overrides, `None` for any other variable.
fn key_of(var: &str) -> Option<&'static str> {
    Some(match var {
        "JOBS_REDIS_URL" => "jobs.redis.url",
        "JOBS_REDIS_POOL_SIZE" => "jobs.redis.pool_size",
        "JOBS_WORKER_COUNT" => "jobs.worker_pool.worker_count",
        "JOBS_MAX_RETRIES" => "jobs.worker_pool.max_retries",
        "JOBS_RETRY_DELAY" => "jobs.worker_pool.retry_delay",
        "JOBS_GRACE_PERIOD" => "jobs.worker_pool.grace_period",
        "JOBS_LEASE" => "jobs.worker_pool.lease",
        "JOBS_SCHEDULER_ENABLED" => "jobs.scheduler.enabled",
        "JOBS_METRICS_ENABLED" => "jobs.metrics.enabled",
        "JOBS_METRICS_PREFIX" => "jobs.metrics.prefix",
        "JOBS_HTTP_BIND" => "jobs.http.bind",
        "JOBS_HTTP_ADMIN_TOKEN" => "jobs.http.admin_token",
        "JOBS_HTTP_ALLOWED_HOSTS" => "jobs.http.allowed_hosts",
        _ => return None,
    })
}

fn number<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("`{value}` is not a whole number in range ({e})"))
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{value}` is not a boolean: write true or false")),
    }
}
