//! The pool's side: [`Children`], the warm set of sandbox children, and
//! one attempt run in one of them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child as Process, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::limits::ChildLimits;
use super::serve::{epoch_ms, CHILD_ENV};
use super::settings::Sandbox;
use super::wire::{self, Reply, Request, WireError};
use super::SandboxError;
use crate::context::JobContext;
use crate::error::JobError;
use crate::payload::PayloadFormat;
use crate::registry::RunError;

/// How long a child that was asked to end (its input closed) may take
/// before it is killed.
const RETIRE_GRACE: Duration = Duration::from_secs(5);
/// How long the end of a dead child's standard error is awaited for its
/// last line.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// One attempt's end as the worker's glue reports it, or a failure text
/// (a timeout, a dead child) for a retryable failed attempt.
pub(crate) type Ran = Result<Result<Option<Vec<u8>>, RunError>, String>;

/// The children of one pool: the idle ones kept warm, and how to start
/// more.
pub(crate) struct Children {
    settings: Sandbox,
    program: PathBuf,
    args: Vec<OsString>,
    limits_env: String,
    idle: Mutex<Vec<Child>>,
    starting: AtomicUsize,
    closed: AtomicBool,
    /// Called for each child that died or was killed (the pool's metrics).
    on_restart: Option<RestartHook>,
}

/// What a pool does when a child dies or is killed.
pub(crate) type RestartHook = Box<dyn Fn() + Send + Sync>;

/// One started child.
struct Child {
    process: Process,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// The last line the child wrote to standard error.
    last_line: Arc<Mutex<String>>,
    stderr: JoinHandle<()>,
    attempts: u32,
}

impl Children {
    /// The children of a pool with `settings`: checks that the program can
    /// be found and, without network, that this machine allows a network
    /// namespace. Starts nothing yet ([`Children::warm_up`]).
    pub(crate) fn new(settings: Sandbox, on_restart: Option<RestartHook>) -> Result<Arc<Self>, SandboxError> {
        let (program, args) = match &settings.program {
            Some((p, a)) => (p.clone(), a.clone()),
            None => (std::env::current_exe().map_err(SandboxError::Program)?, std::env::args_os().skip(1).collect()),
        };
        if !settings.network {
            check_network_namespace()?;
        }
        let limits = ChildLimits { memory: settings.memory, open_files: settings.open_files };
        // Two plain optional numbers: serializing them cannot fail.
        let limits_env = serde_json::to_string(&limits).unwrap_or_default();
        Ok(Arc::new(Children {
            settings,
            program,
            args,
            limits_env,
            idle: Mutex::new(Vec::new()),
            starting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            on_restart,
        }))
    }

    /// Counts a child that died or was killed (and so is replaced).
    fn count_restart(&self) {
        if let Some(hook) = &self.on_restart {
            hook();
        }
    }

    /// Starts children in the background until the warm set is full.
    pub(crate) fn warm_up(self: &Arc<Self>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let have = self.idle().len() + self.starting.load(Ordering::Acquire);
        for _ in have..self.settings.warm {
            self.starting.fetch_add(1, Ordering::AcqRel);
            let this = self.clone();
            tokio::spawn(async move {
                let started = this.start().await;
                this.starting.fetch_sub(1, Ordering::AcqRel);
                match started {
                    Ok(child) => this.check_in(child),
                    Err(e) => tracing::warn!(error = %e, "sandbox: could not start a warm child"),
                }
            });
        }
    }

    /// Ends every idle child and starts no more; running ones end with
    /// their attempts.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for child in std::mem::take(&mut *self.idle()) {
            retire(child);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        // A list of children cannot be left half-changed by a panic.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one attempt in a child: a warm one when there is one, else a
    /// new one. The attempt ends at its reply, its timeout, the job's
    /// cancellation (both kill the child) or the child's death.
    pub(crate) async fn run(
        self: &Arc<Self>,
        ctx: &JobContext,
        format: PayloadFormat,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Ran {
        let mut child = match self.check_out().await {
            Ok(c) => c,
            Err(e) => return Err(format!("sandbox: {e}")),
        };
        let req = Request {
            id: ctx.job_id().to_string(),
            name: ctx.job_name().to_owned(),
            attempt: ctx.attempt(),
            max_retries: ctx.max_retries(),
            enqueued_ms: epoch_ms(ctx.enqueued_at()),
            format,
            cpu_secs: self.settings.cpu_time.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
            flow: ctx.flow_place().cloned(),
        };
        let exchange = async {
            wire::write(&mut child.stdin, &req, payload).await?;
            loop {
                match wire::read::<Reply>(&mut child.stdout).await? {
                    // Stored by the attempt's writer, rate-limited as any
                    // job's; a value it cannot store is not the child's
                    // concern.
                    (Reply::Progress { fraction, note }, _) => {
                        let _ = ctx.progress(fraction, note).await;
                    }
                    end => return Ok::<_, WireError>(end),
                }
            }
        };
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let replied = tokio::select! {
            r = exchange => r,
            () = deadline => {
                self.kill(child).await;
                // `timeout` is set: only its sleep ends.
                let t = timeout.unwrap_or_default();
                return Err(format!("timed out after {}; the sandbox child was killed", humantime::format_duration(t)));
            }
            () = ctx.cancelled() => {
                self.kill(child).await;
                return Err("cancelled; the sandbox child was killed".into());
            }
        };
        match replied {
            Ok((Reply::Succeeded { has_result }, body)) => {
                self.done(child);
                Ok(Ok(has_result.then_some(body)))
            }
            Ok((Reply::Failed { error, retryable, snooze_ms, holds_group }, _)) => {
                self.done(child);
                Ok(Err(RunError::Job(job_error(error, retryable, snooze_ms, holds_group))))
            }
            Ok((other, _)) => {
                self.kill(child).await;
                Err(format!("sandbox: the child broke the protocol (it sent {other:?})"))
            }
            Err(e) => Err(self.died(child, &e).await),
        }
    }

    /// A child for one attempt, and a replacement started in its place.
    async fn check_out(self: &Arc<Self>) -> Result<Child, SandboxError> {
        let warm = loop {
            let Some(mut child) = self.idle().pop() else { break None };
            match child.process.try_wait() {
                Ok(None) => break Some(child),
                // Died while idle (killed from outside): replaced.
                _ => {
                    self.count_restart();
                    reap(child);
                }
            }
        };
        self.warm_up();
        match warm {
            Some(child) => Ok(child),
            None => self.start().await,
        }
    }

    /// Starts one child and waits until it says it is ready.
    async fn start(&self) -> Result<Child, SandboxError> {
        let mut cmd = if self.settings.network {
            Command::new(&self.program)
        } else {
            let mut c = Command::new("unshare");
            c.args(["--net", "--map-root-user", "--"]).arg(&self.program);
            c
        };
        cmd.args(&self.args)
            .env(CHILD_ENV, &self.limits_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut process = cmd.spawn().map_err(|e| SandboxError::Spawn(self.program.display().to_string(), e))?;
        let pid = process.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (process.stdin.take(), process.stdout.take(), process.stderr.take())
        else {
            // All three were asked for as pipes just above.
            return Err(SandboxError::Spawn(self.program.display().to_string(), std::io::ErrorKind::BrokenPipe.into()));
        };
        let last_line = Arc::new(Mutex::new(String::new()));
        let stderr = tokio::spawn(forward_stderr(stderr, pid, last_line.clone()));
        let mut child = Child { process, stdin, stdout, last_line, stderr, attempts: 0 };
        let program = self.program.display().to_string();
        match tokio::time::timeout(self.settings.start_timeout, wire::read::<Reply>(&mut child.stdout)).await {
            Ok(Ok((Reply::Ready, _))) => Ok(child),
            Ok(Ok((Reply::Refused { error }, _))) => {
                reap(child);
                Err(SandboxError::Refused(error))
            }
            _ => {
                let _ = child.process.kill().await;
                Err(SandboxError::NotServing { program, waited: self.settings.start_timeout })
            }
        }
    }

    /// A child whose attempt ended with a reply: kept warm, or ended when
    /// it ran its share of attempts or the warm set is full.
    fn done(self: &Arc<Self>, mut child: Child) {
        child.attempts += 1;
        if child.attempts >= self.settings.jobs_per_child {
            retire(child);
            self.warm_up();
        } else {
            self.check_in(child);
        }
    }

    fn check_in(&self, child: Child) {
        let mut idle = self.idle();
        if self.closed.load(Ordering::Acquire) || idle.len() >= self.settings.warm {
            drop(idle);
            retire(child);
        } else {
            idle.push(child);
        }
    }

    /// Kills a child at once (a timeout, a cancellation) and reaps it.
    async fn kill(self: &Arc<Self>, mut child: Child) {
        self.count_restart();
        let _ = child.process.kill().await;
        child.stderr.abort();
        self.warm_up();
    }

    /// The reason a child that stopped answering gives for its attempt,
    /// once it is reaped.
    async fn died(self: &Arc<Self>, mut child: Child, error: &WireError) -> String {
        self.count_restart();
        self.warm_up();
        let status = match tokio::time::timeout(RETIRE_GRACE, child.process.wait()).await {
            Ok(Ok(status)) => status,
            // Alive but not answering (it closed its channel): ended here.
            _ => {
                let _ = child.process.kill().await;
                return format!("sandbox: the child stopped answering ({error}) and was killed");
            }
        };
        let _ = tokio::time::timeout(LAST_WORDS, &mut child.stderr).await;
        let last = child.last_line.lock().unwrap_or_else(PoisonError::into_inner).clone();
        super::exit::reason(status, self.settings.cpu_time, &last)
    }
}

/// Asks a child to end (its input closes) and reaps it in the
/// background, killing it when it does not end in time.
fn retire(child: Child) {
    let Child { mut process, stdin, .. } = child;
    drop(stdin);
    tokio::spawn(async move {
        if tokio::time::timeout(RETIRE_GRACE, process.wait()).await.is_err() {
            let _ = process.kill().await;
        }
    });
}

/// Reaps a child that has ended or is ending.
fn reap(child: Child) {
    let Child { mut process, .. } = child;
    tokio::spawn(async move {
        let _ = process.kill().await;
    });
}

/// Copies a child's standard error to the worker's, line by line, keeping
/// the last line that says something for the reason of a death.
async fn forward_stderr(stderr: tokio::process::ChildStderr, pid: u32, last_line: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[sandbox child {pid}] {line}");
        if says_something(&line) {
            *last_line.lock().unwrap_or_else(PoisonError::into_inner) = line;
        }
    }
}

/// Whether a line of a child's standard error can tell why it died: not
/// blank, and not a line of a backtrace (indented frames, its header and
/// its closing note), which `RUST_BACKTRACE` adds after the message.
fn says_something(line: &str) -> bool {
    !(line.trim().is_empty()
        || line.starts_with(char::is_whitespace)
        || line.starts_with("stack backtrace:")
        || line.starts_with("note: "))
}

/// A child's failed attempt as the job's error, with its classification.
fn job_error(error: String, retryable: bool, snooze_ms: Option<u64>, holds_group: bool) -> JobError {
    match snooze_ms {
        Some(ms) if holds_group => JobError::rate_limited(Duration::from_millis(ms)),
        Some(ms) => JobError::retry_in_because(Duration::from_millis(ms), error),
        None if retryable => JobError::retryable(error),
        None => JobError::permanent(error),
    }
}

/// Whether this machine lets an unprivileged process have a network
/// namespace of its own, by asking `unshare` for one.
fn check_network_namespace() -> Result<(), SandboxError> {
    let out = std::process::Command::new("unshare")
        .args(["--net", "--map-root-user", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .map_err(|e| SandboxError::NoNetworkIsolation(format!("cannot run `unshare` (util-linux): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::NoNetworkIsolation(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backtrace_is_not_a_reason_and_the_message_before_it_is() {
        let stderr =
            "memory allocation of 64 bytes failed\nstack backtrace:\n   0: std::alloc\n             at x.rs:1\n\
                      note: Some details are omitted\n\n";
        let last = stderr.lines().rfind(|l| says_something(l));
        assert_eq!(last, Some("memory allocation of 64 bytes failed"));
    }

    #[test]
    fn a_snooze_and_a_permanent_error_keep_their_classification() {
        let snooze = job_error("later".into(), true, Some(1500), false);
        assert_eq!(snooze.snooze_for(), Some(Duration::from_millis(1500)));
        assert!(!job_error("bad input".into(), false, None, false).is_retryable());
        let retry = job_error("flaky".into(), true, None, false);
        assert!(retry.is_retryable());
        assert_eq!(retry.to_string(), "flaky");
    }
}
