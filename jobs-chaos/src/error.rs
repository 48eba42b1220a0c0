//! [`ChaosError`]: why a chaos run could not be carried out (as opposed to a
//! run that was carried out and found a fault, which is a failed
//! [`Report`](crate::Report)).

use std::path::PathBuf;
use std::time::Duration;

/// Why a chaos run (or one of its helpers) could not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// A program could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `redis-server` did not answer `PING` in time.
    #[error("redis-server on port {port} did not answer PING within {waited:?}; the end of its log:\n{log}")]
    RedisStart {
        /// Its port.
        port: u16,
        /// How long we waited.
        waited: Duration,
        /// The last lines of its log file.
        log: String,
    },
    /// A file or directory of the run could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A call of the queue failed where the run cannot go on without it.
    #[error(transparent)]
    Queue(#[from] jobs_core::Error),
    /// A bad setting.
    #[error("invalid chaos setting: {0}")]
    Config(String),
    /// The report could not be written as JSON.
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ChaosError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChaosError::Io { path: path.into(), source }
    }
}
