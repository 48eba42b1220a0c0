//! Sandboxed execution: jobs declared `#[job(sandbox)]` run each attempt in
//! a child process of the worker, under limits on memory, CPU time and
//! open files, and optionally without network. (Feature `sandbox`, Unix.)
//!
//! A child that crashes (a segfault in native code, an abort, the memory
//! limit), exceeds its CPU time or hangs past the job's timeout ends that
//! attempt as a failed one, with the reason in the job's attempt log
//! (`sandbox: the child was killed by SIGSEGV (invalid memory access)`);
//! the pool and its other jobs go on. Retries apply as to any failure.
//!
//! The child is the worker's own executable, started again with the same
//! arguments and [`CHILD_ENV`] set, so the jobs it runs are the ones the
//! worker links. Such a program calls [`serve_if_child`] first thing in
//! `main` (or [`child`], to give the jobs their [`Data<T>`](crate::Data)
//! values); a pool refuses to start in a process that was started as a
//! child, and an attempt fails with a message naming the fix when the
//! program does not answer as a child.
//!
//! The pool keeps a few idle children started ([`Sandbox::warm_children`]),
//! runs one attempt at a time in each, and replaces a child that died, was
//! killed, or ran [`Sandbox::jobs_per_child`] attempts. Cancelling a job or
//! shutting the pool down past its grace period kills the child running it;
//! every child is reaped.
//!
//! A child's job reports its progress as any job does
//! ([`JobContext::progress`](crate::JobContext::progress)): the child sends
//! each report to the pool, whose writer stores it. What it does not have
//! is the pool's queue handle
//! ([`JobContext::queue_handle`](crate::JobContext::queue_handle) is
//! `None`): a job that enqueues others does not belong in the sandbox.
//!
//! ```no_run
//! use jobs_core::prelude::*;
//! use jobs_core::sandbox::Sandbox;
//!
//! /// Decodes an uploaded image: untrusted input for a native decoder.
//! #[job(queue = "files", timeout = "1m", sandbox)]
//! async fn thumbnail(path: String) -> Result<(), JobError> {
//!     # let _ = path;
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     jobs_core::sandbox::serve_if_child();
//!     let rt = tokio::runtime::Runtime::new()?;
//!     rt.block_on(async {
//!         let queue = MemoryQueue::new();
//!         let pool = WorkerPool::builder(queue)
//!             .sandbox(Sandbox::default().memory_limit(Some(512 << 20)).network(false))
//!             .start()?;
//!         pool.run_until(jobs_core::shutdown_signal()?).await?;
//!         Ok(())
//!     })
//! }
//! ```

mod children;
mod exit;
mod limits;
mod serve;
mod settings;
mod wire;

pub(crate) use children::{Children, RestartHook};
pub use serve::{child, is_child, serve_if_child, SandboxChild, CHILD_ENV};
pub use settings::{Sandbox, DEFAULT_JOBS_PER_CHILD, DEFAULT_MEMORY_LIMIT, DEFAULT_OPEN_FILES, DEFAULT_WARM_CHILDREN};

/// Why sandbox children cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// This process's executable cannot be found, to start it as a child.
    #[error("cannot find this process's executable to start it as a sandbox child: {0}")]
    Program(#[source] std::io::Error),
    /// The child program could not be started.
    #[error("cannot start the sandbox child `{0}`: {1}")]
    Spawn(String, #[source] std::io::Error),
    /// [`Sandbox::network`] is `false`, and this machine does not allow a
    /// network namespace.
    #[error(
        "the sandbox is set to run without network, but this machine does not allow a network namespace \
         (`unshare --net --map-root-user`): {0}; allow unprivileged user namespaces, or set `network(true)`"
    )]
    NoNetworkIsolation(String),
    /// The child could not set itself up (a limit was refused), and said why.
    #[error("the sandbox child could not set itself up: {0}")]
    Refused(String),
    /// The child program did not say it was ready in time: it does not
    /// serve children.
    #[error(
        "`{program}` did not answer as a sandbox child within {}: call `jobs_core::sandbox::serve_if_child()` \
         first thing in its `main` (or give the pool a program that does, with `Sandbox::program`)",
        humantime::format_duration(*waited)
    )]
    NotServing {
        /// The program started.
        program: String,
        /// How long it was given.
        waited: std::time::Duration,
    },
}
