//! Value checks shared by the file validation and the environment overrides.

use std::time::Duration;

pub(super) fn worker_count(n: usize) -> Result<(), String> {
    if n == 0 {
        Err("must be at least 1".into())
    } else {
        Ok(())
    }
}

pub(super) fn lease(d: Duration) -> Result<(), String> {
    if d < Duration::from_millis(100) {
        Err(format!("must be at least 100ms, not {}", humantime::format_duration(d)))
    } else {
        Ok(())
    }
}

pub(super) fn metrics_prefix(p: &str) -> Result<(), String> {
    crate::metrics::check_prefix(p).map_err(|e| e.to_string())
}

pub(super) fn redis_url(url: &str) -> Result<(), String> {
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
pub(super) fn allowed_host(entry: &str) -> Result<(), String> {
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
