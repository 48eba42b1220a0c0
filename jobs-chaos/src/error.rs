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
    /// A worker slot must run with a skewed clock and libfaketime's
    /// multi-threaded library was not found.
    #[error(
        "libfaketimeMT.so.1 not found (looked in {}): the skewed-clock worker processes need libfaketime \
         (`apt-get install faketime`), or JOBS_FAKETIME_LIB set to the library's path",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Faketime {
        /// The paths looked at.
        tried: Vec<PathBuf>,
    },
    /// A worker process does not run on the clock it was given: libfaketime
    /// is not in effect (or something else moves its clock).
    #[error(
        "worker process {pid} (slot {slot}) should run {expected_ms} ms off the server's clock and runs {measured_ms} ms \
         off: is libfaketime in effect?"
    )]
    ClockSkew {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// The offset it was given.
        expected_ms: i64,
        /// The offset it measured against Redis `TIME`.
        measured_ms: i64,
    },
    /// A worker process did not report its clock in time (it could not
    /// reach Redis, or it exited).
    #[error("worker process {pid} (slot {slot}) did not report its clock within {waited:?}; its stderr:\n{stderr}")]
    ClockUnknown {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// How long we waited.
        waited: Duration,
        /// The end of its stderr.
        stderr: String,
    },
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
