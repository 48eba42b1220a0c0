//! From a [`RedisConfig`] to connections: which server or Cluster, with
//! which credentials and certificates, checked once at connect so that a
//! wrong address, password or certificate is reported there.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
#[cfg(feature = "cluster")]
use redis::cluster::ClusterClientBuilder;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError};

use crate::config::{RedisConfig, TlsFiles};
use crate::conn::Conn;
use crate::error::{mask_url, Redactor, RedisQueueError};

/// Where the queue's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server, by URL.
    Single(String),
    /// A Redis Cluster, by the URLs of some of its nodes.
    Cluster(Vec<String>),
}

impl Target {
    /// `nodes` when given, else `url`; `redis+cluster://a:1,b:2` is a
    /// Cluster of `redis://a:1` and `redis://b:2` (credentials and query
    /// copied to each).
    pub(crate) fn of(config: &RedisConfig) -> Result<Target, String> {
        if !config.nodes.is_empty() {
            let nodes = config
                .nodes
                .iter()
                .map(|n| if n.contains("://") { n.clone() } else { format!("redis://{n}") })
                .collect();
            return Ok(Target::Cluster(nodes));
        }
        let url = config.url.as_str();
        let Some((scheme, rest)) = url.split_once("://") else { return Ok(Target::Single(url.to_owned())) };
        let scheme = match scheme {
            "redis+cluster" | "redis-cluster" => "redis",
            "rediss+cluster" | "rediss-cluster" => "rediss",
            _ => return Ok(Target::Single(url.to_owned())),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!("{scheme}://{userinfo}{}{tail}", h.trim()))
            .collect();
        if nodes.is_empty() {
            return Err("a Cluster URL names no node: write redis+cluster://host:port[,host:port...]".to_owned());
        }
        Ok(Target::Cluster(nodes))
    }

    /// Every URL, for masking and redaction.
    pub(crate) fn urls(&self) -> Vec<&str> {
        match self {
            Target::Single(u) => vec![u.as_str()],
            Target::Cluster(n) => n.iter().map(String::as_str).collect(),
        }
    }
}

/// What [`open`] makes.
pub(crate) struct Opened {
    /// The multiplexed connections (`pool_size` of them).
    pub(crate) conns: Vec<Conn>,
    /// Clients that open the waiters' pub/sub connections: the server, or
    /// each Cluster node given (a `PUBLISH` reaches every node of a Cluster,
    /// so a waiter subscribes on any one and moves to the next on failure).
    pub(crate) pubsub: Vec<Client>,
    /// Opens the parked fetchers' connections (see [`Blocking`]).
    pub(crate) blocking: Blocking,
}

/// Opens a connection of its own for a parked fetcher's `BLPOP`, which
/// holds the connection while it waits (so never one of the shared ones).
/// (Boxed: one is kept per queue handle, and the clients are large.)
#[derive(Clone)]
pub(crate) enum Blocking {
    /// The server's client.
    Single(Box<Client>),
    /// The Cluster's client: the command goes to the master of its key.
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// Connects, failing at once on a wrong address, password or certificate.
pub(crate) async fn open(
    config: &RedisConfig,
    target: &Target,
    redactor: &Redactor,
) -> Result<Opened, RedisQueueError> {
    let shown = mask_url(&config.url);
    let shown = match target {
        Target::Single(_) => shown,
        Target::Cluster(n) if !config.nodes.is_empty() => n.iter().map(|u| mask_url(u)).collect::<Vec<_>>().join(","),
        Target::Cluster(_) => shown,
    };
    let config_err = |reason: String| RedisQueueError::Config { url: shown.clone(), reason };
    let connect_err =
        |e: RedisError| RedisQueueError::Connect { url: shown.clone(), reason: connect_reason(redactor, &e) };
    check_features(config, target)?;
    let certs = tls_certificates(&config.tls).map_err(config_err)?;
    let clients = target
        .urls()
        .into_iter()
        .map(|u| client(u, certs.as_ref()).map_err(|e| config_err(redactor.clean(&e.to_string()))))
        .collect::<Result<Vec<Client>, _>>()?;
    let n = config.pool_size.max(1);
    let mut conns = Vec::with_capacity(n);
    let blocking = match target {
        Target::Single(_) => {
            let client = &clients[0];
            // One plain attempt first: a wrong address or password is
            // reported now, rather than after the manager's back-off.
            let probe_config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.command_timeout));
            let mut probe =
                client.get_multiplexed_async_connection_with_config(&probe_config).await.map_err(connect_err)?;
            redis::cmd("PING").query_async::<()>(&mut probe).await.map_err(connect_err)?;
            drop(probe);
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.command_timeout))
                // A few attempts, 1 s apart at most, per reconnection; a
                // call that finds them all failed gets the error (bounded by
                // command_timeout in any case) and the next call starts over.
                .set_number_of_retries(4)
                .set_max_delay(Duration::from_secs(1));
            for _ in 0..n {
                let c = ConnectionManager::new_with_config(client.clone(), manager_config.clone())
                    .await
                    .map_err(connect_err)?;
                conns.push(Conn::single(c, config.command_timeout));
            }
            Blocking::Single(Box::new(client.clone()))
        }
        // Refused by check_features already.
        #[cfg(not(feature = "cluster"))]
        Target::Cluster(_) => return Err(RedisQueueError::feature("cluster", "a Redis Cluster")),
        #[cfg(feature = "cluster")]
        Target::Cluster(nodes) => {
            let builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                .tcp_settings(tcp_settings())
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.command_timeout)
                // Redirections and retries (TRYAGAIN while a slot migrates, a
                // node that restarts), 20 ms to 500 ms apart, bounded by
                // command_timeout. (Not more than 24: the driver computes
                // 2^retry * 20 ms, which overflows past 58.)
                .retries(24)
                .min_retry_wait(20)
                .max_retry_wait(500)
                .retry_wait_formula(20, 2);
            #[cfg(feature = "tls")]
            let builder = match &certs {
                Some(c) => builder.certs(c.clone()),
                None => builder,
            };
            let cluster = builder.build().map_err(|e| config_err(redactor.clean(&e.to_string())))?;
            for _ in 0..n {
                let mut c =
                    Conn::cluster(cluster.get_async_connection().await.map_err(connect_err)?, config.command_timeout);
                redis::cmd("PING").query_async::<()>(&mut c).await.map_err(connect_err)?;
                conns.push(c);
            }
            Blocking::Cluster(Box::new(cluster))
        }
    };
    Ok(Opened { conns, pubsub: clients, blocking })
}

impl Blocking {
    /// A connection of its own.
    pub(crate) async fn open(&self, connect_timeout: Duration) -> redis::RedisResult<BlockingConn> {
        match self {
            Blocking::Single(client) => {
                // No response timeout: the caller bounds each call by its wait.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(None);
                Ok(BlockingConn::Single(client.get_multiplexed_async_connection_with_config(&config).await?))
            }
            #[cfg(feature = "cluster")]
            Blocking::Cluster(cluster) => Ok(BlockingConn::Cluster(cluster.get_async_connection().await?)),
        }
    }
}

/// A parked fetcher's connection (see [`Blocking`]).
pub(crate) enum BlockingConn {
    Single(redis::aio::MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl BlockingConn {
    /// `BLPOP key` for up to `wait` (at least 10 ms: 0 would block for
    /// ever): the value popped, or `None` when none came.
    pub(crate) async fn blpop(&mut self, key: &str, wait: Duration) -> redis::RedisResult<Option<Vec<u8>>> {
        let secs = format!("{:.3}", wait.max(Duration::from_millis(10)).as_secs_f64());
        let cmd = redis::cmd("BLPOP").arg(key).arg(secs).clone();
        let popped: Option<(Vec<u8>, Vec<u8>)> = match self {
            BlockingConn::Single(c) => cmd.query_async(c).await?,
            #[cfg(feature = "cluster")]
            BlockingConn::Cluster(c) => cmd.query_async(c).await?,
        };
        Ok(popped.map(|(_, v)| v))
    }
}

/// Refuses, with the feature's name, what this build cannot do: `rediss://`
/// and TLS files without `tls`, a Cluster without `cluster`, MessagePack
/// payloads without `msgpack`.
fn check_features(config: &RedisConfig, target: &Target) -> Result<(), RedisQueueError> {
    if !cfg!(feature = "tls") {
        if target.urls().iter().any(|u| u.starts_with("rediss")) {
            return Err(RedisQueueError::feature("tls", "a `rediss://` URL"));
        }
        if config.tls != TlsFiles::default() {
            return Err(RedisQueueError::feature("tls", "the `tls` setting (certificate files)"));
        }
    }
    if !cfg!(feature = "cluster") && matches!(target, Target::Cluster(_)) {
        let what = if config.nodes.is_empty() { "a `redis+cluster://` URL" } else { "the `nodes` setting" };
        return Err(RedisQueueError::feature("cluster", what));
    }
    crate::codec::check_available(config.payload_format)
}

/// The driver's message, password removed, with wrong credentials named as
/// such.
fn connect_reason(redactor: &Redactor, e: &RedisError) -> String {
    let text = redactor.clean(&e.to_string());
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || ["WRONGPASS", "NOAUTH", "invalid password", "invalid username-password"].iter().any(|m| text.contains(m));
    if auth {
        format!("authentication failed: wrong user name or password ({text})")
    } else {
        text
    }
}

#[cfg(feature = "tls")]
type Certs = redis::TlsCertificates;
#[cfg(not(feature = "tls"))]
type Certs = ();

/// The PEM files, read; `None` when none is set.
fn tls_certificates(files: &TlsFiles) -> Result<Option<Certs>, String> {
    if files == &TlsFiles::default() {
        return Ok(None);
    }
    #[cfg(not(feature = "tls"))]
    {
        // Refused by check_features, with the feature's name.
        Err("TLS files are set but jobs-redis was built without its `tls` feature".to_owned())
    }
    #[cfg(feature = "tls")]
    {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let client_tls = match (&files.cert_file, &files.key_file) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig { client_cert: read(c)?, client_key: read(k)? }),
            (None, None) => None,
            _ => return Err("tls.cert_file and tls.key_file go together".to_owned()),
        };
        let root_cert = files.ca_file.as_deref().map(read).transpose()?;
        Ok(Some(redis::TlsCertificates { client_tls, root_cert }))
    }
}

/// The TCP settings of every connection: `TCP_NODELAY`, so that a command
/// the driver writes in more than one piece is not held back by Nagle's
/// algorithm until the server's delayed acknowledgement of the first piece
/// (up to 40 ms on Linux); Redis sets it on its side.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

fn client(url: &str, certs: Option<&Certs>) -> redis::RedisResult<Client> {
    let info = url.into_connection_info()?.set_tcp_settings(tcp_settings());
    match certs {
        #[cfg(feature = "tls")]
        Some(c) if url.starts_with("rediss") => Client::build_with_tls(info, c.clone()),
        _ => Client::open(info),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::of(&RedisConfig::new(url)).unwrap()
    }

    #[cfg(not(feature = "cluster"))]
    #[test]
    fn a_cluster_needs_the_cluster_feature() {
        let c = RedisConfig::new("redis+cluster://u:secret@a:7000,b:7001");
        let e = check_features(&c, &Target::of(&c).unwrap()).unwrap_err();
        assert!(matches!(e, RedisQueueError::FeatureDisabled { feature: "cluster", .. }), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_tls_feature() {
        let c = RedisConfig::new("rediss://h:6380");
        let e = check_features(&c, &Target::of(&c).unwrap()).unwrap_err();
        assert!(matches!(e, RedisQueueError::FeatureDisabled { feature: "tls", .. }), "{e}");
        let c = RedisConfig {
            tls: TlsFiles { ca_file: Some("/etc/ca.pem".into()), ..TlsFiles::default() },
            ..RedisConfig::new("redis://h")
        };
        let e = check_features(&c, &Target::of(&c).unwrap()).unwrap_err();
        assert!(e.to_string().contains("`tls` feature"), "{e}");
    }

    #[test]
    fn what_this_build_has_is_accepted() {
        let c = RedisConfig::new("redis://h:6379");
        assert!(check_features(&c, &Target::of(&c).unwrap()).is_ok());
    }

    #[test]
    fn cluster_urls_name_every_node() {
        assert_eq!(target("redis://h:1/2"), Target::Single("redis://h:1/2".into()));
        assert_eq!(
            target("redis+cluster://u:p@a:7000,b:7001/?protocol=resp3"),
            Target::Cluster(vec![
                "redis://u:p@a:7000/?protocol=resp3".into(),
                "redis://u:p@b:7001/?protocol=resp3".into()
            ])
        );
        assert_eq!(target("rediss+cluster://a:1"), Target::Cluster(vec!["rediss://a:1".into()]));
        assert!(Target::of(&RedisConfig::new("redis+cluster://")).is_err());
        let c = RedisConfig { nodes: vec!["a:1".into(), "rediss://b:2".into()], ..RedisConfig::new("redis://x") };
        assert_eq!(Target::of(&c).unwrap(), Target::Cluster(vec!["redis://a:1".into(), "rediss://b:2".into()]));
    }
}
