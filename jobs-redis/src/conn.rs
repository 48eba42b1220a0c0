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
//! Two things are added on Cluster:
//!
//! - **Scripts declare a second key of their slot** (`<prefix>:{<queue>}:fence`,
//!   never written). The scripts name their queue's key prefix as `KEYS[1]`,
//!   a key that never exists; while the queue's slot migrates, the old owner
//!   answers `ASK` for it and, alone, the script would run on the new owner
//!   before the queue's keys got there (and the keys moved after it would
//!   then collide with what it wrote). With two declared keys, one of them
//!   missing, Redis answers `TRYAGAIN` instead, and the script waits (the
//!   driver retries) until the slot has moved as a whole: no script ever runs
//!   on half a queue.
//! - **Pipelines are split by slot**: the driver refuses a pipeline that
//!   spans slots, so the commands are grouped by the slot of their key (their
//!   first argument), the groups sent concurrently, and the replies put back
//!   in order. A pipeline was never atomic; nothing is lost by the split. A
//!   command answered `ASK`, `MOVED` or `TRYAGAIN` inside a pipeline (which
//!   the driver does not follow there) is sent again on its own.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, Value};
use tokio::runtime::Handle;

use crate::keys::key_slot;

/// A connection to send calls on; cloning shares the sockets.
#[derive(Clone)]
pub(crate) struct Conn {
    kind: Kind,
    timeout: Duration,
}

#[derive(Clone)]
enum Kind {
    /// The manager, and the runtime it was made on (see [`Conn::single`]).
    Single(ConnectionManager, Handle),
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
        Conn { kind: Kind::Single(c, Handle::current()), timeout }
    }

    /// A connection to a Cluster.
    pub(crate) fn cluster(c: ClusterConnection, timeout: Duration) -> Self {
        Conn { kind: Kind::Cluster(c), timeout }
    }

    /// Whether this talks to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster(_))
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
                    Kind::Cluster(c) => match fenced(cmd) {
                        Some(f) => c.req_packed_command(&f).await,
                        None => c.req_packed_command(cmd).await,
                    },
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
                    Kind::Cluster(c) if pipeline.is_transaction() || offset != 0 || count != pipeline.len() => {
                        c.req_packed_commands(pipeline, offset, count).await
                    }
                    Kind::Cluster(c) => split_by_slot(c, pipeline).await,
                }
            };
            tokio::time::timeout(timeout, call).await.map_err(|_| timed_out(timeout))?
        })
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Single(c, _) => c.get_db(),
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

/// Sends each slot's commands as one pipeline, concurrently, and returns the
/// replies in the pipeline's order.
async fn split_by_slot(c: &ClusterConnection, pipeline: &Pipeline) -> redis::RedisResult<Vec<Value>> {
    let mut groups: Vec<(Pipeline, Vec<usize>)> = Vec::new();
    let mut by_slot: HashMap<u16, usize> = HashMap::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let slot = cmd_key(cmd).map(key_slot).unwrap_or(0);
        let g = *by_slot.entry(slot).or_insert_with(|| {
            groups.push((redis::pipe(), Vec::new()));
            groups.len() - 1
        });
        groups[g].0.add_command(cmd.clone());
        groups[g].1.push(i);
    }
    let replies = try_join_all(groups.iter().map(|(p, _)| one_slot(c, p))).await?;
    let mut out = vec![Value::Nil; pipeline.len()];
    for ((_, positions), values) in groups.iter().zip(replies) {
        if values.len() != positions.len() {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "a split pipeline got a different number of replies",
            )));
        }
        for (&i, v) in positions.iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// The server error kind of a driver error, if it is one.
trait ServerKind {
    fn into_server_kind(self) -> Option<redis::ServerErrorKind>;
}

impl ServerKind for redis::ErrorKind {
    fn into_server_kind(self) -> Option<redis::ServerErrorKind> {
        match self {
            redis::ErrorKind::Server(k) => Some(k),
            _ => None,
        }
    }
}

/// Whether a reply or error says the command was not run because its slot
/// is elsewhere or migrating.
fn redirected(kind: Option<redis::ServerErrorKind>) -> bool {
    use redis::ServerErrorKind as K;
    matches!(kind, Some(K::Ask | K::Moved | K::TryAgain | K::ClusterDown))
}

/// One slot's pipeline. The driver follows redirections for single
/// commands, but hands a pipeline's `ASK`, `MOVED` or `TRYAGAIN` back as it
/// is (the slot migrating): the commands are then sent one by one, which the
/// driver redirects and retries. Every pipeline this crate sends is reads or
/// idempotent writes (`HSET`, `SET`, `ZADD`, `DEL` of the same values), so a
/// command of the group that did run may safely run again.
async fn one_slot(c: &ClusterConnection, p: &Pipeline) -> redis::RedisResult<Vec<Value>> {
    let mut c = c.clone();
    let values = match c.req_packed_commands(p, 0, p.len()).await {
        Ok(values) => values.into_iter().map(Some).collect(),
        Err(e) if redirected(e.kind().into_server_kind()) => vec![None; p.len()],
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(p.len());
    for (cmd, v) in p.cmd_iter().zip(values) {
        out.push(match v {
            Some(Value::ServerError(e)) if redirected(e.kind()) => c.req_packed_command(cmd).await?,
            Some(v) => v,
            None => c.req_packed_command(cmd).await?,
        });
    }
    Ok(out)
}

/// The argument a command is routed by: its first one after the name (the
/// key, for every command this crate sends in a pipeline).
fn cmd_key(cmd: &Cmd) -> Option<&[u8]> {
    match cmd.args_iter().nth(1)? {
        Arg::Simple(b) => Some(b),
        _ => None,
    }
}

/// `EVALSHA sha 1 <base> args..` as `EVALSHA sha 2 <base> <base>fence args..`;
/// `None` for any other command (see the module docs).
fn fenced(cmd: &Cmd) -> Option<Cmd> {
    let mut args = cmd.args_iter();
    let name = match args.next()? {
        Arg::Simple(n) => n,
        _ => return None,
    };
    if !(name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL")) {
        return None;
    }
    let (Arg::Simple(script), Arg::Simple(b"1"), Arg::Simple(key)) = (args.next()?, args.next()?, args.next()?) else {
        return None;
    };
    let mut out = redis::cmd(std::str::from_utf8(name).ok()?);
    let mut fence = key.to_vec();
    fence.extend_from_slice(b"fence");
    out.arg(script).arg(2).arg(key).arg(fence);
    for a in args {
        match a {
            Arg::Simple(b) => out.arg(b),
            _ => return None,
        };
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    fn args(cmd: &Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .map(|a| match a {
                Arg::Simple(b) => b.to_vec(),
                _ => b"<cursor>".to_vec(),
            })
            .collect()
    }

    #[test]
    fn scripts_get_a_fence_key_of_their_slot() {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("abc").arg(1).arg("jobs:{email}:").arg("x").arg(b"\x00y".as_slice());
        let f = fenced(&cmd).unwrap();
        let got = args(&f);
        assert_eq!(
            got[..5],
            [
                b"EVALSHA".to_vec(),
                b"abc".to_vec(),
                b"2".to_vec(),
                b"jobs:{email}:".to_vec(),
                b"jobs:{email}:fence".to_vec()
            ]
        );
        assert_eq!(got[5..], [b"x".to_vec(), b"\x00y".to_vec()]);
        assert_eq!(key_slot(&got[3]), key_slot(&got[4]));
        assert!(fenced(redis::cmd("HGETALL").arg("k")).is_none());
        assert!(fenced(redis::cmd("EVALSHA").arg("abc").arg(0)).is_none());
    }

    #[test]
    fn the_routing_key_is_the_first_argument() {
        assert_eq!(cmd_key(redis::cmd("HGET").arg("jobs:{q}:meta").arg("paused")), Some(&b"jobs:{q}:meta"[..]));
        assert_eq!(cmd_key(&redis::cmd("PING")), None);
    }
}
