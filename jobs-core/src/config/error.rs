//! [`ConfigError`]: what is wrong with a configuration, with where.

/// What is wrong with a configuration. Each message names the file (or the
/// environment variable) and the key path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse into the configuration: bad syntax, unknown
    /// key (the message lists the valid ones), value of the wrong type or out
    /// of range. The message starts with the key path.
    #[error("{file}: {message}")]
    Parse {
        /// The file (or what else gave the value, e.g. a command-line flag).
        file: String,
        /// The parser's message: `key.path: what is wrong at line L column C`.
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or what else gave the value, e.g. a command-line flag).
        file: String,
        /// The key path, e.g. `queues.email.max_jobs`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// An environment variable sets a key that does not exist (the message
    /// lists the valid ones) or a value that does not parse or is not allowed.
    #[error("environment variable {var} ({key}): {message}")]
    Env {
        /// The variable.
        var: String,
        /// The key path it sets, e.g. `jobs.worker_pool.worker_count`.
        key: String,
        /// What is wrong.
        message: String,
    },
}
