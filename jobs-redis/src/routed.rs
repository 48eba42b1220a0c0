//! Opening what a configuration describes: one [`RedisQueue`], or a
//! [`QueueRouter`] over several Redis servers when `routes` sends queues to
//! other servers.

use std::collections::BTreeMap;
use std::sync::Arc;

use jobs_core::{Error, QueueRouter, SharedQueue};

use crate::config::RedisConfig;
use crate::error::{mask_url, RedisQueueError};
use crate::queue::RedisQueue;

/// The name of the server of `url`/`nodes` in a router (the default backend).
pub const DEFAULT_BACKEND: &str = "default";

/// Opens the queues `config` describes: a [`RedisQueue`] when no
/// [`routes`](RedisConfig::routes) are set, else the router of
/// [`RedisQueue::router`]. What the command line and an application that
/// reads the configuration call.
///
/// ```no_run
/// # async fn demo() -> Result<(), jobs_core::Error> {
/// use jobs_redis::RedisConfig;
/// let mut config = RedisConfig::new("redis://127.0.0.1:6379");
/// config.routes.insert("bulk".into(), "redis://127.0.0.1:6380".into());
/// let queue = jobs_redis::open(&config).await?; // jobs of `bulk` on :6380, the rest on :6379
/// # let _ = queue;
/// # Ok(())
/// # }
/// ```
pub async fn open(config: &RedisConfig) -> Result<SharedQueue, Error> {
    if config.routes.is_empty() {
        return Ok(Arc::new(RedisQueue::from_config(config).await?));
    }
    Ok(Arc::new(RedisQueue::router(config).await?))
}

impl RedisQueue {
    /// A [`QueueRouter`] over the server of `url` (or `nodes`), named
    /// [`DEFAULT_BACKEND`], and one connection per distinct URL of
    /// [`routes`](RedisConfig::routes), named by that URL with its password
    /// masked. Every server gets the other settings of `config`.
    ///
    /// Fails like [`RedisQueue::from_config`] for any of the servers, and
    /// when two route URLs differ only in their passwords (one server, two
    /// credentials: route those queues with one URL).
    pub async fn router(config: &RedisConfig) -> Result<QueueRouter<RedisQueue>, Error> {
        let main = RedisQueue::from_config(&RedisConfig { routes: BTreeMap::new(), ..config.clone() }).await?;
        let mut builder = QueueRouter::builder(DEFAULT_BACKEND, main);
        let mut opened: Vec<&str> = Vec::new();
        for (queue, url) in &config.routes {
            let name =
                if *url == config.url && config.nodes.is_empty() { DEFAULT_BACKEND.to_owned() } else { mask_url(url) };
            if name != DEFAULT_BACKEND && !opened.contains(&url.as_str()) {
                let server =
                    RedisConfig { url: url.clone(), nodes: Vec::new(), routes: BTreeMap::new(), ..config.clone() };
                builder = builder.backend(name.clone(), RedisQueue::from_config(&server).await?);
                opened.push(url);
            }
            builder = builder.route(queue.clone(), name);
        }
        builder
            .build()
            .map_err(|e| RedisQueueError::Config { url: mask_url(&config.url), reason: e.to_string() }.into())
    }
}
