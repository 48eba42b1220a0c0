//! The child's side: [`serve_if_child`] and [`SandboxChild`].
//!
//! A child is the worker's own executable started again with
//! [`CHILD_ENV`] set. It sets its limits on itself, moves its standard
//! output to standard error (so that what a job prints cannot corrupt the
//! replies, which go to the original standard output), says it is ready,
//! and then runs one attempt per request from its standard input until the
//! pool closes it.

use std::collections::HashMap;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::limits::{limit_cpu_from_now, ChildLimits};
use super::wire::{self, Reply, Request, WireError};
use crate::context::{Extensions, JobContext};
use crate::registry::{JobDescriptor, RunError};

/// The environment variable that makes a process a sandbox child (its
/// value carries the limits, as JSON). Set by the pool only.
pub const CHILD_ENV: &str = "JOBS_SANDBOX_CHILD";

/// The exit code of a child that could not set itself up (it says why on
/// its standard error and to the pool).
const SETUP_FAILED: i32 = 70;

/// Whether this process was started as a sandbox child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Serves as a sandbox child when this process was started as one, and
/// never returns then; returns at once otherwise.
///
/// Call it first thing in `main` of every program that runs a pool with
/// sandboxed jobs (before a runtime, a server or anything else starts):
/// the pool starts its own executable as the child, with the same
/// arguments. A job that takes [`Data<T>`](crate::Data) needs its value in
/// the child too: use [`child`] and [`SandboxChild::data`] instead.
///
/// ```no_run
/// fn main() {
///     jobs_core::sandbox::serve_if_child();
///     run_the_worker();
/// }
/// # fn run_the_worker() {}
/// ```
pub fn serve_if_child() {
    if let Some(child) = child() {
        child.serve()
    }
}

/// The sandbox child this process was started as, or `None` for any other
/// process. Give it the values the sandboxed jobs take, then
/// [`serve`](SandboxChild::serve).
pub fn child() -> Option<SandboxChild> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    let limits = serde_json::from_str(&spec).map_err(|e| format!("{CHILD_ENV} is not what a pool sets: {e}"));
    Some(SandboxChild { limits, data: Extensions::default() })
}

/// A process started as a sandbox child, before it serves ([`child`]).
pub struct SandboxChild {
    limits: Result<ChildLimits, String>,
    data: Extensions,
}

impl std::fmt::Debug for SandboxChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxChild").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl SandboxChild {
    /// Shares a value with the jobs this child runs, as
    /// [`WorkerPoolBuilder::data`](crate::WorkerPoolBuilder::data) does in
    /// the worker.
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// Shares every value of `data` with the jobs this child runs.
    pub fn extensions(mut self, data: Extensions) -> Self {
        self.data.extend(data);
        self
    }

    /// Sets the limits, serves the pool's requests until it closes the
    /// child, and ends the process. Callable from inside an async runtime:
    /// the jobs run on a thread and runtime of their own.
    pub fn serve(self) -> ! {
        let code = match std::thread::Builder::new().name("jobs-sandbox".into()).spawn(move || self.run()) {
            Ok(thread) => thread.join().unwrap_or(SETUP_FAILED),
            Err(e) => {
                eprintln!("jobs sandbox child: cannot start its thread: {e}");
                SETUP_FAILED
            }
        };
        std::process::exit(code)
    }

    fn run(self) -> i32 {
        // The replies' channel is the original standard output; from here
        // on what the job prints goes to standard error.
        let replies = match rustix::io::dup(rustix::stdio::stdout())
            .and_then(|fd| rustix::stdio::dup2_stdout(rustix::stdio::stderr()).map(|()| File::from(fd)))
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("jobs sandbox child: cannot set up its channel: {e}");
                return SETUP_FAILED;
            }
        };
        let ready = self
            .limits
            .and_then(|l| l.apply().map_err(|e| e.to_string()))
            .and_then(|()| die_with_parent().map_err(|e| format!("cannot tie its life to the worker's: {e}")))
            .and_then(|()| crate::registry::registry().map_err(|e| e.to_string()))
            .and_then(|registry| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build its runtime: {e}"))?;
                Ok((registry, rt))
            });
        let (registry, rt) = match ready {
            Ok(r) => r,
            Err(error) => {
                eprintln!("jobs sandbox child: {error}");
                let _ = wire::write_sync(&mut &replies, &Reply::Refused { error }, &[]);
                return SETUP_FAILED;
            }
        };
        if wire::write_sync(&mut &replies, &Reply::Ready, &[]).is_err() {
            return SETUP_FAILED;
        }
        // The job's progress goes out between the attempt's start and its
        // end, on the same channel; a lock keeps each frame whole.
        let replies = Arc::new(Mutex::new(replies));
        let data = Arc::new(self.data);
        let mut requests = std::io::stdin().lock();
        loop {
            let (req, payload): (Request, Vec<u8>) = match wire::read_sync(&mut requests) {
                Ok(r) => r,
                // The pool closed the child: the normal end.
                Err(WireError::Closed) => return 0,
                Err(e) => {
                    eprintln!("jobs sandbox child: reading a request: {e}");
                    return SETUP_FAILED;
                }
            };
            let (reply, body) = attempt(&rt, &registry, &data, &replies, req, &payload);
            if wire::write_sync(&mut *lock(&replies), &reply, &body).is_err() {
                return 0;
            }
        }
    }
}

/// Has the kernel kill this child when the worker dies, however it dies
/// (a `SIGKILL` runs no clean-up): no attempt outlives its pool.
#[cfg(target_os = "linux")]
fn die_with_parent() -> rustix::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    // The worker may have died before the call: then the child is an
    // orphan already, and ends.
    if std::os::unix::process::parent_id() == 1 {
        std::process::exit(SETUP_FAILED);
    }
    Ok(())
}

/// Elsewhere the child ends when its input closes, after the attempt it
/// runs.
#[cfg(not(target_os = "linux"))]
fn die_with_parent() -> rustix::io::Result<()> {
    Ok(())
}

/// Runs one attempt to its end, as the worker's glue would.
fn attempt(
    rt: &tokio::runtime::Runtime,
    registry: &HashMap<&'static str, &'static JobDescriptor>,
    data: &Arc<Extensions>,
    replies: &Arc<Mutex<File>>,
    req: Request,
    payload: &[u8],
) -> (Reply, Vec<u8>) {
    let failed = |error: String, retryable: bool| {
        (Reply::Failed { error, retryable, snooze_ms: None, holds_group: false }, Vec::new())
    };
    let Some(desc) = registry.get(req.name.as_str()).copied() else {
        return failed(format!("no handler for job `{}` in the sandbox child", req.name), false);
    };
    let id = match req.id.parse() {
        Ok(id) => id,
        Err(e) => return failed(format!("the pool sent a bad job id: {e}"), false),
    };
    if let Some(secs) = req.cpu_secs {
        if let Err(e) = limit_cpu_from_now(secs) {
            return failed(e.to_string(), true);
        }
    }
    let enqueued_at = UNIX_EPOCH + Duration::from_millis(req.enqueued_ms);
    // Cancellation reaches a child by its end (the pool kills it), so the
    // token is never signalled here.
    let ctx = JobContext::new(id, req.name, req.attempt, req.max_retries, enqueued_at, CancellationToken::new())
        .with_pool(data.clone(), None)
        .with_flow_place(req.flow)
        .with_progress_sink(progress_sink(replies.clone()));
    let ran = catch_unwind(AssertUnwindSafe(|| rt.block_on((desc.run)(ctx, req.format, payload))));
    match ran {
        Ok(Ok(result)) => (Reply::Succeeded { has_result: result.is_some() }, result.unwrap_or_default()),
        Ok(Err(e)) => run_error(&e),
        Err(panic) => failed(crate::error::panic_message(panic), true),
    }
}

/// Sends each progress report to the pool as it is made. A pool that no
/// longer listens ends the child soon: the report is dropped meanwhile.
fn progress_sink(replies: Arc<Mutex<File>>) -> crate::context::ProgressSink {
    Arc::new(move |fraction, note| {
        let _ = wire::write_sync(&mut *lock(&replies), &Reply::Progress { fraction, note }, &[]);
    })
}

/// The channel to the pool; a frame is written whole or not at all, so a
/// panic while it was held leaves it usable.
fn lock(replies: &Mutex<File>) -> std::sync::MutexGuard<'_, File> {
    replies.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A job's error as the reply that carries its retry classification.
fn run_error(e: &RunError) -> (Reply, Vec<u8>) {
    let reply = Reply::Failed {
        error: crate::error::bounded_message(e.to_string()),
        retryable: e.is_retryable(),
        snooze_ms: e.snooze_for().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        holds_group: e.holds_group(),
    };
    (reply, Vec::new())
}

/// The milliseconds since the Unix epoch of `t` (0 before it).
pub(crate) fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
