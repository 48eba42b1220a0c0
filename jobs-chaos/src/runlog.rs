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
//! C <pid> <given ms> <measured ms> <unix ms>
//!                                         the process's clock offset: the one
//!                                         it was given, and the one it measured
//!                                         against Redis `TIME` at its start
//! ```
//!
//! Times are the host's true clock in every process: a worker whose clock
//! is skewed on purpose (libfaketime) subtracts the offset it was given
//! (`set_clock_offset`), which it checked against the server's clock
//! before it took any job, so that runs compare with fault times (the
//! chaos program's clock) and job records (the server's).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jobs_core::JobContext;

use crate::error::ChaosError;

static LOG: OnceLock<File> = OnceLock::new();

/// How far this process's clock is ahead of the host's, on purpose
/// (milliseconds; negative: behind).
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Milliseconds since the Unix epoch by this process's own clock, skewed
/// or not.
pub fn raw_now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Milliseconds since the Unix epoch on the host's true clock, the clock
/// every process of a run shares (they run on one host; a skewed worker
/// takes its offset off).
pub fn now_ms() -> u64 {
    let t = raw_now_ms().saturating_sub(CLOCK_OFFSET_MS.load(Ordering::Relaxed));
    u64::try_from(t).unwrap_or(0)
}

/// Tells [`now_ms`] how far this process's clock is off on purpose.
pub(crate) fn set_clock_offset(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, Ordering::Relaxed);
}

/// Records this process's clock offsets: the one it was given and the one
/// it measured.
pub(crate) fn clock(given_ms: i64, measured_ms: i64) {
    let Some(mut file) = LOG.get() else { return };
    let line = format!("C {} {given_ms} {measured_ms} {}\n", std::process::id(), now_ms());
    if let Err(e) = file.write_all(line.as_bytes()) {
        tracing::error!(error = %e, "cannot append to the run log");
    }
}

/// Opens this process's run log (worker mode); chaos jobs record their
/// attempts there from then on. Without it they record nothing.
pub fn open(path: &Path) -> Result<(), ChaosError> {
    let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| ChaosError::io(path, e))?;
    // A second call keeps the first file: one log per process.
    let _ = LOG.set(file);
    Ok(())
}

/// The worker process a run belongs to: this process, or, in a sandbox
/// child, the worker that started it (the kernel kills the child when that
/// worker dies, so the worker's faults are the run's).
fn worker_pid() -> u32 {
    if jobs_core::sandbox::is_child() {
        std::os::unix::process::parent_id()
    } else {
        std::process::id()
    }
}

fn record(kind: char, ctx: &JobContext) {
    let Some(mut file) = LOG.get() else { return };
    let line = format!("{kind} {} {} {} {}\n", ctx.job_id(), ctx.attempt(), worker_pid(), now_ms());
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

/// A worker process's clock, as it reported it at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockLine {
    /// The offset it was given (ms ahead of the host's clock).
    pub given_ms: i64,
    /// The offset it measured against Redis `TIME`.
    pub measured_ms: i64,
}

/// Every run of every job, from all run logs of a directory.
#[derive(Debug, Default)]
pub struct RunLogs {
    /// Runs per job id, by start time.
    pub runs: HashMap<String, Vec<Run>>,
    /// Each worker process's clock, by pid.
    pub clocks: HashMap<u32, ClockLine>,
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be read (there should be none).
    pub bad_lines: Vec<String>,
}

impl RunLogs {
    /// Reads every `*.log` file of `dir`.
    pub fn read_dir(dir: &Path) -> Result<RunLogs, ChaosError> {
        let mut out = RunLogs::default();
        let mut ends: HashMap<(String, u32, u32), Vec<u64>> = HashMap::new();
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
                    Some(Line::Start { id, attempt, pid, ms }) => {
                        out.runs.entry(id).or_default().push(Run { attempt, pid, start_ms: ms, end_ms: None })
                    }
                    Some(Line::End { id, attempt, pid, ms }) => {
                        ends.entry((id, attempt, pid)).or_default().push(ms);
                    }
                    Some(Line::Clock { pid, clock }) => {
                        out.clocks.insert(pid, clock);
                    }
                    None => out.bad_lines.push(format!("{}: {line:?}", path.display())),
                }
            }
        }
        for (id, runs) in &mut out.runs {
            runs.sort_by_key(|r| r.start_ms);
            pair_ends(id, runs, &mut ends);
        }
        Ok(out)
    }

    /// The runs of one job (none when it never started).
    pub fn of(&self, id: &str) -> &[Run] {
        self.runs.get(id).map_or(&[], Vec::as_slice)
    }
}

/// One line of a run log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Start { id: String, attempt: u32, pid: u32, ms: u64 },
    End { id: String, attempt: u32, pid: u32, ms: u64 },
    Clock { pid: u32, clock: ClockLine },
}

/// Gives each run its end: the first end line of its job, attempt and
/// process at or after its start and before that process's next start of
/// the same attempt. One process may start one attempt twice: when its
/// lease was lost before the start mark reached Redis, the attempt was not
/// counted and the same process may take the job again.
fn pair_ends(id: &str, runs: &mut [Run], ends: &mut HashMap<(String, u32, u32), Vec<u64>>) {
    for i in 0..runs.len() {
        let (attempt, pid, start) = (runs[i].attempt, runs[i].pid, runs[i].start_ms);
        let next_start =
            runs[i + 1..].iter().find(|o| o.attempt == attempt && o.pid == pid).map_or(u64::MAX, |o| o.start_ms);
        let Some(list) = ends.get_mut(&(id.to_owned(), attempt, pid)) else { continue };
        list.sort_unstable();
        if let Some(k) = list.iter().position(|&e| e >= start && e <= next_start) {
            runs[i].end_ms = Some(list.remove(k));
        }
    }
}

fn parse(line: &str) -> Option<Line> {
    let f: Vec<&str> = line.split(' ').collect();
    let [kind, a, b, c, d] = f.as_slice() else { return None };
    // Every line ends with its time, read for each kind alike.
    let _: u64 = d.parse().ok()?;
    match *kind {
        "S" | "E" => {
            let (id, attempt, pid, ms) = ((*a).to_owned(), b.parse().ok()?, c.parse().ok()?, d.parse().ok()?);
            Some(if *kind == "S" { Line::Start { id, attempt, pid, ms } } else { Line::End { id, attempt, pid, ms } })
        }
        "C" => Some(Line::Clock {
            pid: a.parse().ok()?,
            clock: ClockLine { given_ms: b.parse().ok()?, measured_ms: c.parse().ok()? },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One process that starts one attempt twice (killed the second time):
    /// the end belongs to the first run only.
    #[test]
    fn ends_pair_with_their_own_start() {
        let run = |start_ms| Run { attempt: 1, pid: 7, start_ms, end_ms: None };
        let mut runs = vec![run(100), run(300)];
        let mut ends = HashMap::from([(("j".to_owned(), 1, 7), vec![200])]);
        pair_ends("j", &mut runs, &mut ends);
        assert_eq!((runs[0].end_ms, runs[1].end_ms), (Some(200), None));
        let mut runs = vec![run(100), run(300)];
        let mut ends = HashMap::from([(("j".to_owned(), 1, 7), vec![400, 200])]);
        pair_ends("j", &mut runs, &mut ends);
        assert_eq!((runs[0].end_ms, runs[1].end_ms), (Some(200), Some(400)));
    }

    #[test]
    fn lines_parse_and_torn_lines_do_not() {
        let id = || "chaos:01J".to_owned();
        assert_eq!(parse("S chaos:01J 2 77 1000"), Some(Line::Start { id: id(), attempt: 2, pid: 77, ms: 1000 }));
        assert_eq!(parse("E chaos:01J 2 77 1001"), Some(Line::End { id: id(), attempt: 2, pid: 77, ms: 1001 }));
        assert_eq!(
            parse("C 77 -420000 -419998 1002"),
            Some(Line::Clock { pid: 77, clock: ClockLine { given_ms: -420_000, measured_ms: -419_998 } })
        );
        assert_eq!(parse("C 77 420000 4200"), None);
        assert_eq!(parse("S chaos:01J 2 77"), None);
        assert_eq!(parse("X chaos:01J 2 77 1"), None);
        assert_eq!(parse("S chaos:01J 2 77 1 extra"), None);
    }
}
