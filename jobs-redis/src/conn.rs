//! The connections of a [`RedisQueue`](crate::RedisQueue): one server or a
//! Redis Cluster behind one type, [`Conn`], that the rest of the crate sends
//! commands, pipelines and scripts on without knowing which.
//!
//! - **One server**: a `ConnectionManager` (multiplexed, reconnects in the
//!   background with exponential back-off).
//! - **Cluster**: the driver's cluster connection (one multiplexed
//!   connection per node, routing by slot, following `MOVED` and `ASK`,
//!   refreshing the slot map, retrying `TRYAGAIN` and lost nodes).
//!
//! Whatever the kind, every call is bounded by `command_timeout`
//! (reconnection, redirections and retries included): while Redis is away a
//! caller gets a transient error within that time, never a hang.
//!
//! Two things are different on Cluster (feature `cluster`):
//!
//! - **Scripts declare a second key of their slot** (`<prefix>:{<queue>}:fence`,
//!   never written; the script call builder, `scripts/invoke.rs`, declares
//!   it when [`Conn::is_cluster`]). The scripts name their queue's key prefix
//!   as `KEYS[1]`, a key that never exists; while the queue's slot migrates,
//!   the old owner answers `ASK` for it and, alone, the script would run on
//!   the new owner before the queue's keys got there (and the keys moved
//!   after it would then collide with what it wrote). With two declared
//!   keys, one of them missing, Redis answers `TRYAGAIN` instead, and the
//!   script waits (the driver retries) until the slot has moved as a whole:
//!   no script ever runs on half a queue.
//! - **Pipelines are split by slot**: the driver refuses a pipeline that
//!   spans slots, so the commands are grouped by the slot of their key (their
//!   first argument), the groups sent concurrently, and the replies put back
//!   in order. A pipeline was never atomic; nothing is lost by the split. A
//!   command answered `ASK`, `MOVED` or `TRYAGAIN` inside a pipeline (which
//!   the driver does not follow there) is sent again on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
#[cfg(feature = "cluster")]
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use tokio::runtime::Handle;

#[cfg(feature = "cluster")]
mod cluster;

/// A connection to send calls on; cloning shares the sockets.
#[derive(Clone)]
pub(crate) struct Conn {
    kind: Kind,
    timeout: Duration,
    /// Set once the server refused a function call (no `FCALL` before
    /// Redis 7, or an ACL user without it): scripts go by `EVALSHA`.
    no_functions: Arc<AtomicBool>,
}

#[derive(Clone)]
enum Kind {
    /// The manager, and the runtime it was made on (see [`Conn::single`]).
    Single(ConnectionManager, Handle),
    #[cfg(feature = "cluster")]
    Cluster(ClusterConnection),
}

impl Conn {
    /// A connection to one server, bound to the current Tokio runtime.
    ///
    /// The manager reconnects inside whichever call finds the connection
    /// lost, on that call's runtime. A call from another runtime (the worker
    /// pool's heartbeat thread runs its own, without I/O) is therefore sent
    /// from a task on this one, so a reconnection never runs, and a new
    /// socket never lives, on a runtime that cannot drive it or that ends
    /// before the queue does.
    pub(crate) fn single(c: ConnectionManager, timeout: Duration) -> Self {
        Conn { kind: Kind::Single(c, Handle::current()), timeout, no_functions: Arc::default() }
    }

    /// A connection to a Cluster.
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster(c: ClusterConnection, timeout: Duration) -> Self {
        Conn { kind: Kind::Cluster(c), timeout, no_functions: Arc::default() }
    }

    /// Whether scripts are called as functions of their library (see
    /// `scripts/invoke.rs`).
    pub(crate) fn functions(&self) -> bool {
        !self.no_functions.load(Ordering::Relaxed)
    }

    /// Scripts go by `EVALSHA` from now on, on this connection and its
    /// clones.
    pub(crate) fn without_functions(&self) {
        self.no_functions.store(true, Ordering::Relaxed);
    }

    /// Whether this talks to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        match self.kind {
            Kind::Single(..) => false,
            #[cfg(feature = "cluster")]
            Kind::Cluster(_) => true,
        }
    }
}

/// The error of a call that got no answer in time: an I/O timeout, so it is
/// reported as transient.
pub(crate) fn timed_out(after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from Redis within {after:?} (command_timeout)"),
    ))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let timeout = self.timeout;
        Box::pin(async move {
            let call = async {
                match &mut self.kind {
                    Kind::Single(c, home) if !on(home) => {
                        let (mut c, cmd) = (c.clone(), cmd.clone());
                        joined(home.spawn(async move { c.req_packed_command(&cmd).await })).await
                    }
                    Kind::Single(c, _) => c.req_packed_command(cmd).await,
                    #[cfg(feature = "cluster")]
                    Kind::Cluster(c) => c.req_packed_command(cmd).await,
                }
            };
            tokio::time::timeout(timeout, call).await.map_err(|_| timed_out(timeout))?
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let timeout = self.timeout;
        Box::pin(async move {
            let call = async {
                match &mut self.kind {
                    Kind::Single(c, home) if !on(home) => {
                        let (mut c, p) = (c.clone(), pipeline.clone());
                        joined(home.spawn(async move { c.req_packed_commands(&p, offset, count).await })).await
                    }
                    Kind::Single(c, _) => c.req_packed_commands(pipeline, offset, count).await,
                    // A transaction (never sent by this crate) or a partial
                    // read: the driver's own routing.
                    #[cfg(feature = "cluster")]
                    Kind::Cluster(c) if pipeline.is_transaction() || offset != 0 || count != pipeline.len() => {
                        c.req_packed_commands(pipeline, offset, count).await
                    }
                    #[cfg(feature = "cluster")]
                    Kind::Cluster(c) => cluster::split_by_slot(c, pipeline).await,
                }
            };
            tokio::time::timeout(timeout, call).await.map_err(|_| timed_out(timeout))?
        })
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Single(c, _) => c.get_db(),
            #[cfg(feature = "cluster")]
            Kind::Cluster(_) => 0,
        }
    }
}

/// Whether the current task runs on the runtime `home`.
fn on(home: &Handle) -> bool {
    Handle::try_current().is_ok_and(|h| h.id() == home.id())
}

/// The result of a call sent from a task on the queue's runtime.
async fn joined<T>(task: tokio::task::JoinHandle<redis::RedisResult<T>>) -> redis::RedisResult<T> {
    task.await.unwrap_or_else(|e| {
        Err(RedisError::from(std::io::Error::other(format!(
            "the Tokio runtime this RedisQueue was connected on is gone ({e}): connect on a runtime that lives as \
             long as the queue"
        ))))
    })
}
