//! The one path every script call takes: `FCALL` of the script's function
//! built in one buffer, its library loaded and the call sent once more when
//! Redis does not know the function (a fresh server, a failover to a
//! replica that never saw the library, `FUNCTION FLUSH`), the Cluster fence
//! key declared when the connection is to a Cluster, and the reply handed
//! to the call's own decoder.
//!
//! A server without functions (before Redis 7) or an ACL user not allowed
//! `FCALL` or `FUNCTION LOAD` gets the same script whole by `EVALSHA`
//! instead, from then on, on that connection: loaded and sent once more on
//! `NOSCRIPT` the same way. Both run the same code (see `library.rs`).
//!
//! The command is built directly (the driver's `ScriptInvocation` allocates
//! per argument), once: the retry after `NOSCRIPT` sends the same buffer.
//! Each command sent is bounded by `command_timeout` by [`Conn`] itself,
//! the way every other command of the crate is.

use jobs_core::Error;
use redis::{Cmd, ToRedisArgs, Value};

use super::library::Library;
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

/// `FCALL <function> <numkeys> <keys..> <args..>` for `call` (`EVALSHA
/// <sha> ..` when `functions` is false): the queue's key prefix, and on a
/// Cluster its fence too (see `conn.rs`).
fn command<C: ScriptCall>(call: &mut C, cluster: bool, functions: bool) -> Cmd {
    let script = call.script();
    let mut cmd = if functions {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(&script.function);
        cmd
    } else {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.eval.get_hash());
        cmd
    };
    let keys = call.keys();
    if cluster {
        cmd.arg(2).arg(keys.base()).arg(keys.fence());
    } else {
        cmd.arg(1).arg(keys.base());
    }
    call.args(&mut Args(&mut cmd));
    cmd
}

/// Whether Redis answered that it does not know the function called.
fn unknown_function(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR") && e.detail().is_some_and(|d| d.starts_with("Function not found"))
}

/// Whether Redis refused functions themselves: an unknown command (before
/// Redis 7) or one the ACL user may not run.
fn no_functions(e: &redis::RedisError) -> bool {
    let detail = e.detail().unwrap_or_default().to_ascii_lowercase();
    match e.code() {
        Some("ERR") => detail.contains("unknown command"),
        Some("NOPERM") => detail.contains("'fcall'") || detail.contains("'function"),
        _ => false,
    }
}

/// Loads `library` (replacing a library of the same name, which holds the
/// same code: the name is the code's hash); on a Cluster, on every master.
async fn load(conn: &mut Conn, library: &Library) -> redis::RedisResult<()> {
    redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(&library.code).query_async::<Value>(conn).await.map(drop)
}

/// Sends `call` on `conn` and decodes its reply: as a function, its library
/// loaded when Redis does not know it; else (see above), or when Redis is
/// out of memory and cannot load the library, by `EVALSHA`, the script
/// loaded on `NOSCRIPT`.
pub(crate) async fn invoke<C: ScriptCall>(conn: &mut Conn, mut call: C) -> Result<C::Reply, CallError> {
    let by_function = if conn.functions() { as_function(conn, &mut call).await } else { None };
    let reply = match by_function {
        Some(reply) => reply,
        None => as_script(conn, &mut call).await,
    };
    call.decode(reply.map_err(CallError::Redis)?).map_err(CallError::Reply)
}

/// `call` sent by `FCALL`, its library loaded when Redis does not know it;
/// `None` when it is to go by `EVALSHA` instead.
async fn as_function<C: ScriptCall>(conn: &mut Conn, call: &mut C) -> Option<redis::RedisResult<Value>> {
    let cmd = command(call, conn.is_cluster(), true);
    let err = match cmd.query_async::<Value>(conn).await {
        Err(e) if unknown_function(&e) => match load(conn, call.script().library).await {
            Ok(()) => return Some(cmd.query_async::<Value>(conn).await),
            // Redis out of memory refuses the load (it writes), not a
            // script: a call that only reads still runs, by EVALSHA.
            Err(e) if e.code() == Some("OOM") => return None,
            Err(e) => e,
        },
        Err(e) => e,
        ok => return Some(ok),
    };
    // The call or the load refused as a command: by EVALSHA from now on.
    if no_functions(&err) {
        conn.without_functions();
        return None;
    }
    Some(Err(err))
}

/// `call` sent by `EVALSHA`, the script loaded on `NOSCRIPT`.
async fn as_script<C: ScriptCall>(conn: &mut Conn, call: &mut C) -> redis::RedisResult<Value> {
    let cmd = command(call, conn.is_cluster(), false);
    match cmd.query_async::<Value>(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            call.script().eval.load_async(conn).await?;
            cmd.query_async::<Value>(conn).await
        }
        other => other,
    }
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
        fn script(&self) -> &'static crate::scripts::Script {
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
        for functions in [true, false] {
            let got = args(&command(&mut probe, false, functions));
            assert_eq!(got[0], if functions { &b"FCALL"[..] } else { b"EVALSHA" });
            let called = if functions {
                crate::scripts::set_paused::SCRIPT.function.clone()
            } else {
                crate::scripts::set_paused::SCRIPT.eval.get_hash().to_owned()
            };
            assert_eq!(got[1], called.as_bytes());
            assert_eq!(got[2..], [b"1".to_vec(), b"jobs:{email}:".to_vec(), b"x".to_vec(), b"\x00y".to_vec()]);
        }
    }

    #[test]
    fn a_cluster_gets_the_fence_key_of_the_same_slot() {
        let mut probe = Probe(QueueKeys::new("jobs", "email"));
        let got = args(&command(&mut probe, true, true));
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
