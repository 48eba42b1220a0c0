//! The run log of the crash tests: what each worker process's handlers
//! actually did, as opposed to what Redis counted.
//!
//! The `jobs-redis-test-worker` binary runs [`CrashJob`]s; each handler
//! appends a line when it starts and one when it ends. Every process of a
//! test appends to the same file (`JOBS_REDIS_TEST_RUN_LOG`), opened with
//! `O_APPEND`, one `write(2)` per line: a line that reached the kernel
//! survives a SIGKILL of the process, and no line is ever torn or
//! interleaved with another. Lines are
//!
//! ```text
//! S <job id> <attempt> <pid> <unix ms>    the handler started
//! E <job id> <attempt> <pid> <unix ms>    the handler returned
//! ```
//!
//! A run with no `E` line was cut short: its process died mid-handler.
//! What the pool did with a result shows in the process's warnings
//! ([`WorkerProcess::stderr`](super::WorkerProcess::stderr), see
//! [`refused`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs_core::{Job, JobContext, JobId, JobStatus, Priority, ValidationError};
use serde::{Deserialize, Serialize};

use crate::RedisQueue;

/// The job the test worker binary runs: sleeps `sleep_ms` between its start
/// and end lines, and returns [`Ran`].
///
/// Only the binary registers its handler (with `#[job]`, under the same
/// name and fields); this type enqueues it, and registers nothing, so no
/// other program of the workspace ever sees it as one of its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashJob {
    /// Tells jobs apart in messages.
    pub seq: u64,
    /// How long the handler sleeps.
    pub sleep_ms: u64,
}

impl Job for CrashJob {
    const NAME: &'static str = "jobs_redis.testing.crash";
    /// Which attempt in which process produced the result.
    type Output = Ran;
    const QUEUE: &'static str = "crash";
    const PRIORITY: Priority = Priority::Normal;
    /// Many, so that a job reclaimed from several killed workers still ends
    /// succeeded.
    const MAX_RETRIES: Option<u32> = Some(10);
    const TIMEOUT: Option<Duration> = None;

    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// A [`CrashJob`] in a group (`group`), at most two of a group running at
/// once; the test worker binary runs it like a crash job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedCrashJob {
    /// Tells jobs apart in messages.
    pub seq: u64,
    /// Its group.
    pub group: String,
    /// How long the handler sleeps.
    pub sleep_ms: u64,
}

impl Job for GroupedCrashJob {
    const NAME: &'static str = "jobs_redis.testing.grouped_crash";
    type Output = Ran;
    const QUEUE: &'static str = "crash";
    const PRIORITY: Priority = Priority::Normal;
    const MAX_RETRIES: Option<u32> = Some(10);
    const TIMEOUT: Option<Duration> = None;
    const CONCURRENCY: Option<u32> = Some(2);

    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    fn group(&self) -> Option<String> {
        Some(self.group.clone())
    }
}

/// A [`CrashJob`]'s result: which attempt, in which process, produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ran {
    /// `JobContext::attempt` of the run.
    pub attempt: u32,
    /// The worker process.
    pub pid: u32,
}

static LOG: OnceLock<File> = OnceLock::new();

/// Milliseconds since the Unix epoch (every process of a test runs on one
/// host, with one clock).
pub fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// Opens this process's run log (the worker binary does, at start).
pub fn open(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    // A second call keeps the first file: one log per process.
    let _ = LOG.set(file);
    Ok(())
}

fn append(line: String) {
    let Some(mut file) = LOG.get() else { return };
    // One write for the whole line (O_APPEND: placed at the end atomically;
    // a `File` has no buffer of its own, so nothing waits for a flush).
    if let Err(e) = file.write_all(line.as_bytes()) {
        eprintln!("cannot append to the run log: {e}");
    }
}

/// Records that a handler started.
pub fn started(ctx: &JobContext) {
    append(format!("S {} {} {} {}\n", ctx.job_id(), ctx.attempt(), std::process::id(), now_ms()));
}

/// Records that a handler returned.
pub fn ended(ctx: &JobContext) {
    append(format!("E {} {} {} {}\n", ctx.job_id(), ctx.attempt(), std::process::id(), now_ms()));
}

/// A fresh run log path in the temporary directory (the file is created by
/// the first process that writes to it).
pub fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("jobs-redis-runlog-{}-{tag}-{n}.log", std::process::id()))
}

/// One run of a handler, as the run log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The attempt (`JobContext::attempt`).
    pub attempt: u32,
    /// The worker process.
    pub pid: u32,
    /// When it started.
    pub start_ms: u64,
    /// When its handler returned, if it did before its process died.
    pub end_ms: Option<u64>,
}

/// The pool's warning when the backend refused a result because the lease
/// had expired and the job was taken again (`jobs_core`'s ack loop logs it
/// for each refused result, after the backend answered).
pub const REFUSED: &str = "result refused: the lease expired and the job was taken again";

/// Whether a worker process's warnings (its stderr, one event a line, as
/// `tracing_subscriber::fmt` writes them) say that the backend refused a
/// result of job `id`.
pub fn refused(stderr: &str, id: &JobId) -> bool {
    let field = format!("job={id}");
    stderr.lines().any(|l| l.contains(REFUSED) && l.split_whitespace().any(|w| w == field))
}

/// Everything the run log of a test says.
#[derive(Debug, Default)]
pub struct RunLog {
    /// Runs per job id, by attempt.
    pub runs: BTreeMap<String, Vec<Run>>,
    /// Lines that could not be read (there must be none).
    pub bad_lines: Vec<String>,
}

impl RunLog {
    /// Reads the run log at `path` (empty when nothing wrote to it yet).
    pub fn read(path: &Path) -> RunLog {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("cannot read the run log {}: {e}", path.display()),
        };
        let mut out = RunLog::default();
        let mut ends: BTreeMap<(String, u32, u32), u64> = BTreeMap::new();
        for line in text.lines() {
            match parse(line) {
                Some(Line::Start(id, attempt, pid, ms)) => {
                    out.runs.entry(id).or_default().push(Run { attempt, pid, start_ms: ms, end_ms: None })
                }
                Some(Line::End(id, attempt, pid, ms)) => {
                    if ends.insert((id, attempt, pid), ms).is_some() {
                        out.bad_lines.push(format!("a second end line: {line:?}"));
                    }
                }
                None => out.bad_lines.push(line.to_owned()),
            }
        }
        for (id, runs) in &mut out.runs {
            runs.sort_by_key(|r| (r.attempt, r.start_ms));
            for r in runs.iter_mut() {
                r.end_ms = ends.remove(&(id.clone(), r.attempt, r.pid));
            }
        }
        for ((id, attempt, pid), _) in ends {
            out.bad_lines.push(format!("an end without a start: {id} attempt {attempt} pid {pid}"));
        }
        out
    }

    /// The runs of one job, by attempt (none when it never started).
    pub fn of(&self, id: &JobId) -> &[Run] {
        self.runs.get(&id.to_string()).map_or(&[], Vec::as_slice)
    }
}

enum Line {
    Start(String, u32, u32, u64),
    End(String, u32, u32, u64),
}

fn parse(line: &str) -> Option<Line> {
    let (kind, rest) = line.split_once(' ')?;
    let mut it = rest.split(' ');
    let id = it.next()?.to_owned();
    let attempt = it.next()?.parse().ok()?;
    let pid = it.next()?.parse().ok()?;
    let ms = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    match kind {
        "S" => Some(Line::Start(id, attempt, pid, ms)),
        "E" => Some(Line::End(id, attempt, pid, ms)),
        _ => None,
    }
}

/// What [`check_kill_runs`] found.
#[derive(Debug, Default)]
pub struct KillRuns {
    /// Jobs whose handler started more than once.
    pub ran_again: usize,
    /// Runs cut short: started in a killed process, no end line.
    pub interrupted: usize,
    /// Runs that ended in a process killed before their result was recorded
    /// (the job ran again, or its newest run's result stands).
    pub ended_unrecorded: usize,
    /// Attempts Redis counted that never reached a handler.
    pub never_started: usize,
    /// Runs that repeated the attempt of a run in a killed process (its
    /// start mark had not reached Redis: a crash, not an attempt).
    pub same_attempt_again: usize,
}

/// How long [`start_long_run`]'s job sleeps: far longer than a test takes
/// to kill the process that runs it, once it has been seen running.
pub const LONG_RUN_MS: u64 = 3_000;

/// Whether Redis has recorded the start of `id`'s running attempt (the
/// worker's start mark): from then on a lost lease counts as an attempt,
/// before it as a crash. A test that kills or stops a worker to make an
/// attempt fail waits for it first.
pub async fn start_recorded(q: &RedisQueue, id: &JobId) -> bool {
    let key = q.keys_of(id).started();
    redis::cmd("HEXISTS").arg(key).arg(id.ulid().to_string()).query_async::<bool>(&mut q.conn()).await.unwrap_or(false)
}

/// Enqueues a [`CrashJob`] that sleeps [`LONG_RUN_MS`] (priority critical,
/// so the next fetch takes it) and returns once the run log shows its
/// handler running in the process `pid`: a kill that follows at once cuts
/// a handler short, whatever the other jobs' timing.
pub async fn start_long_run(q: &RedisQueue, queue: &str, seq: u64, path: &Path, pid: u32) -> JobId {
    use jobs_core::{JobExt as _, JobOptions};
    let job = CrashJob { seq, sleep_ms: LONG_RUN_MS }
        .into_new_job(JobOptions::new().queue(queue).priority(Priority::Critical))
        .expect("a valid job");
    let id = q.enqueue_many(vec![job]).await.expect("enqueue").remove(0);
    jobs_core::testing::eventually("the long job runs in the worker about to be killed", || async {
        RunLog::read(path).of(&id).iter().any(|r| r.pid == pid && r.end_ms.is_none())
    })
    .await;
    id
}

/// Worker processes started with `start` and SIGKILLed in turn, `kills`
/// of them: each once `queue` has `progress` more jobs processed per round
/// and a job running, and once a long job of its own ([`start_long_run`],
/// sequence numbers from `first_seq`) is seen running in it, so that each
/// kill cuts a handler short. `ids` gets each long job's id; `after_kill`
/// runs after each kill, given `ids` (a test notes what the leases hold).
/// Returns the killed processes' ids.
#[allow(clippy::too_many_arguments)] // A test helper: each is one knob of the rounds.
pub async fn kill_in_turn(
    q: &RedisQueue,
    queue: &str,
    log: &Path,
    (kills, progress, first_seq): (u64, u64, u64),
    ids: &mut Vec<JobId>,
    start: impl Fn() -> crate::testing::WorkerProcess,
    mut after_kill: impl AsyncFnMut(&[JobId]),
) -> Vec<u32> {
    let mut killed = Vec::new();
    for round in 1..=kills {
        let mut w = start();
        jobs_core::testing::eventually("the worker made progress and holds jobs", || async {
            let c = q.stats().await.expect("stats").queue(queue);
            c.processed >= round * progress && c.running > 0
        })
        .await;
        ids.push(start_long_run(q, queue, first_seq + round, log, w.pid()).await);
        killed.push(w.pid());
        w.kill();
        after_kill(ids).await;
    }
    killed
}

/// Checks, from the run log at `path` and from Redis, that worker processes
/// SIGKILLed while running `ids` (the processes `killed`) lost no job and
/// that nothing but a kill made a job run again:
///
/// - every job succeeded, with the result of its last run, which ran to its
///   end (so every job ran to completion at least once);
/// - runs of a job have increasing attempts, except that a run in a killed
///   process may be followed by a run of the same attempt (it was killed
///   before its start reached Redis: a crash, not an attempt), and Redis
///   counted as many attempts as the last run's;
/// - every run without an end line was in a killed process (a live worker
///   never abandons a handler);
/// - every run but a job's last was in a killed process: a job runs again
///   only when the process that ran it was killed before its result was
///   recorded, and each earlier attempt is recorded as a lease that expired;
/// - the log has no unreadable line.
pub async fn check_kill_runs(q: &RedisQueue, path: &Path, ids: &[JobId], killed: &[u32]) -> KillRuns {
    let log = RunLog::read(path);
    assert!(log.bad_lines.is_empty(), "unreadable run log lines: {:?}", log.bad_lines);
    let mut out = KillRuns::default();
    for id in ids {
        let runs = log.of(id);
        let info = q.job(id).await.expect("job() works").expect("the job exists");
        assert_eq!(info.status, JobStatus::Succeeded, "{info:?}\nruns: {runs:?}");
        let last = runs.last().unwrap_or_else(|| panic!("{id} never started, yet succeeded: {info:?}"));
        assert!(last.end_ms.is_some(), "{id}: its last run did not end: {runs:?}");
        let result: Ran = serde_json::from_value(info.result.clone().expect("a result")).expect("a `Ran` result");
        assert_eq!(
            result,
            Ran { attempt: last.attempt, pid: last.pid },
            "{id}: the stored result is not its last run's: {runs:?}"
        );
        assert_eq!(info.attempts, last.attempt, "{id}: Redis counted other attempts than ran: {runs:?}\n{info:?}");
        assert_eq!(info.attempt_log.len(), info.attempts as usize, "{info:?}");
        for (i, a) in info.attempt_log[..info.attempt_log.len() - 1].iter().enumerate() {
            let err = a.error.as_deref().unwrap_or_default();
            assert!(err.contains("lease expired"), "{id}: attempt {} ended otherwise: {err:?}\n{info:?}", i + 1);
        }
        for pair in runs.windows(2) {
            let again = pair[0].attempt == pair[1].attempt && killed.contains(&pair[0].pid);
            assert!(pair[0].attempt < pair[1].attempt || again, "{id}: two runs of one attempt: {runs:?}");
            if again {
                out.same_attempt_again += 1;
            }
        }
        for r in runs {
            let in_killed = killed.contains(&r.pid);
            if r.end_ms.is_none() {
                assert!(in_killed, "{id}: a run that never ended, in a process that was not killed: {runs:?}");
                out.interrupted += 1;
            } else if r != last {
                assert!(in_killed, "{id}: ran again after a run in a live process ended: {runs:?}");
                out.ended_unrecorded += 1;
            }
        }
        if runs.len() > 1 {
            out.ran_again += 1;
        }
        let attempts_ran: std::collections::BTreeSet<u32> = runs.iter().map(|r| r.attempt).collect();
        out.never_started += (info.attempts as usize).saturating_sub(attempts_ran.len());
    }
    out
}
