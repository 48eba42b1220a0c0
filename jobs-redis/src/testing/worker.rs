//! Worker processes for crash tests: the `jobs-redis-test-worker` binary,
//! killed with signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A worker process (a pool of 4 on one queue), SIGKILLed when dropped.
/// Its stderr (the pool's warnings) goes to a temporary file, removed on
/// drop.
pub struct WorkerProcess {
    child: Child,
    stderr: PathBuf,
}

impl WorkerProcess {
    /// Starts `exe` (pass `env!("CARGO_BIN_EXE_jobs-redis-test-worker")`
    /// from an integration test) on `queue` of the Redis at `url`.
    pub fn spawn(exe: &str, url: &str, queue: &str, lease: Duration) -> WorkerProcess {
        Self::start(exe, url, queue, lease, None)
    }

    /// [`WorkerProcess::spawn`], with its [`CrashJob`](super::CrashJob)
    /// handlers appending to the run log at `run_log` (see
    /// [`RunLog`](super::RunLog)).
    pub fn spawn_with_run_log(exe: &str, url: &str, queue: &str, lease: Duration, run_log: &Path) -> WorkerProcess {
        Self::start(exe, url, queue, lease, Some(run_log))
    }

    /// Starts a worker process from a command the caller built (other
    /// arguments, an environment such as a preloaded libfaketime); stdin
    /// and stdout closed, stderr kept as for [`WorkerProcess::spawn`].
    pub fn spawn_command(mut cmd: Command) -> WorkerProcess {
        let stderr = Self::stderr_file();
        let file = std::fs::File::create(&stderr)
            .unwrap_or_else(|e| panic!("cannot create the worker's stderr file {}: {e}", stderr.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the worker process {cmd:?}: {e}"));
        WorkerProcess { child, stderr }
    }

    /// A fresh path for a worker's stderr.
    fn stderr_file() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("jobs-redis-worker-{}-{n}.stderr", std::process::id()))
    }

    fn start(exe: &str, url: &str, queue: &str, lease: Duration, run_log: Option<&Path>) -> WorkerProcess {
        let mut cmd = Command::new(exe);
        cmd.args([url, queue, &lease.as_millis().to_string()]);
        if let Some(path) = run_log {
            cmd.env("JOBS_REDIS_TEST_RUN_LOG", path);
        }
        Self::spawn_command(cmd)
    }

    /// Its process id (as the run log names it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far: the pool's warnings, one a line.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {}", self.child.id());
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.stderr);
    }
}
