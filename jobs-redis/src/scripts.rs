//! The Lua scripts, one per state change, each behind one typed wrapper, and
//! the one path every script call takes.
//!
//! Each `.lua` file under `src/scripts/` names its KEYS, ARGV and reply in
//! its header. `common.lua` (helpers) is prepended to each; the fetch script
//! is made of `promote.lua`, `reclaim.lua` and `sweep.lua` (each defining
//! one function) and `fetch.lua` (the main part that calls them), so that
//! one fetch is one atomic call.
//!
//! Every time the scripts store or compare is the server's clock (`TIME`,
//! read inside the script): clients send durations, and absolute times only
//! when the caller chose them (see `common.lua`).
//!
//! **One wrapper per script.** The module of the same name as a script
//! (`scripts/enqueue.rs` for `enqueue.lua`) holds the script, an arguments
//! struct that implements [`ScriptCall`] (its queue's [`QueueKeys`] and its
//! ARGV) and the typed reply that the script's answer is decoded into, there
//! and nowhere else: the reply codes of the Lua side (`'x'`, `'okc'`,
//! `'finished:<status>'`, ...) are matched only in these modules.
//!
//! **One invocation path.** [`invoke`](invoke::invoke) sends a call: see
//! `scripts/invoke.rs`.

use redis::Value;

use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

pub(crate) mod archive_ack;
pub(crate) mod archive_release;
pub(crate) mod archive_take;
pub(crate) mod cancel;
pub(crate) mod enqueue;
pub(crate) mod extend;
pub(crate) mod fetch;
pub(crate) mod finish;
pub(crate) mod fire_schedule;
pub(crate) mod flow_take;
pub(crate) mod groups_top;
mod invoke;
pub(crate) mod listen;
pub(crate) mod progress;
pub(crate) mod prune;
pub(crate) mod purge_dead;
pub(crate) mod read;
pub(crate) mod retry_dead;
pub(crate) mod schedule_paused;
pub(crate) mod set_breaker;
pub(crate) mod set_paused;
pub(crate) mod set_policy;

pub(crate) use invoke::{array, bytes, is_code, Args};

/// The identity of a [`ScriptCall`] whose module defines `SCRIPT` and `OP`
/// and whose struct holds its queue's keys in `keys`: the three methods
/// every such wrapper would otherwise write out the same way.
macro_rules! script_identity {
    () => {
        fn script(&self) -> &'static redis::Script {
            &SCRIPT
        }

        fn op(&self) -> &'static str {
            OP
        }

        fn keys(&self) -> &crate::keys::QueueKeys {
            self.keys
        }
    };
}
pub(crate) use script_identity;

const COMMON: &str = include_str!("scripts/common.lua");
const GROUPS: &str = include_str!("scripts/groups.lua");
const BREAKER: &str = include_str!("scripts/breaker.lua");

/// A script's whole source: the archive backlog's bound (`ARCHIVE_MAX`,
/// from [`jobs_core::ARCHIVE_BACKLOG_MAX`]), `common.lua`, `groups.lua` and
/// `breaker.lua` without the functions `parts` never call ([`prune`]),
/// followed by `parts`, hashed once.
fn source(parts: &[&str]) -> redis::Script {
    let shared = format!("local ARCHIVE_MAX = {}\n{COMMON}\n{GROUPS}\n{BREAKER}", jobs_core::ARCHIVE_BACKLOG_MAX);
    let own = parts.join("\n");
    let mut src = prune::without_unused_functions(&shared, &own);
    src.push('\n');
    src.push_str(&own);
    redis::Script::new(&src)
}

/// One typed call of one script: what it sends and how its reply is read.
///
/// The keys are always the queue's key prefix ([`QueueKeys::base`], `KEYS[1]`)
/// and, on Redis Cluster, its fence ([`QueueKeys::fence`], `KEYS[2]`); the
/// invocation path writes them, so an implementation writes only its ARGV.
pub(crate) trait ScriptCall {
    /// What the script's answer is decoded into.
    type Reply;

    /// The script (compiled and hashed once per process).
    fn script(&self) -> &'static redis::Script;

    /// The operation named in errors.
    fn op(&self) -> &'static str;

    /// The keys of the queue the script runs on.
    fn keys(&self) -> &QueueKeys;

    /// Appends the script's ARGV, in the order its header lists them.
    fn args(&mut self, out: &mut Args<'_>);

    /// The script's answer as [`Self::Reply`]: the one place its reply codes
    /// are read.
    fn decode(self, reply: Value) -> Result<Self::Reply, RedisQueueError>;
}
