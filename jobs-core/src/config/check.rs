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
