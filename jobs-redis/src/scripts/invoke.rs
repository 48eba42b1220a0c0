//! The one path every script call takes: `EVALSHA` built in one buffer,
//! the script loaded and the call sent once more when Redis answers
//! `NOSCRIPT` (after a restart, a failover or `SCRIPT FLUSH`), the Cluster
//! fence key declared when the connection is to a Cluster, and the reply
//! handed to the call's own decoder.
//!
//! The command is built directly (the driver's `ScriptInvocation` allocates
//! per argument), once: the retry after `NOSCRIPT` sends the same buffer.
//! Each command sent is bounded by `command_timeout` by [`Conn`] itself,
//! the way every other command of the crate is.

use jobs_core::Error;
use redis::{Cmd, ToRedisArgs, Value};

use super::ScriptCall;
use crate::conn::Conn;
use crate::error::RedisQueueError;
use crate::queue::RedisQueue;

/// The ARGV of a script call being built.
pub(crate) struct Args<'c>(&'c mut Cmd);

impl Args<'_> {
    /// Appends one argument.
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.0.arg(arg);
        self
    }
}

/// Why a call failed: the driver's error (to be redacted by the caller, who
/// knows the password), or an answer the call's decoder refused.
pub(crate) enum CallError {
    /// Sending failed or Redis answered with an error.
    Redis(redis::RedisError),
    /// The answer is not what the script returns.
    Reply(RedisQueueError),
}

/// `EVALSHA <sha> <numkeys> <keys..> <args..>` for `call`: the queue's key
/// prefix, and on a Cluster its fence too (see `conn.rs`).
fn command<C: ScriptCall>(call: &mut C, cluster: bool) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(call.script().get_hash());
    let keys = call.keys();
    if cluster {
        cmd.arg(2).arg(keys.base()).arg(keys.fence());
    } else {
        cmd.arg(1).arg(keys.base());
    }
    call.args(&mut Args(&mut cmd));
    cmd
}

/// Sends `call` on `conn` and decodes its reply; on `NOSCRIPT`, loads the
/// script and sends the call once more.
pub(crate) async fn invoke<C: ScriptCall>(conn: &mut Conn, mut call: C) -> Result<C::Reply, CallError> {
    let cmd = command(&mut call, conn.is_cluster());
    let reply = match cmd.query_async::<Value>(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            call.script().load_async(conn).await.map_err(CallError::Redis)?;
            cmd.query_async::<Value>(conn).await
        }
        other => other,
    };
    call.decode(reply.map_err(CallError::Redis)?).map_err(CallError::Reply)
}

impl RedisQueue {
    /// [`invoke`] on one of this handle's connections, with the driver's
    /// errors turned into this crate's (password removed).
    pub(crate) async fn invoke<C: ScriptCall>(&self, call: C) -> Result<C::Reply, Error> {
        let op = call.op();
        invoke(&mut self.conn(), call).await.map_err(|e| match e {
            CallError::Redis(e) => self.command_error(op, &e),
            CallError::Reply(e) => e.into(),
        })
    }
}

/// A reply item as bytes (nil: empty).
pub(crate) fn bytes(op: &'static str, v: Value) -> Result<Vec<u8>, RedisQueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(RedisQueueError::reply(op, format!("expected a string, got {other:?}"))),
    }
}

/// Whether a reply item is the status code `code` (a Lua string).
pub(crate) fn is_code(v: &Value, code: &[u8]) -> bool {
    match v {
        Value::BulkString(b) => b == code,
        Value::SimpleString(s) => s.as_bytes() == code,
        _ => false,
    }
}

/// A reply that is an array.
pub(crate) fn array(op: &'static str, v: Value) -> Result<Vec<Value>, RedisQueueError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(RedisQueueError::reply(op, format!("expected an array, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::QueueKeys;

    /// A call with two arguments, to look at the command built.
    struct Probe(QueueKeys);

    impl ScriptCall for Probe {
        type Reply = ();
        fn script(&self) -> &'static redis::Script {
            &crate::scripts::set_paused::SCRIPT
        }
        fn op(&self) -> &'static str {
            "probe"
        }
        fn keys(&self) -> &QueueKeys {
            &self.0
        }
        fn args(&mut self, out: &mut Args<'_>) {
            out.arg("x").arg(&b"\x00y"[..]);
        }
        fn decode(self, _: Value) -> Result<(), RedisQueueError> {
            Ok(())
        }
    }

    fn args(cmd: &Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => b"<cursor>".to_vec(),
            })
            .collect()
    }

    #[test]
    fn one_server_gets_the_queue_prefix_as_the_only_key() {
        let mut probe = Probe(QueueKeys::new("jobs", "email"));
        let got = args(&command(&mut probe, false));
        assert_eq!(got[0], b"EVALSHA");
        assert_eq!(got[2..], [b"1".to_vec(), b"jobs:{email}:".to_vec(), b"x".to_vec(), b"\x00y".to_vec()]);
    }

    #[test]
    fn a_cluster_gets_the_fence_key_of_the_same_slot() {
        let mut probe = Probe(QueueKeys::new("jobs", "email"));
        let got = args(&command(&mut probe, true));
        assert_eq!(
            got[2..],
            [
                b"2".to_vec(),
                b"jobs:{email}:".to_vec(),
                b"jobs:{email}:fence".to_vec(),
                b"x".to_vec(),
                b"\x00y".to_vec()
            ]
        );
        assert_eq!(crate::keys::key_slot(&got[3]), crate::keys::key_slot(&got[4]));
    }
}
