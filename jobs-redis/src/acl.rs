//! The least a Redis ACL user needs to run this backend: [`acl_rules`].

/// Commands the crate sends itself (Rust side), lower case.
const CLIENT_COMMANDS: &[&str] = &[
    // Scripts: FCALL, and FUNCTION LOAD when Redis does not know the
    // function; EVALSHA and SCRIPT LOAD (on NOSCRIPT) where functions are
    // refused (see scripts/invoke.rs).
    "evalsha",
    "script|load",
    "fcall",
    "function|load",
    // Reads and small writes outside scripts.
    "del",
    "hdel",
    "hget",
    "hgetall",
    "hmget",
    "hset",
    "hsetnx",
    // The open group breakers: how many, and one page of them.
    "hlen",
    "hscan",
    "llen",
    "lrange",
    "mget",
    "publish",
    "sadd",
    "set",
    "smembers",
    // Whether job events are recorded, carried to new partitions.
    "get",
    "pttl",
    "zadd",
    "zrange",
    "zrem",
    "zremrangebyscore",
    "zrevrange",
    // Job events: pages of the stream, and how it was trimmed.
    "xinfo",
    "xrange",
    // The server's clock, for the calls made outside scripts.
    "time",
    // A parked fetcher's wait on its inbox (waiter.rs).
    "blpop",
    // Connection checks and the waiters' pub/sub connections.
    "ping",
    "subscribe",
    "unsubscribe",
    // Redis Cluster: the slot map, and ASK redirections.
    "cluster|slots",
    "asking",
];

/// Commands the Lua scripts call (Redis checks them against the caller's
/// ACL too), lower case. A unit test compares this with the scripts.
const SCRIPT_COMMANDS: &[&str] = &[
    "del",
    "exists",
    "expire",
    "get",
    "hdel",
    "hexists",
    "hget",
    "hgetall",
    "hincrby",
    "hlen",
    "hmget",
    "hscan",
    "hset",
    "hsetnx",
    "incrby",
    "llen",
    "lpop",
    "lpush",
    "lrange",
    "lrem",
    "ltrim",
    "pexpire",
    "publish",
    "rpop",
    "rpush",
    "sadd",
    "set",
    "sismember",
    "smismember",
    "srem",
    "time",
    "xadd",
    "xlen",
    "xrange",
    "xrevrange",
    "xtrim",
    "zadd",
    "zcard",
    "zincrby",
    "zmscore",
    "zpopmin",
    "zrange",
    "zrangebyscore",
    "zrem",
    "zremrangebyscore",
    "zrevrange",
    "zscore",
];

/// The ACL rules a Redis user needs, and no more, to run this backend
/// (producers, worker pools, the scheduler and the operators' calls) with
/// key prefix `prefix`: its keys and its pub/sub channels (`<prefix>:*`),
/// and the commands the crate and its scripts send.
///
/// `prefix` may be a glob pattern (`app-*`) to cover several prefixes. Use
/// the rules after `ACL SETUSER <name> on ><password>` (or on a `user` line of
/// an ACL file):
///
/// ```
/// let rules = jobs_redis::acl_rules("jobs");
/// assert!(rules.starts_with("resetkeys ~jobs:* resetchannels &jobs:* -@all +evalsha"));
/// ```
///
/// The `redis-rs` driver also sends `CLIENT SETINFO` when it connects and
/// ignores a refusal, and `SELECT` when the URL names a database other
/// than 0: add `+select` then.
pub fn acl_rules(prefix: &str) -> String {
    let mut commands: Vec<&str> = CLIENT_COMMANDS.iter().chain(SCRIPT_COMMANDS).copied().collect();
    // Keep the crate's own order first, without repeats.
    let mut seen = std::collections::HashSet::new();
    commands.retain(|c| seen.insert(*c));
    let allowed: Vec<String> = commands.iter().map(|c| format!("+{c}")).collect();
    format!("resetkeys ~{prefix}:* resetchannels &{prefix}:* -@all {}", allowed.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    /// Every command the scripts name in `redis.call('X'`,
    /// `redis.pcall("X"` or `chunked('X'` (common.lua's helper that sends a
    /// command in chunks); `tests/acl.rs` runs every script under these
    /// rules, which catches anything this misses.
    fn called_by_scripts() -> Vec<String> {
        let mut out = Vec::new();
        let dirs = ["/src/scripts", "/src/flows"].map(|d| format!("{}{d}", env!("CARGO_MANIFEST_DIR")));
        for entry in dirs.iter().flat_map(|d| std::fs::read_dir(d).unwrap()) {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "lua") {
                continue;
            }
            let src = std::fs::read_to_string(path).unwrap();
            for call in ["redis.call(", "redis.pcall(", "chunked("] {
                for part in src.split(call).skip(1) {
                    let quote = part.chars().next().unwrap();
                    if quote == '\'' || quote == '"' {
                        out.push(part[1..].chars().take_while(|c| *c != quote).collect::<String>().to_lowercase());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_rules_cover_every_command_the_scripts_call() {
        let rules = acl_rules("jobs");
        for c in called_by_scripts() {
            assert!(SCRIPT_COMMANDS.contains(&c.as_str()), "scripts call `{c}`: add it to SCRIPT_COMMANDS");
            assert!(rules.contains(&format!(" +{c}")), "{c}");
        }
    }

    #[test]
    fn the_readme_shows_the_rules() {
        let rules = acl_rules("jobs");
        assert!(include_str!("../README.md").contains(&rules), "update the ACL section of README.md: {rules}");
    }

    /// The crate's Rust sources, `testing` (which talks to its own
    /// servers) left out.
    fn rust_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("testing") && !path.ends_with("bin") {
                    rust_sources(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("acl.rs")
                && !path.ends_with("testing.rs")
            {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_rules_cover_every_command_the_crate_sends() {
        let mut files = Vec::new();
        rust_sources(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")), &mut files);
        assert!(files.iter().any(|p| p.ends_with("scripts/invoke.rs")), "{files:?}");
        for path in files {
            let src = std::fs::read_to_string(&path).unwrap();
            for part in src.split("cmd(\"").skip(1) {
                let name: String = part.chars().take_while(|c| *c != '"').collect::<String>().to_lowercase();
                let covered = CLIENT_COMMANDS.iter().any(|c| c.split('|').next() == Some(name.as_str()));
                assert!(covered, "{} sends `{name}`: add it to CLIENT_COMMANDS", path.display());
            }
        }
    }
}
