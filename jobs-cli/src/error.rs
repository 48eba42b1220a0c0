//! [`CliError`]: why a command failed, and the exit code that says so.

/// Exit codes, by convention (sysexits where one fits).
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// The operation failed: no such job, a job in the wrong state, a full
    /// queue, a confirmation declined, an error reported by the backend.
    pub const FAILED: u8 = 1;
    /// The command line was wrong: unknown command or flag, bad id, duration
    /// or time, unknown job name, invalid payload, or a confirmation needed
    /// while stdin is not a terminal (pass `--yes`). Running it again as it
    /// is cannot succeed.
    pub const USAGE: u8 = 2;
    /// The backend cannot be reached (`EX_UNAVAILABLE`): Redis is down, the
    /// address or password is wrong, the connection was lost.
    pub const UNAVAILABLE: u8 = 69;
    /// The output could not be written (`EX_IOERR`).
    pub const IO: u8 = 74;
    /// The configuration is wrong (`EX_CONFIG`): a bad configuration file or
    /// variable, duplicate job names, a worker started with no job linked.
    pub const CONFIG: u8 = 78;
}

/// Why a command failed. Its `Display` is the one line printed after
/// `error: `; it never holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A call of the library or the backend failed; the exit code depends on
    /// the kind of error (see [`CliError::exit_code`]).
    #[error(transparent)]
    Core(#[from] jobs_core::Error),
    /// The configuration file or a `JOBS_*` variable is wrong.
    #[error(transparent)]
    Config(#[from] jobs_core::config::ConfigError),
    /// Opening the backend failed: it cannot be reached (exit 69), or its
    /// settings are wrong (exit 78).
    #[error("{}", connect_message(.0))]
    Connect(jobs_core::Error),
    /// `worker` in a program that links no job: nothing to run.
    #[error(
        "no job is linked into this program, so a worker has nothing to run: start it from your \
         application's own binary, which links its jobs (naming the crate that holds them: `use my_jobs as _;`)"
    )]
    NothingToRun,
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] jobs_core::archive::ArchiveError),
    /// An argument the grammar accepts but the command cannot use.
    #[error("{0}")]
    Usage(String),
    /// No linked job has this name.
    #[error("{}", unknown_job(name, known))]
    UnknownJob {
        /// The name asked for.
        name: String,
        /// The names of the linked jobs, sorted.
        known: Vec<String>,
    },
    /// The payload given to `enqueue` or `schedules add` is not valid for
    /// the job.
    #[error("invalid payload for job `{job}`: {detail}")]
    InvalidPayload {
        /// The job name.
        job: String,
        /// What is wrong (every broken field rule, or the decoding error).
        detail: String,
    },
    /// A command that changes many jobs needs a confirmation that cannot be
    /// asked: stdin is not a terminal and `--yes` was not given.
    #[error("refusing to {action} without confirmation: stdin is not a terminal; pass --yes to confirm")]
    ConfirmationRequired {
        /// What would have been done.
        action: String,
    },
    /// The operator answered no.
    #[error("not confirmed: did not {action}")]
    Declined {
        /// What was not done.
        action: String,
    },
    /// The operation could not be done; the message says why.
    #[error("{0}")]
    Failed(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The backend's own message, without the generic `backend error: `.
fn connect_message(e: &jobs_core::Error) -> String {
    match e {
        jobs_core::Error::Backend(source) => source.to_string(),
        other => other.to_string(),
    }
}

fn unknown_job(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        return format!(
            "unknown job `{name}`: this program links no job; run the command line from your \
             application's own binary, which links its jobs"
        );
    }
    let close = known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!("unknown job `{name}`{close}; linked jobs: {}", known.join(", "))
}

impl CliError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Core(e) => core_exit_code(e),
            CliError::Config(_) | CliError::NothingToRun => exit::CONFIG,
            CliError::Connect(e) => match e {
                jobs_core::Error::Backend(source) if is_unavailable(source.as_ref()) => exit::UNAVAILABLE,
                _ => exit::CONFIG,
            },
            CliError::Usage(_)
            | CliError::UnknownJob { .. }
            | CliError::InvalidPayload { .. }
            | CliError::ConfirmationRequired { .. } => exit::USAGE,
            CliError::Declined { .. } | CliError::Failed(_) | CliError::Archive(_) => exit::FAILED,
            CliError::Output(_) => exit::IO,
        }
    }

    /// Whether this is a write to a closed pipe (`jobs dead list | head`):
    /// not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The one line to print after `error: `: the message with line breaks
    /// folded, so that an error always takes exactly one line.
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        let mut out = String::with_capacity(text.len());
        for (i, line) in text.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            out.push_str(line);
        }
        out
    }
}

fn core_exit_code(e: &jobs_core::Error) -> u8 {
    use jobs_core::Error as E;
    match e {
        E::Validation(_) | E::InvalidQueueName(_) | E::InvalidArgument(_) | E::InvalidSchedule(_) => exit::USAGE,
        E::InvalidBatchItem { source, .. } => core_exit_code(source),
        E::DuplicateJobName { .. } | E::NoJobsLinked => exit::CONFIG,
        E::Backend(source) if is_unavailable(source.as_ref()) => exit::UNAVAILABLE,
        _ => exit::FAILED,
    }
}

/// A lost or refused connection, as opposed to an answer the backend gave.
fn is_unavailable(source: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    #[cfg(feature = "redis")]
    if let Some(e) = source.downcast_ref::<jobs_redis::RedisQueueError>() {
        return e.is_transient();
    }
    let _ = source;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_job_lists_the_linked_ones_and_suggests_a_close_one() {
        let e = CliError::UnknownJob { name: "send_emial".into(), known: vec!["cleanup".into(), "send_email".into()] };
        assert_eq!(
            e.to_string(),
            "unknown job `send_emial` (did you mean `send_email`?); linked jobs: cleanup, send_email"
        );
        assert_eq!(e.exit_code(), exit::USAGE);
        let none = CliError::UnknownJob { name: "x".into(), known: vec![] };
        assert!(none.to_string().contains("links no job"));
    }

    #[test]
    fn errors_fold_into_one_line() {
        let e = CliError::Failed("first\n  second\n\nthird".into());
        assert_eq!(e.one_line(), "first | second | third");
    }

    #[test]
    fn exit_codes_follow_the_kind_of_core_error() {
        let id = jobs_core::JobId::new("q");
        assert_eq!(CliError::from(jobs_core::Error::NotFound(id)).exit_code(), exit::FAILED);
        assert_eq!(CliError::from(jobs_core::Error::InvalidArgument("x".into())).exit_code(), exit::USAGE);
        assert_eq!(CliError::from(jobs_core::Error::NoJobsLinked).exit_code(), exit::CONFIG);
    }
}
