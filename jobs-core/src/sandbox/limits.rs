//! The limits a child sets on itself before it serves: `setrlimit` on its
//! own process, so that the pool needs no code between `fork` and `exec`.

use std::time::Duration;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use rustix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};

/// What a pool asks of each child (sent in its environment).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChildLimits {
    /// `RLIMIT_AS`, in bytes.
    pub(crate) memory: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub(crate) open_files: Option<u64>,
}

/// Why a limit could not be set.
#[derive(Debug, thiserror::Error)]
#[error("could not set {what} to {value}: {source}")]
pub(crate) struct LimitError {
    what: &'static str,
    value: u64,
    source: rustix::io::Errno,
}

impl ChildLimits {
    /// Sets the limits on this process, soft and hard alike, so that the
    /// job cannot raise them again.
    pub(crate) fn apply(&self) -> Result<(), LimitError> {
        let set =
            |resource, what, value: u64| {
                setrlimit(resource, Rlimit { current: Some(value), maximum: Some(value) })
                    .map_err(|source| LimitError { what, value, source })
            };
        if let Some(bytes) = self.memory {
            set(Resource::As, "the memory limit (RLIMIT_AS)", bytes)?;
        }
        if let Some(n) = self.open_files {
            set(Resource::Nofile, "the open files limit (RLIMIT_NOFILE)", n)?;
        }
        Ok(())
    }
}

/// Limits the CPU time of the attempt about to run to `secs` from now:
/// the soft `RLIMIT_CPU` counts the process's whole life, so it is set to
/// what was used so far plus the attempt's share. Past it the kernel sends
/// `SIGXCPU`, which ends the child.
pub(crate) fn limit_cpu_from_now(secs: u64) -> Result<(), LimitError> {
    // A process's CPU clock is never negative, so the conversion holds.
    let used = Duration::try_from(clock_gettime(ClockId::ProcessCPUTime)).unwrap_or_default();
    // Whole seconds, rounded up, as the kernel counts them.
    let target = used.as_secs() + u64::from(used.subsec_nanos() > 0) + secs;
    let maximum = getrlimit(Resource::Cpu).maximum;
    let current = maximum.map_or(target, |m| target.min(m));
    setrlimit(Resource::Cpu, Rlimit { current: Some(current), maximum }).map_err(|source| LimitError {
        what: "the CPU time limit (RLIMIT_CPU)",
        value: secs,
        source,
    })
}
