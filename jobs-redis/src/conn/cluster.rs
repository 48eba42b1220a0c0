//! Redis Cluster's part of [`Conn`](super::Conn): pipelines split by slot.
//!
//! The driver refuses a pipeline that spans slots, so the commands are
//! grouped by the slot of their key (their first argument), the groups sent
//! concurrently, and the replies put back in order. A pipeline was never
//! atomic; nothing is lost by the split. A command answered `ASK`, `MOVED`
//! or `TRYAGAIN` inside a pipeline (which the driver does not follow there)
//! is sent again on its own.

use std::collections::HashMap;

use futures_util::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::{Arg, Cmd, Pipeline, RedisError, Value};

use crate::keys::key_slot;

/// Sends each slot's commands as one pipeline, concurrently, and returns the
/// replies in the pipeline's order.
pub(super) async fn split_by_slot(c: &ClusterConnection, pipeline: &Pipeline) -> redis::RedisResult<Vec<Value>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routing_key_is_the_first_argument() {
        assert_eq!(cmd_key(redis::cmd("HGET").arg("jobs:{q}:meta").arg("paused")), Some(&b"jobs:{q}:meta"[..]));
        assert_eq!(cmd_key(&redis::cmd("PING")), None);
    }
}
