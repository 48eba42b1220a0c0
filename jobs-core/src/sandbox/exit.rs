//! A child's end as an attempt's error text.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::Signal;

/// Why a child that was running an attempt ended, e.g. `sandbox: the child
/// was killed by SIGSEGV (invalid memory access)`, with the last line the
/// child wrote to standard error when there is one (Rust's "memory
/// allocation of N bytes failed" before an abort).
pub(crate) fn reason(status: ExitStatus, cpu_limit: Option<Duration>, last_line: &str) -> String {
    let what = match (status.signal(), status.code()) {
        (Some(sig), _) => format!("the child was killed by {}", signal_text(sig, cpu_limit)),
        (None, Some(code)) => format!("the child exited with code {code} in the middle of the attempt"),
        (None, None) => "the child ended in the middle of the attempt".to_owned(),
    };
    let line = last_line.trim();
    if line.is_empty() {
        format!("sandbox: {what}")
    } else {
        format!("sandbox: {what}; its last words: {line}")
    }
}

fn signal_text(sig: i32, cpu_limit: Option<Duration>) -> String {
    match Signal::from_named_raw(sig) {
        Some(Signal::SEGV) => "SIGSEGV (invalid memory access)".to_owned(),
        Some(Signal::BUS) => "SIGBUS (invalid memory access)".to_owned(),
        Some(Signal::ABORT) => "SIGABRT (it aborted)".to_owned(),
        Some(Signal::ILL) => "SIGILL (illegal instruction)".to_owned(),
        Some(Signal::FPE) => "SIGFPE (arithmetic error)".to_owned(),
        Some(Signal::KILL) => "SIGKILL (out of memory, or killed from outside)".to_owned(),
        Some(Signal::XCPU) => match cpu_limit {
            Some(l) => format!("SIGXCPU (over its CPU time limit of {})", humantime::format_duration(l)),
            None => "SIGXCPU (over its CPU time limit)".to_owned(),
        },
        Some(Signal::TERM) => "SIGTERM".to_owned(),
        _ => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_exit_codes_read_as_reasons() {
        let segv = ExitStatus::from_raw(Signal::SEGV.as_raw());
        assert_eq!(reason(segv, None, ""), "sandbox: the child was killed by SIGSEGV (invalid memory access)");
        let xcpu = ExitStatus::from_raw(Signal::XCPU.as_raw());
        assert!(reason(xcpu, Some(Duration::from_secs(2)), "").contains("over its CPU time limit of 2s"));
        let abort = ExitStatus::from_raw(Signal::ABORT.as_raw());
        assert_eq!(
            reason(abort, None, "memory allocation of 8 bytes failed\n"),
            "sandbox: the child was killed by SIGABRT (it aborted); its last words: memory allocation of 8 bytes failed"
        );
        // A wait status carries an exit code in its second byte.
        assert_eq!(
            reason(ExitStatus::from_raw(3 << 8), None, ""),
            "sandbox: the child exited with code 3 in the middle of the attempt"
        );
    }
}
