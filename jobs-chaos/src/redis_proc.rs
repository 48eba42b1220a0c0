//! [`RedisProc`]: the run's own `redis-server`, with the append-only file on,
//! that the run can kill (SIGKILL), freeze (SIGSTOP) and start again on the
//! same port and directory.
//!
//! The server runs under a small `sh` guard that SIGKILLs it when our end of
//! a pipe closes, so it never outlives the chaos program, even when that
//! program is itself killed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Fsync;
use crate::error::ChaosError;

/// How long a (re)started server may take to answer `PING`, loading its
/// append-only file included.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `redis-server` with `appendonly yes`, on a loopback port of its own.
#[derive(Debug)]
pub struct RedisProc {
    bin: String,
    port: u16,
    dir: PathBuf,
    fsync: Fsync,
    proc: Option<Guarded>,
    /// Remove `dir` on drop (it was made by [`RedisProc::start_temp`]).
    owns_dir: bool,
}

/// The guard process and the server it runs.
#[derive(Debug)]
struct Guarded {
    guard: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Guarded {
    /// Closing the guard's stdin makes it SIGKILL the server; then it exits.
    fn kill(mut self) {
        drop(self.stdin.take());
        let _ = self.guard.wait();
    }
}

impl RedisProc {
    /// Starts `bin` in `dir` (created if missing) on a free loopback port
    /// and waits until it answers `PING`.
    pub fn start(bin: &str, dir: &Path, fsync: Fsync) -> Result<RedisProc, ChaosError> {
        std::fs::create_dir_all(dir).map_err(|e| ChaosError::io(dir, e))?;
        let mut last = None;
        // A port found free may be taken before the server binds it: retry.
        for _ in 0..5 {
            let port = free_port().map_err(|e| ChaosError::io(dir, e))?;
            let mut r =
                RedisProc { bin: bin.to_owned(), port, dir: dir.to_owned(), fsync, proc: None, owns_dir: false };
            match r.start_again() {
                Ok(()) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ChaosError::Config("redis-server did not start".into())))
    }

    /// Starts a server in a fresh temporary directory, removed when the
    /// server is dropped. The binary is `JOBS_REDIS_SERVER`, else
    /// `redis-server`.
    pub fn start_temp(fsync: Fsync) -> Result<RedisProc, ChaosError> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jobs-chaos-redis-{}-{n}", std::process::id()));
        let bin = std::env::var("JOBS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let mut r = Self::start(&bin, &dir, fsync)?;
        r.owns_dir = true;
        Ok(r)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its directory (append-only files and `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    /// Kills the server with SIGKILL and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the server (again) on its port and directory: with the
    /// append-only file, its data comes back. Waits until it answers `PING`.
    pub fn start_again(&mut self) -> Result<(), ChaosError> {
        self.kill();
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let args = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &dir,
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync.as_str(),
        ];
        // The guard: start the server, report its pid, wait for our end of
        // stdin to close (drop, exit or death of this process), kill it.
        let script = r#""$0" "$@" & pid=$!; echo $pid; read _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"#;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&self.bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ChaosError::Spawn { program: "sh".into(), source })?;
        let mut line = String::new();
        if let Some(out) = guard.stdout.take() {
            BufReader::new(out).read_line(&mut line).map_err(|e| ChaosError::io(&self.dir, e))?;
        }
        let stdin = guard.stdin.take();
        let pid: u32 = match line.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                Guarded { guard, stdin, pid: 0 }.kill();
                return Err(ChaosError::Config(format!("no pid from the redis-server guard: {line:?}")));
            }
        };
        self.proc = Some(Guarded { guard, stdin, pid });
        let started = Instant::now();
        while !self.answers_ping() {
            let gone = !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
            if gone || started.elapsed() > START_TIMEOUT {
                self.kill();
                return Err(ChaosError::RedisStart {
                    port: self.port,
                    waited: started.elapsed(),
                    log: self.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends a signal (`"STOP"`, `"CONT"`) to the server.
    pub fn signal(&self, sig: &str) -> Result<(), ChaosError> {
        match self.pid() {
            Some(pid) => send_signal(pid, sig),
            None => Err(ChaosError::Config("redis-server is not running".into())),
        }
    }

    /// Whether it answers `PING` with `PONG` (not `LOADING`).
    pub fn answers_ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(300)) else { return false };
        let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
        redis::cmd("PING").query::<String>(&mut conn).is_ok_and(|p| p == "PONG")
    }

    /// The last `n` lines of `redis.log`.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// How often Redis logged that a background `fsync` was slow enough for
    /// it to postpone writing the append-only file (`everysec` only): the
    /// window in which a crash of the process can lose acknowledged writes.
    pub fn postponed_fsyncs(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains("Asynchronous AOF fsync is taking too long")).count()
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A free loopback port.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `kill -<sig> <pid>` (the workspace forbids `unsafe`, so no `libc::kill`).
pub(crate) fn send_signal(pid: u32, sig: &str) -> Result<(), ChaosError> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| ChaosError::Spawn { program: "kill".into(), source })?;
    if status.success() {
        Ok(())
    } else {
        Err(ChaosError::Config(format!("kill -{sig} {pid} failed ({status})")))
    }
}
