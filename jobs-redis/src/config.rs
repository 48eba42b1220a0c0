//! [`RedisConfig`]: how to reach Redis and how long to keep finished jobs.

use std::fmt;
use std::time::Duration;

use jobs_core::Retention;
use serde::{Deserialize, Deserializer};

use crate::error::mask_url;

/// The settings of a [`RedisQueue`](crate::RedisQueue), as the `jobs.redis`
/// section of the YAML configuration holds them.
///
/// Durations are written the `humantime` way (`"30s"`, `"24h"`, `"7days"`).
/// Unknown keys are refused.
///
/// ```
/// use jobs_redis::RedisConfig;
/// let c: RedisConfig = serde_json::from_str(
///     r#"{ "url": "redis://127.0.0.1:6379", "prefix": "app", "retention": { "succeeded": "1h" } }"#,
/// ).unwrap();
/// assert_eq!(c.prefix, "app");
/// assert_eq!(c.retention.succeeded, std::time::Duration::from_secs(3600));
/// assert_eq!(c.retention.dead_max, 10_000, "unset fields keep their defaults");
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user][:password@]host[:port][/db]`, `rediss://` for TLS (when
    /// the driver is built with it) or `redis+unix:///path`. Default
    /// `redis://127.0.0.1:6379`.
    pub url: String,
    /// The first part of every key (`<prefix>:{<queue>}:...`), so several
    /// applications can share one Redis. Default `jobs`.
    pub prefix: String,
    /// How long finished jobs are kept.
    #[serde(deserialize_with = "retention")]
    pub retention: Retention,
    /// How long one command or script may take before it fails (the call
    /// then returns an error; the worker pool retries). Default 10 s.
    #[serde(deserialize_with = "duration")]
    pub command_timeout: Duration,
    /// How long connecting may take. Default 5 s.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Multiplexed connections, used in turn. One carries tens of thousands
    /// of calls per second; more help with large payloads. Default 1.
    pub pool_size: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "jobs".to_owned(),
            retention: Retention::default(),
            command_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            pool_size: 1,
        }
    }
}

impl RedisConfig {
    /// The defaults with this URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig { url: url.into(), ..Default::default() }
    }
}

/// Shows the URL with its password masked.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &mask_url(&self.url))
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

fn parse_duration<E: serde::de::Error>(s: &str) -> Result<Duration, E> {
    humantime::parse_duration(s).map_err(|e| E::custom(format!("invalid duration `{s}`: {e} (write e.g. \"30s\")")))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?)
}

/// `jobs_core::Retention` has no serde form of its own; this mirrors it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionDe {
    succeeded: Option<String>,
    dead_age: Option<String>,
    dead_max: Option<usize>,
}

fn retention<'de, D: Deserializer<'de>>(d: D) -> Result<Retention, D::Error> {
    let r = RetentionDe::deserialize(d)?;
    let def = Retention::default();
    Ok(Retention {
        succeeded: r.succeeded.as_deref().map(parse_duration).transpose()?.unwrap_or(def.succeeded),
        dead_age: r.dead_age.as_deref().map(parse_duration).transpose()?.unwrap_or(def.dead_age),
        dead_max: r.dead_max.unwrap_or(def.dead_max),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        let e = serde_json::from_str::<RedisConfig>(r#"{"urll": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("urll"), "{e}");
        let e = serde_json::from_str::<RedisConfig>(r#"{"command_timeout": "soon"}"#).unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = serde_json::from_str::<RedisConfig>(r#"{"retention": {"dead": "1h"}}"#).unwrap_err();
        assert!(e.to_string().contains("dead"), "{e}");
    }

    #[test]
    fn debug_masks_the_password() {
        let c = RedisConfig::new("redis://u:hunter2@h:6379");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://u:***@h:6379"), "{shown}");
    }
}
