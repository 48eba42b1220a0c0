//! Building the backend from the configuration: the embedded `MemoryQueue`
//! when no Redis URL is configured, `jobs_redis::RedisQueue` when one is (a
//! `jobs_core::QueueRouter` over several servers when `jobs.redis.routes`
//! sends queues elsewhere).

use std::path::PathBuf;
use std::sync::Arc;

use jobs_core::config::Config;
use jobs_core::config::{mask_url_password, BackendSection};
use jobs_core::{MemoryQueue, SharedQueue};

use crate::args::BackendArgs;
use crate::error::CliError;

/// The environment variable that names a configuration file when `--config`
/// is not given.
pub const CONFIG_ENV: &str = "JOBS_CONFIG";

/// Which backend a [`Backend`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// The embedded in-process queue: it holds only what this process puts
    /// there, and forgets it when the process ends.
    Memory,
    /// Redis at this URL (password masked).
    Redis {
        /// The URL, password masked.
        url: String,
    },
}

/// An open backend with the configuration it came from.
#[derive(Clone)]
pub struct Backend {
    /// The queue, ready for commands.
    pub queue: SharedQueue,
    /// The configuration (worker pool settings, queue policies).
    pub config: Config,
    /// What it is.
    pub kind: BackendKind,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// Reads the configuration the way the command line does, from this
/// process's environment: the file of `--config` (else of `JOBS_CONFIG`, else
/// none), then the `JOBS_*` overrides, then `--redis-url`.
pub fn load_config(args: &BackendArgs) -> Result<Config, CliError> {
    load_config_with_env(args, std::env::vars())
}

/// [`load_config`] with the environment given as `(name, value)` pairs.
pub fn load_config_with_env<I, K, V>(args: &BackendArgs, vars: I) -> Result<Config, CliError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let vars: Vec<(String, String)> =
        vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect();
    let file = args.config.clone().or_else(|| {
        vars.iter().find(|(k, v)| k == CONFIG_ENV && !v.trim().is_empty()).map(|(_, v)| PathBuf::from(v.trim()))
    });
    let mut config = match file {
        Some(path) => Config::load_with_env(path, vars)?,
        None => Config::default().with_env_overrides(vars)?,
    };
    if let Some(url) = &args.redis_url {
        config = config.with_override("jobs.redis.url", url, "--redis-url")?;
    }
    Ok(config)
}

/// Opens the backend the configuration names: Redis when `jobs.redis` is
/// set, else a new, empty [`MemoryQueue`].
///
/// Fails with exit code 69 when Redis cannot be reached, 78 when its
/// settings are wrong (or this build has no `redis` feature).
pub async fn open(config: Config) -> Result<Backend, CliError> {
    match config.jobs.redis.clone() {
        None => Ok(Backend { queue: Arc::new(MemoryQueue::new()), config, kind: BackendKind::Memory }),
        Some(section) => {
            let url = mask_url_password(section.url().unwrap_or_default()).into_owned();
            let queue = open_redis(&section).await?;
            Ok(Backend { queue, config, kind: BackendKind::Redis { url } })
        }
    }
}

/// [`load_config`] then [`open`].
pub async fn connect(args: &BackendArgs) -> Result<Backend, CliError> {
    open(load_config(args)?).await
}

#[cfg(feature = "redis")]
async fn open_redis(s: &BackendSection) -> Result<SharedQueue, CliError> {
    let c = jobs_redis::RedisConfig::from_section(s)?;
    // With `routes`, a router over every server: commands see all queues.
    jobs_redis::open(&c).await.map_err(CliError::Connect)
}

#[cfg(not(feature = "redis"))]
async fn open_redis(s: &BackendSection) -> Result<SharedQueue, CliError> {
    Err(CliError::Config(jobs_core::config::ConfigError::Invalid {
        file: "configuration".into(),
        key: "jobs.redis.url".into(),
        message: format!(
            "`{}` is configured, but this program was built without the `redis` feature of jobs-cli",
            mask_url_password(s.url().unwrap_or_default())
        ),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    #[test]
    fn no_url_anywhere_means_memory() {
        let c = load_config_with_env(&BackendArgs::default(), NO_ENV).unwrap();
        assert!(c.jobs.redis.is_none());
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let args = BackendArgs { config: None, redis_url: Some("redis://flag:6379".into()) };
        let c = load_config_with_env(&args, [("JOBS_REDIS_URL", "redis://env:6379")]).unwrap();
        assert_eq!(c.jobs.redis.unwrap().url(), Some("redis://flag:6379"));
        let c = load_config_with_env(&BackendArgs::default(), [("JOBS_REDIS_URL", "redis://env:6379")]).unwrap();
        assert_eq!(c.jobs.redis.unwrap().url(), Some("redis://env:6379"));
    }

    #[test]
    fn a_bad_url_names_the_flag_and_hides_the_password() {
        let args = BackendArgs { config: None, redis_url: Some("http://u:hunter2@x".into()) };
        let e = load_config_with_env(&args, NO_ENV).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("--redis-url: jobs.redis.url:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(e.exit_code(), crate::error::exit::CONFIG);
    }

    #[test]
    fn jobs_config_names_the_file_when_no_flag_does() {
        let e = load_config_with_env(&BackendArgs::default(), [(CONFIG_ENV, "/nonexistent/jobs.yaml")]).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/jobs.yaml: cannot read"), "{e}");
    }
}
