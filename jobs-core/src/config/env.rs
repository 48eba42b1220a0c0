//! Setting keys from text: the `JOBS_*` environment variables (every key by
//! one rule, plus short names for the common ones) and any other override
//! an application has (a command-line flag).
//!
//! An override is applied to the configuration written out as a tree: the
//! text goes at the key's place and the tree is read back with the same
//! serde types as the file, so every key is settable, unknown keys are
//! refused with the list of valid ones, and values are checked exactly as in
//! a file.

use super::backend::Setter;
use super::text::{candidates, pick_error, slot};
use super::{check, Config, ConfigError};

/// The short names of the most used keys.
const ALIASES: [(&str, &str); 13] = [
    ("JOBS_REDIS_URL", "jobs.redis.url"),
    ("JOBS_REDIS_POOL_SIZE", "jobs.redis.pool_size"),
    ("JOBS_WORKER_COUNT", "jobs.worker_pool.worker_count"),
    ("JOBS_MAX_RETRIES", "jobs.worker_pool.max_retries"),
    ("JOBS_RETRY_DELAY", "jobs.worker_pool.retry_delay"),
    ("JOBS_GRACE_PERIOD", "jobs.worker_pool.grace_period"),
    ("JOBS_LEASE", "jobs.worker_pool.lease"),
    ("JOBS_SCHEDULER_ENABLED", "jobs.scheduler.enabled"),
    ("JOBS_METRICS_ENABLED", "jobs.metrics.enabled"),
    ("JOBS_METRICS_PREFIX", "jobs.metrics.prefix"),
    ("JOBS_HTTP_BIND", "jobs.http.bind"),
    ("JOBS_HTTP_ADMIN_TOKEN", "jobs.http.admin_token"),
    ("JOBS_HTTP_ALLOWED_HOSTS", "jobs.http.allowed_hosts"),
];

/// The separator of key levels in a variable's name.
const LEVEL: &str = "__";

/// The key path a variable sets, `None` for a variable that sets none: a
/// short name, or `JOBS_` then the path with its levels joined by `__`
/// (`JOBS_WORKER_POOL__WORKER_COUNT` sets `jobs.worker_pool.worker_count`,
/// `JOBS_QUEUES__EMAIL__MAX_JOBS` sets `queues.email.max_jobs`). Names are
/// matched in lower case; a queue already configured is found whatever the
/// case of its name.
fn key_of(var: &str, config: &Config) -> Option<Vec<String>> {
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == var) {
        return Some(key.split('.').map(str::to_owned).collect());
    }
    let rest = var.strip_prefix("JOBS_")?;
    if !rest.contains(LEVEL) {
        return None;
    }
    let mut levels: Vec<String> = rest.split(LEVEL).map(str::to_ascii_lowercase).collect();
    if levels.iter().any(String::is_empty) {
        return None;
    }
    if levels[0] == "queues" {
        if let Some(name) = levels.get(1).and_then(|l| config.queues.names().find(|n| n.eq_ignore_ascii_case(l))) {
            levels[1] = name.to_owned();
        }
        Some(levels)
    } else {
        levels.insert(0, "jobs".to_owned());
        Some(levels)
    }
}

/// Applies every variable of `vars` that sets a key (an empty value counts
/// as unset), short names first so that the long form of a key wins, then
/// checks the result.
pub(super) fn apply_vars(mut config: Config, vars: Vec<(String, String)>) -> Result<Config, ConfigError> {
    let mut sets: Vec<(bool, String, Vec<String>, String)> = Vec::new();
    for (var, value) in vars {
        let Some(path) = key_of(&var, &config) else {
            if var.starts_with("JOBS_") {
                tracing::debug!(var, "ignoring environment variable: it names no configuration key");
            }
            continue;
        };
        let value = value.trim();
        if !value.is_empty() {
            let alias = ALIASES.iter().any(|(a, _)| *a == var);
            sets.push((!alias, var, path, value.to_owned()));
        }
    }
    if sets.is_empty() {
        return Ok(config);
    }
    sets.sort_by_key(|(long, ..)| *long);
    for (_, var, path, value) in &sets {
        config = set(config, path, value, Setter::Env(var.clone())).map_err(|message| ConfigError::Env {
            var: var.clone(),
            key: path.join("."),
            message,
        })?;
    }
    if let Err((key, message)) = check::config(&config) {
        // The configuration was valid before: the variable closest to the key is the cause.
        let culprit = sets
            .iter()
            .rev()
            .max_by_key(|(_, _, path, _)| common_levels(path, &key))
            .map_or_else(String::new, |(_, var, ..)| var.clone());
        return Err(ConfigError::Env { var: culprit, key, message });
    }
    Ok(config)
}

/// How many leading levels `path` shares with the key path `key`.
fn common_levels(path: &[String], key: &str) -> usize {
    path.iter().zip(key.split(['.', '['])).take_while(|(a, b)| a.as_str() == *b).count()
}

/// Sets the key at `path` from `text`, as `setter` gives it, without the
/// checks of [`check::config`]. The message says what is wrong.
pub(super) fn set(config: Config, path: &[String], text: &str, setter: Setter) -> Result<Config, String> {
    let redis_origin = config.jobs.redis.as_ref().map(|r| r.origin().clone());
    let tree = serde_yaml_ng::to_value(&config).map_err(|e| format!("cannot write the configuration out: {e}"))?;
    let mut errors: Vec<(bool, String)> = Vec::new();
    for (literal, candidate) in candidates(text) {
        let mut tree = tree.clone();
        *slot(&mut tree, path)? = candidate;
        match serde_yaml_ng::from_value::<Config>(tree) {
            Ok(mut c) => {
                if let Some(r) = &mut c.jobs.redis {
                    if let Some(inner) = path.strip_prefix(&["jobs".to_owned(), "redis".to_owned()]) {
                        r.overridden(redis_origin.as_ref(), &inner.join("."), text, setter);
                    } else if let Some(o) = redis_origin {
                        r.keep_origin(o);
                    }
                }
                return Ok(c);
            }
            Err(e) => errors.push((literal, e.to_string())),
        }
    }
    Err(pick_error(&errors))
}
