//! [`RedisConfig`]: how to reach Redis (one server or a Cluster, TLS,
//! credentials) and how long to keep finished jobs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
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
    /// `redis://[user][:password@]host[:port][/db]`, `rediss://` for TLS
    /// (cargo feature `tls`), `redis+unix:///path`, or a Redis Cluster:
    /// `redis+cluster://[user][:password@]host:port[,host:port...]`
    /// (`rediss+cluster://` with TLS), naming one or more of its nodes.
    /// Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Redis Cluster nodes to start from, as URLs (`redis://[user:password@]host:port`,
    /// `rediss://` for TLS) or `host:port`. When not empty, the queue talks
    /// to a Cluster and `url` is not used. One reachable node is enough; the
    /// others are found with `CLUSTER SLOTS`. Default empty.
    pub nodes: Vec<String>,
    /// Certificates for `rediss://` (feature `tls`). Default: the system's
    /// trusted roots, no client certificate.
    pub tls: TlsFiles,
    /// The first part of every key (`<prefix>:{<queue>}:...`), so several
    /// applications can share one Redis. Default `jobs`.
    pub prefix: String,
    /// How long finished jobs are kept.
    #[serde(deserialize_with = "retention")]
    pub retention: Retention,
    /// How long one call may take, reconnecting and (on Cluster) following
    /// redirections included, before it fails with a transient error: while
    /// Redis is unreachable, producers get an error within this time, never
    /// a hang, and the worker pool retries with back-off. Default 10 s.
    #[serde(deserialize_with = "duration")]
    pub command_timeout: Duration,
    /// How long connecting may take. Default 5 s.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Multiplexed connections, used in turn. One carries tens of thousands
    /// of calls per second; more help with large payloads. Default 1.
    pub pool_size: usize,
    /// How payloads are stored (`json`, the default, or `messagepack`);
    /// both are read whatever the setting.
    pub payload_format: crate::PayloadFormat,
    /// The largest serialized payload an enqueue accepts, in bytes (default
    /// 512 KiB): a larger one is refused with a clear error.
    pub max_payload: usize,
    /// Entries of job events kept per queue while someone listens (the
    /// capped `events` stream; default 10,000): a reader that falls further
    /// behind is told it missed some.
    ///
    /// The bound counts stream entries, not events: each entry holds the
    /// events of one script call (one enqueue batch, fetch or finish
    /// batch), up to 256 of them. So the history always holds at least
    /// this many events, and more when jobs go through in batches; its
    /// memory is bounded by 256 times this many events at worst (about
    /// 30 bytes each). Counting entries is what Redis trims by, at no cost
    /// on the hot path.
    pub event_history: usize,
    /// Queues kept on other Redis servers: queue name to the URL of its
    /// server (any form `url` takes). Every other setting (prefix, TLS
    /// files, timeouts, ...) applies to those servers too; queues routed to
    /// the same URL share its connections. Empty (the default): every queue
    /// on `url`. [`open`](crate::open) builds a
    /// [`QueueRouter`](jobs_core::QueueRouter) when it is not empty.
    ///
    /// ```
    /// use jobs_redis::RedisConfig;
    /// let config = jobs_core::config::Config::from_yaml_str(
    ///     "jobs:\n  redis:\n    url: redis://10.0.0.1:6379\n    routes: { bulk: \"redis://10.0.0.2:6379\" }\n",
    /// )?;
    /// let redis = RedisConfig::from_config(&config)?.expect("a redis section");
    /// assert_eq!(redis.routes["bulk"], "redis://10.0.0.2:6379");
    /// # Ok::<(), jobs_core::config::ConfigError>(())
    /// ```
    #[serde(deserialize_with = "routes")]
    pub routes: BTreeMap<String, String>,
    /// Queues spread over several partitions: queue name to its number of
    /// partitions (1 to 1024; `"*"`: every queue, at least). Each partition is a hash slot of its own,
    /// so on Redis Cluster one queue's work spreads over several masters.
    /// Connecting raises the count stored in Redis to this (a count is
    /// never lowered: a partition taken away would strand its jobs), and
    /// every handle on the same prefix follows the stored count within a
    /// second. Empty (the default): no queue partitioned by this handle.
    /// See `docs/partitions.md` for what holds per partition and what per
    /// queue.
    ///
    /// ```
    /// use jobs_redis::RedisConfig;
    /// let config = jobs_core::config::Config::from_yaml_str(
    ///     "jobs:\n  redis:\n    url: redis://10.0.0.1:6379\n    partitions: { email: 3 }\n",
    /// )?;
    /// let redis = RedisConfig::from_config(&config)?.expect("a redis section");
    /// assert_eq!(redis.partitions["email"], 3);
    /// # Ok::<(), jobs_core::config::ConfigError>(())
    /// ```
    pub partitions: BTreeMap<String, u16>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            nodes: Vec::new(),
            tls: TlsFiles::default(),
            prefix: "jobs".to_owned(),
            retention: Retention::default(),
            command_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            pool_size: 1,
            payload_format: crate::PayloadFormat::Json,
            max_payload: jobs_core::backend::DEFAULT_MAX_PAYLOAD,
            event_history: jobs_core::backend::DEFAULT_EVENT_HISTORY,
            routes: BTreeMap::new(),
            partitions: BTreeMap::new(),
        }
    }
}

impl RedisConfig {
    /// The `jobs.redis` section of a configuration (file and environment),
    /// `None` when there is none (the application then uses the embedded
    /// `MemoryQueue`). Every key of this type can be set there; errors name
    /// the file or the environment variable and the key path, e.g.
    /// `config.yaml: jobs.redis.pool_size: invalid type: string "many", expected usize at line 3 column 16`.
    ///
    /// ```
    /// use jobs_redis::{PayloadFormat, RedisConfig};
    /// let config = jobs_core::config::Config::from_yaml_str(
    ///     "jobs:\n  redis: { url: \"redis://db:6379\", payload_format: messagepack, max_payload: 65536 }\n",
    /// )?;
    /// let redis = RedisConfig::from_config(&config)?.expect("a redis section");
    /// assert_eq!((redis.payload_format, redis.max_payload), (PayloadFormat::MessagePack, 65536));
    /// # Ok::<(), jobs_core::config::ConfigError>(())
    /// ```
    pub fn from_config(config: &jobs_core::config::Config) -> Result<Option<Self>, jobs_core::config::ConfigError> {
        config.jobs.redis.as_ref().map(Self::from_section).transpose()
    }

    /// One `jobs.redis` section as settings (see [`RedisConfig::from_config`]).
    pub fn from_section(section: &jobs_core::config::BackendSection) -> Result<Self, jobs_core::config::ConfigError> {
        section.parse()
    }

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
            .field("nodes", &self.nodes.iter().map(|n| mask_url(n)).collect::<Vec<_>>())
            .field("tls", &self.tls)
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_size", &self.pool_size)
            .field("payload_format", &self.payload_format)
            .field("max_payload", &self.max_payload)
            .field("event_history", &self.event_history)
            .field("routes", &self.routes.iter().map(|(q, u)| (q, mask_url(u))).collect::<BTreeMap<_, _>>())
            .field("partitions", &self.partitions)
            .finish()
    }
}

/// PEM files for TLS connections (`rediss://`), as the `jobs.redis.tls`
/// section holds them. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificates to trust instead of the system's roots (a private CA
    /// or a self-signed server certificate).
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain, for servers that check clients
    /// (`tls-auth-clients yes`, Redis's default). Needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

fn parse_duration<E: serde::de::Error>(s: &str) -> Result<Duration, E> {
    humantime::parse_duration(s).map_err(|e| E::custom(format!("invalid duration `{s}`: {e} (write e.g. \"30s\")")))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?)
}

/// The URL schemes `url` takes, for the routes' URLs.
const SCHEMES: [&str; 5] = ["redis://", "rediss://", "redis+unix://", "redis+cluster://", "rediss+cluster://"];

/// `routes`: every key a queue name, every value a Redis URL.
fn routes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error as _;
    let routes = BTreeMap::<String, String>::deserialize(d)?;
    for (queue, url) in &routes {
        jobs_core::validate_queue_name(queue).map_err(|e| D::Error::custom(format!("routes: {e}")))?;
        if !SCHEMES.iter().any(|s| url.starts_with(s)) {
            return Err(D::Error::custom(format!(
                "routes: queue `{queue}`: `{}` is not a Redis URL (write e.g. \"redis://10.0.0.2:6379\")",
                mask_url(url)
            )));
        }
    }
    Ok(routes)
}

/// `jobs_core::Retention` has no serde form of its own; this mirrors it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionDe {
    succeeded: Option<String>,
    dead_age: Option<String>,
    dead_max: Option<usize>,
    succeeded_max: Option<usize>,
}

fn retention<'de, D: Deserializer<'de>>(d: D) -> Result<Retention, D::Error> {
    let r = RetentionDe::deserialize(d)?;
    let def = Retention::default();
    Ok(Retention {
        succeeded: r.succeeded.as_deref().map(parse_duration).transpose()?.unwrap_or(def.succeeded),
        dead_age: r.dead_age.as_deref().map(parse_duration).transpose()?.unwrap_or(def.dead_age),
        dead_max: r.dead_max.unwrap_or(def.dead_max),
        succeeded_max: r.succeeded_max.unwrap_or(def.succeeded_max),
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
        let e = serde_json::from_str::<RedisConfig>(r#"{"tls": {"ca": "x"}}"#).unwrap_err();
        assert!(e.to_string().contains("ca"), "{e}");
    }

    #[test]
    fn nodes_and_tls_files_are_read() {
        let c: RedisConfig = serde_json::from_str(
            r#"{"nodes": ["redis://:pw@10.0.0.1:7000", "10.0.0.2:7000"], "tls": {"ca_file": "/etc/ca.pem"}}"#,
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.tls.ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw@"), "{shown}");
    }

    #[test]
    fn every_key_comes_from_the_yaml_configuration() {
        let yaml = "jobs:\n  redis:\n    url: \"rediss://:pw@10.0.0.1:6379\"\n    nodes: [\"10.0.0.2:6379\"]\n    \
                    tls: { ca_file: /etc/ca.pem }\n    pool_size: 3\n    prefix: app\n    payload_format: messagepack\n    \
                    max_payload: 4096\n    command_timeout: 2s\n    retention: { dead_max: 7 }\n";
        let config = jobs_core::config::Config::from_yaml_str(yaml).unwrap();
        let c = RedisConfig::from_config(&config).unwrap().unwrap();
        assert_eq!(c.nodes, ["10.0.0.2:6379"]);
        assert_eq!(c.tls.ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!((c.pool_size, c.prefix.as_str()), (3, "app"));
        assert_eq!((c.payload_format, c.max_payload), (crate::PayloadFormat::MessagePack, 4096));
        assert_eq!(c.command_timeout, Duration::from_secs(2));
        assert_eq!((c.retention.dead_max, c.retention.dead_age), (7, Retention::default().dead_age));
        assert_eq!(c.connect_timeout, RedisConfig::default().connect_timeout, "unset keys keep their defaults");
        assert!(
            RedisConfig::from_config(&jobs_core::config::Config::default()).unwrap().is_none(),
            "no section: no Redis"
        );
    }

    #[test]
    fn the_environment_sets_every_key_too() {
        let config = jobs_core::config::Config::default()
            .with_env_overrides([
                ("JOBS_REDIS_URL", "redis://h:6379"),
                ("JOBS_REDIS__PAYLOAD_FORMAT", "messagepack"),
                ("JOBS_REDIS__MAX_PAYLOAD", "1024"),
                ("JOBS_REDIS__RETENTION__SUCCEEDED", "1h"),
                ("JOBS_REDIS__NODES", "10.0.0.1:7000,10.0.0.2:7000"),
            ])
            .unwrap();
        let c = RedisConfig::from_config(&config).unwrap().unwrap();
        assert_eq!(
            (c.url.as_str(), c.payload_format, c.max_payload),
            ("redis://h:6379", crate::PayloadFormat::MessagePack, 1024)
        );
        assert_eq!(c.retention.succeeded, Duration::from_secs(3600));
        assert_eq!(c.nodes, ["10.0.0.1:7000", "10.0.0.2:7000"]);
    }

    #[test]
    fn section_errors_name_the_file_or_variable_and_the_key() {
        let yaml = "jobs:\n  redis:\n    url: redis://h\n    tls: { ca: x }\n";
        let config = jobs_core::config::Config::from_yaml_named(yaml, "config.yaml").unwrap();
        let e = RedisConfig::from_config(&config).unwrap_err().to_string();
        assert!(e.starts_with("config.yaml: jobs.redis.tls: unknown field `ca`"), "{e}");
        assert!(e.contains("ca_file") && e.contains("line 4"), "{e}");

        let config = jobs_core::config::Config::from_yaml_named("jobs:\n  redis: { url: redis://h }\n", "config.yaml")
            .unwrap()
            .with_env_overrides([("JOBS_REDIS__PAYLOAD_FORMAT", "xml")])
            .unwrap();
        let e = RedisConfig::from_config(&config).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "environment variable JOBS_REDIS__PAYLOAD_FORMAT (jobs.redis.payload_format): unknown variant `xml`"
            ),
            "{e}"
        );
        assert!(e.contains("messagepack"), "{e}");
    }

    #[test]
    fn routes_are_checked_and_their_errors_name_the_key() {
        let read = |routes: &str| {
            let yaml = format!("jobs:\n  redis:\n    url: redis://h\n    routes: {routes}\n");
            let config = jobs_core::config::Config::from_yaml_named(&yaml, "config.yaml").unwrap();
            RedisConfig::from_config(&config).map(|c| c.unwrap().routes)
        };
        let routes = read("{ bulk: \"redis://b:6379\", reports: \"rediss://:pw@c:6380\" }").unwrap();
        assert_eq!(routes.len(), 2);
        let e = read("{ \"no spaces\": \"redis://b\" }").unwrap_err().to_string();
        assert!(e.starts_with("config.yaml: jobs.redis: routes: invalid queue name `no spaces`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = read("{ bulk: \"http://u:hunter2@b\" }").unwrap_err().to_string();
        assert!(
            e.starts_with("config.yaml: jobs.redis: routes: queue `bulk`: `http://u:***@b` is not a Redis URL"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let config = jobs_core::config::Config::default()
            .with_env_overrides([("JOBS_REDIS_URL", "redis://h"), ("JOBS_REDIS__ROUTES__BULK", "redis://b:6379")])
            .unwrap();
        let c = RedisConfig::from_config(&config).unwrap().unwrap();
        assert_eq!(c.routes["bulk"], "redis://b:6379", "a route set from the environment");
        let e = read("[bulk]").unwrap_err().to_string();
        assert!(e.starts_with("config.yaml: jobs.redis.routes: invalid type: sequence, expected a map"), "{e}");
    }

    #[test]
    fn debug_masks_the_password() {
        let mut c = RedisConfig::new("redis+cluster://u:hunter2@h:6379,h2:6379");
        c.routes.insert("bulk".into(), "redis://:hunter2@b:6379".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis+cluster://u:***@h:6379,h2:6379"), "{shown}");
    }
}
