//! Worker processes for crash tests: the `jobs-redis-test-worker` binary,
//! killed with signals.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A worker process (a pool of 4 on one queue), SIGKILLed when dropped.
pub struct WorkerProcess(Child);

impl WorkerProcess {
    /// Starts `exe` (pass `env!("CARGO_BIN_EXE_jobs-redis-test-worker")`
    /// from an integration test) on `queue` of the Redis at `url`.
    pub fn spawn(exe: &str, url: &str, queue: &str, lease: Duration) -> WorkerProcess {
        let child = Command::new(exe)
            .args([url, queue, &lease.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the worker process {exe}: {e}"));
        WorkerProcess(child)
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.0.id().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {}", self.0.id());
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
