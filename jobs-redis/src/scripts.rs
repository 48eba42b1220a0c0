//! The Lua scripts, one per state change, loaded once per process.
//!
//! Each `.lua` file under `src/scripts/` names its KEYS, ARGV and return value
//! in its header. `common.lua` (helpers) is prepended to each; the fetch
//! script is made of `promote.lua`, `reclaim.lua` and `sweep.lua` (each
//! defining one function) and `fetch.lua` (the main part that calls them), so
//! that one fetch is one atomic call.
//!
//! Every time the scripts store or compare is the server's clock (`TIME`,
//! read inside the script): clients send durations, and absolute times only
//! when the caller chose them (see `common.lua`).
//!
//! `redis::Script` sends `EVALSHA` and, when the server answers `NOSCRIPT`
//! (after a restart, a failover or `SCRIPT FLUSH`), loads the script and
//! tries again.

use std::sync::LazyLock;

use redis::Script;

const COMMON: &str = include_str!("scripts/common.lua");

/// Every script, compiled (hashed) once.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) fetch: Script,
    pub(crate) finish: Script,
    pub(crate) extend: Script,
    pub(crate) cancel: Script,
    pub(crate) retry_dead: Script,
    pub(crate) purge_dead: Script,
    pub(crate) set_paused: Script,
    pub(crate) fire_schedule: Script,
    pub(crate) schedule_paused: Script,
    pub(crate) read: Script,
}

fn script(parts: &[&str]) -> Script {
    let mut src = String::from(COMMON);
    for p in parts {
        src.push('\n');
        src.push_str(p);
    }
    Script::new(&src)
}

/// The scripts of this process.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: script(&[
        include_str!("scripts/enqueue.lua"),
        "return enqueue(server_clock(), tonumber(ARGV[1]), 1, true)",
    ]),
    fetch: script(&[
        include_str!("scripts/promote.lua"),
        include_str!("scripts/reclaim.lua"),
        include_str!("scripts/sweep.lua"),
        include_str!("scripts/fetch.lua"),
    ]),
    finish: script(&[include_str!("scripts/finish.lua")]),
    extend: script(&[include_str!("scripts/extend.lua")]),
    cancel: script(&[include_str!("scripts/cancel.lua")]),
    retry_dead: script(&[include_str!("scripts/retry_dead.lua")]),
    purge_dead: script(&[include_str!("scripts/purge_dead.lua")]),
    set_paused: script(&[include_str!("scripts/set_paused.lua")]),
    fire_schedule: script(&[include_str!("scripts/enqueue.lua"), include_str!("scripts/fire_schedule.lua")]),
    schedule_paused: script(&[include_str!("scripts/schedule_paused.lua")]),
    read: script(&[include_str!("scripts/read.lua")]),
});
