//! The run log: one line per start and per end of a chaos job's attempt,
//! appended by the worker process that runs it.
//!
//! Each worker process appends to a file of its own, opened with `O_APPEND`,
//! one `write(2)` per line: a line that reached the kernel survives a
//! SIGKILL of the process (the kernel owns it then), and a SIGKILL can never
//! leave half a line. Lines are
//!
//! ```text
//! S <job id> <attempt> <pid> <unix ms>    the attempt started
//! E <job id> <attempt> <pid> <unix ms>    the handler returned (before the ack)
//! ```

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jobs_core::JobContext;

use crate::error::ChaosError;

static LOG: OnceLock<File> = OnceLock::new();

/// Milliseconds since the Unix epoch, the clock every process of a run
/// shares (they run on one host).
pub fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// Opens this process's run log (worker mode); chaos jobs record their
/// attempts there from then on. Without it they record nothing.
pub fn open(path: &Path) -> Result<(), ChaosError> {
    let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| ChaosError::io(path, e))?;
    // A second call keeps the first file: one log per process.
    let _ = LOG.set(file);
    Ok(())
}

fn record(kind: char, ctx: &JobContext) {
    let Some(mut file) = LOG.get() else { return };
    let line = format!("{kind} {} {} {} {}\n", ctx.job_id(), ctx.attempt(), std::process::id(), now_ms());
    // One write for the whole line (O_APPEND: placed at the end atomically).
    if let Err(e) = file.write_all(line.as_bytes()) {
        tracing::error!(error = %e, "cannot append to the run log");
    }
}

/// Records that an attempt started.
pub(crate) fn started(ctx: &JobContext) {
    record('S', ctx);
}

/// Records that an attempt's handler returned.
pub(crate) fn ended(ctx: &JobContext) {
    record('E', ctx);
}

/// Whether this process has a run log (it is a chaos worker process).
pub(crate) fn is_open() -> bool {
    LOG.get().is_some()
}

/// One attempt as the run logs show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The attempt (1-based, as `JobContext::attempt`).
    pub attempt: u32,
    /// The worker process.
    pub pid: u32,
    /// When it started.
    pub start_ms: u64,
    /// When its handler returned, if it did before the process died.
    pub end_ms: Option<u64>,
}

/// Every run of every job, from all run logs of a directory.
#[derive(Debug, Default)]
pub struct RunLogs {
    /// Runs per job id, by start time.
    pub runs: HashMap<String, Vec<Run>>,
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be read (there should be none).
    pub bad_lines: Vec<String>,
}

impl RunLogs {
    /// Reads every `*.log` file of `dir`.
    pub fn read_dir(dir: &Path) -> Result<RunLogs, ChaosError> {
        let mut out = RunLogs::default();
        let mut ends: HashMap<(String, u32, u32), u64> = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| ChaosError::io(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| ChaosError::io(dir, e))?.path();
            if path.extension().is_none_or(|x| x != "log") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| ChaosError::io(&path, e))?;
            for line in text.lines() {
                out.lines += 1;
                match parse(line) {
                    Some(('S', id, attempt, pid, ms)) => {
                        out.runs.entry(id).or_default().push(Run { attempt, pid, start_ms: ms, end_ms: None })
                    }
                    Some((_, id, attempt, pid, ms)) => {
                        ends.insert((id, attempt, pid), ms);
                    }
                    None => out.bad_lines.push(format!("{}: {line:?}", path.display())),
                }
            }
        }
        for (id, runs) in &mut out.runs {
            runs.sort_by_key(|r| r.start_ms);
            for r in runs.iter_mut() {
                r.end_ms = ends.get(&(id.clone(), r.attempt, r.pid)).copied();
            }
        }
        Ok(out)
    }

    /// The runs of one job (none when it never started).
    pub fn of(&self, id: &str) -> &[Run] {
        self.runs.get(id).map_or(&[], Vec::as_slice)
    }
}

fn parse(line: &str) -> Option<(char, String, u32, u32, u64)> {
    let mut it = line.split(' ');
    let kind = match it.next()? {
        "S" => 'S',
        "E" => 'E',
        _ => return None,
    };
    let id = it.next()?.to_owned();
    let attempt = it.next()?.parse().ok()?;
    let pid = it.next()?.parse().ok()?;
    let ms = it.next()?.parse().ok()?;
    it.next().is_none().then_some((kind, id, attempt, pid, ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_torn_lines_do_not() {
        assert_eq!(parse("S chaos:01J 2 77 1000"), Some(('S', "chaos:01J".to_owned(), 2, 77, 1000)));
        assert_eq!(parse("E chaos:01J 2 77 1001"), Some(('E', "chaos:01J".to_owned(), 2, 77, 1001)));
        assert_eq!(parse("S chaos:01J 2 77"), None);
        assert_eq!(parse("X chaos:01J 2 77 1"), None);
        assert_eq!(parse("S chaos:01J 2 77 1 extra"), None);
    }
}
