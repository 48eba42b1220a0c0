//! The Lua scripts, one per state change, each behind one typed wrapper, and
//! the one path every script call takes.
//!
//! Each `.lua` file under `src/scripts/` names its KEYS, ARGV and reply in
//! its header. `common.lua` (helpers) is prepended to each; the fetch script
//! calls `fetch.lua`'s function, which calls those of `promote.lua`,
//! `reclaim.lua` and `sweep.lua`, so that one fetch is one atomic call; an
//! enqueue calls it too, to hand jobs to a parked fetcher.
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

use std::sync::LazyLock;

use redis::Value;

use crate::error::RedisQueueError;
use crate::keys::QueueKeys;
use library::{Entry, Library};

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
pub(crate) mod library;
pub(crate) mod listen;
#[cfg(test)]
mod lua_locals;
pub(crate) mod progress;
pub(crate) mod prune;
pub(crate) mod purge_dead;
pub(crate) mod read;
pub(crate) mod retry_dead;
pub(crate) mod schedule_paused;
pub(crate) mod set_breaker;
pub(crate) mod set_paused;
pub(crate) mod set_policy;
pub(crate) mod unpark;

pub(crate) use invoke::{array, bytes, is_code, Args};

/// The identity of a [`ScriptCall`] whose module defines `SCRIPT` and `OP`
/// and whose struct holds its queue's keys in `keys`: the three methods
/// every such wrapper would otherwise write out the same way.
macro_rules! script_identity {
    () => {
        fn script(&self) -> &'static crate::scripts::Script {
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
/// Commands over many items (`chunked`, `hset_many`): the start of both
/// sets' shared parts.
pub(crate) const MANY: &str = include_str!("scripts/many.lua");
const GROUPS: &str = include_str!("scripts/groups.lua");
const BREAKER: &str = include_str!("scripts/breaker.lua");
/// Definitions some scripts share beyond the common files: the fetch's
/// housekeeping (a function per file), the fetch (an enqueue fetches for a
/// parked fetcher) and the enqueue (a schedule's tick enqueues too).
const DEFINITIONS: [&str; 5] = [
    include_str!("scripts/promote.lua"),
    include_str!("scripts/reclaim.lua"),
    include_str!("scripts/sweep.lua"),
    include_str!("scripts/fetch.lua"),
    include_str!("scripts/enqueue.lua"),
];

/// Every queue script: its name (its module's), its own code, and whether
/// it only reads.
const QUEUE_SCRIPTS: &[(&str, &str, bool)] = &[
    ("archive_ack", include_str!("scripts/archive_ack.lua"), false),
    ("archive_release", include_str!("scripts/archive_release.lua"), false),
    ("archive_take", include_str!("scripts/archive_take.lua"), false),
    ("cancel", include_str!("scripts/cancel.lua"), false),
    ("enqueue", "return enqueue(server_clock(), tonumber(ARGV[1]), 3, true, ARGV[2], ARGV[3])", false),
    ("extend", include_str!("scripts/extend.lua"), false),
    (
        "fetch",
        "return (fetch(server_clock(), ARGV, true, ARGV[11] and ARGV[11] ~= '' and { ARGV[11], ARGV[12] } or nil))",
        false,
    ),
    ("finish", include_str!("scripts/finish.lua"), false),
    ("fire_schedule", include_str!("scripts/fire_schedule.lua"), false),
    ("flow_take", include_str!("scripts/flow_take.lua"), false),
    ("groups_top", include_str!("scripts/groups_top.lua"), false),
    ("listen", include_str!("scripts/listen.lua"), false),
    ("progress", include_str!("scripts/progress.lua"), false),
    ("purge_dead", include_str!("scripts/purge_dead.lua"), false),
    ("read", include_str!("scripts/read.lua"), true),
    ("retry_dead", include_str!("scripts/retry_dead.lua"), false),
    ("schedule_paused", include_str!("scripts/schedule_paused.lua"), false),
    ("set_breaker", include_str!("scripts/set_breaker.lua"), false),
    ("set_paused", include_str!("scripts/set_paused.lua"), false),
    ("set_policy", include_str!("scripts/set_policy.lua"), false),
    ("unpark", include_str!("scripts/unpark.lua"), false),
];

/// The queue scripts, over what each starts with: the archive backlog's
/// bound (`ARCHIVE_MAX`, from [`jobs_core::ARCHIVE_BACKLOG_MAX`]),
/// `many.lua`, the common files and the shared definitions.
pub(crate) static QUEUE: LazyLock<ScriptSet> = LazyLock::new(|| {
    let shared = format!(
        "local ARCHIVE_MAX = {}\n{MANY}\n{COMMON}\n{GROUPS}\n{BREAKER}\n{}",
        jobs_core::ARCHIVE_BACKLOG_MAX,
        DEFINITIONS.join("\n")
    );
    ScriptSet::new("jobs", shared, QUEUE_SCRIPTS)
});

/// Scripts over one shared part: their library, and each one whole.
pub(crate) struct ScriptSet {
    /// What every script of the set starts with.
    pub(crate) shared: String,
    /// Each script's name, own code, and whether it only reads.
    pub(crate) scripts: &'static [(&'static str, &'static str, bool)],
    /// The set as one function library.
    pub(crate) library: Library,
}

impl ScriptSet {
    /// The set of `scripts` over `shared`, its library named `<prefix>_<hash>`.
    pub(crate) fn new(prefix: &str, shared: String, scripts: &'static [(&'static str, &'static str, bool)]) -> Self {
        let entries: Vec<Entry<'_>> =
            scripts.iter().map(|&(name, body, read_only)| Entry { name, body, read_only }).collect();
        let library = Library::new(prefix, &shared, &entries);
        ScriptSet { shared, scripts, library }
    }

    /// Script `name` of the set.
    ///
    /// # Panics
    ///
    /// When `name` is not in the set: each caller names its own script, and
    /// the tests build every one (`every_queue_script_builds`, and every
    /// flow test calls each flow script).
    pub(crate) fn script(&'static self, name: &str) -> Script {
        #[allow(clippy::expect_used)] // A name missing from the set is a bug that every test meets.
        let &(_, body, _) = self.scripts.iter().find(|(n, ..)| *n == name).expect("a script of the set");
        let src = whole_script(&self.shared, body);
        Script { eval: redis::Script::new(&src), function: self.library.function(name), library: &self.library }
    }
}

/// A script sent whole (`EVALSHA`): the shared part it calls, then its own
/// code as a function of its own. Lua 5.1 gives a function at most 200
/// locals, counted where the most are in scope; as a function, the code
/// has its 200 apart from the shared part's, as it has in the library
/// (`lib_run.<name>`), so a script that loads as a function loads whole.
pub(crate) fn whole_script(shared: &str, body: &str) -> String {
    let mut src = prune::without_unused_functions(shared, body);
    src.push_str("\nreturn (function()\n");
    src.push_str(body);
    src.push_str("\nend)()\n");
    src
}

/// One script, callable both ways: as a function of its library (`FCALL`,
/// Redis 7, the shared functions built once per server) and as a whole
/// script (`EVALSHA`, for a server or an ACL user without functions).
pub(crate) struct Script {
    /// The whole script: the shared part without the functions this one
    /// never calls ([`prune`]), then its own code.
    pub(crate) eval: redis::Script,
    /// Its function's name in `library`.
    pub(crate) function: String,
    /// The library that registers it.
    pub(crate) library: &'static Library,
}

/// The queue script `name` (one of [`QUEUE_SCRIPTS`]).
pub(crate) fn queue_script(name: &str) -> Script {
    QUEUE.script(name)
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
    fn script(&self) -> &'static Script;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module's script is in the list (so `queue_script` finds it),
    /// and registered once in the library under its module's name.
    #[test]
    fn every_queue_script_builds() {
        let scripts: [(&str, &Script); 21] = [
            ("archive_ack", &archive_ack::SCRIPT),
            ("archive_release", &archive_release::SCRIPT),
            ("archive_take", &archive_take::SCRIPT),
            ("cancel", &cancel::SCRIPT),
            ("enqueue", &enqueue::SCRIPT),
            ("extend", &extend::SCRIPT),
            ("fetch", &fetch::SCRIPT),
            ("finish", &finish::SCRIPT),
            ("fire_schedule", &fire_schedule::SCRIPT),
            ("flow_take", &flow_take::SCRIPT),
            ("groups_top", &groups_top::SCRIPT),
            ("listen", &listen::SCRIPT),
            ("progress", &progress::SCRIPT),
            ("purge_dead", &purge_dead::SCRIPT),
            ("read", &read::SCRIPT),
            ("retry_dead", &retry_dead::SCRIPT),
            ("schedule_paused", &schedule_paused::SCRIPT),
            ("set_breaker", &set_breaker::SCRIPT),
            ("set_paused", &set_paused::SCRIPT),
            ("set_policy", &set_policy::SCRIPT),
            ("unpark", &unpark::SCRIPT),
        ];
        assert_eq!(scripts.len(), QUEUE_SCRIPTS.len());
        for (name, script) in scripts {
            assert_eq!(script.function, format!("{}_{name}", QUEUE.library.name));
            let registered = format!("function_name = '{}'", script.function);
            assert_eq!(QUEUE.library.code.matches(&registered).count(), 1, "{name}");
        }
    }

    /// Lua 5.1 gives a function at most 200 locals in scope at once
    /// (`LUAI_MAXVARS`), and Redis refuses a library or a script past that
    /// when it loads it. Checked here, over every function of each library
    /// and of each script sent whole, where the message says what to do,
    /// rather than by every test that loads them.
    #[test]
    fn every_function_keeps_within_luas_200_locals() {
        for set in [&*QUEUE, &*crate::flows::SCRIPTS] {
            let (n, line) = lua_locals::max_active_locals(&set.library.code);
            assert!(
                n <= 200,
                "library {}: {n} locals in scope at its line {line} (Lua allows 200): move a constant or a cache of a \
                 shared file into the only function that uses it, or a block's work into a function",
                set.library.name
            );
            for &(name, body, _) in set.scripts {
                let (n, line) = lua_locals::max_active_locals(&whole_script(&set.shared, body));
                assert!(n <= 200, "script {name}, sent whole: {n} locals in scope at its line {line} (Lua allows 200)");
            }
        }
    }
}
