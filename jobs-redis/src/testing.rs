//! A throwaway `redis-server` for tests (feature `testing`).
//!
//! [`RedisServer::start`] runs `redis-server` on a free loopback port in a
//! fresh temporary directory, waits until it answers `PING`, and stops it
//! when dropped. [`shared_server_url`] starts one per test binary and shares
//! it (tests keep apart by using queue names of their own).
//!
//! The server runs under a small `sh` guard that kills it when this process's
//! end of a pipe closes, so it never outlives the test binary, even when
//! that binary is killed or its server is a `static` (statics are never
//! dropped).
//!
//! A missing `redis-server` is a panic that says what to install, never a
//! skipped test. `JOBS_REDIS_SERVER` names another binary.
//!
//! [`RedisCluster`] starts a Redis Cluster of such servers (three masters,
//! no replicas) with `redis-cli --cluster create`; [`shared_cluster`] shares
//! one per test binary. Servers can also listen for TLS
//! ([`ServerOptions::tls`]), be stopped and started again
//! ([`RedisServer::kill`], [`RedisServer::restart`]) or frozen
//! ([`RedisServer::signal`] with `STOP` and `CONT`).
//!
//! [`clock`] has a job that keeps a run log of its own, for the tests of
//! worker processes whose clocks are set off (`tests/clock.rs`). Like the
//! conformance suite's jobs it stays out of the registry until a worker
//! asks for it with [`use_test_jobs`].
//!
//! [`WorkerProcess`] runs the `jobs-redis-test-worker` binary for the crash
//! tests; its [`CrashJob`] handlers write a [`RunLog`] (what each process's
//! handlers actually ran, whatever Redis counted), which
//! [`check_kill_runs`] holds against the jobs' state after kills. Its
//! [`deadlog::FailingJob`]s fail on every attempt, and its `on_dead`
//! handler writes a [`deadlog`], for the error-reporter test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test support: a failure is a test failure.

pub mod clock;
mod cluster;
pub mod deadlog;
pub mod runlog;
pub mod service;
mod worker;

pub use cluster::{shared_cluster, RedisCluster};
pub use runlog::{
    check_kill_runs, kill_in_turn, start_long_run, CrashJob, GroupedCrashJob, KillRuns, Ran, Run, RunLog,
};
pub use worker::WorkerProcess;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Adds this module's jobs ([`clock::ClockJob`]) to the registries, pools
/// and schedulers this process builds from now on. They are linked into
/// every binary built with the `testing` feature but left out of the
/// link-time registry, so a program built in the same workspace never runs
/// them. Calling it again changes nothing; the conformance suite's jobs
/// have their own switch, `jobs_core::testing::use_suite_jobs`.
pub fn use_test_jobs() {
    jobs_core::backend::add_descriptors(&[clock::ClockJob::__jobs_descriptor(), service::CallJob::__jobs_descriptor()]);
}

/// How a test server is started.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Persist with the append-only file (`appendonly yes`, `appendfsync
    /// always`), for tests that restart Redis and expect their data back.
    pub appendonly: bool,
    /// Require this password (`requirepass`).
    pub password: Option<String>,
    /// Also listen for TLS, with these files.
    pub tls: Option<ServerTls>,
    /// Run as a Redis Cluster node (`cluster-enabled yes`); see
    /// [`RedisCluster`].
    pub cluster: bool,
}

/// The TLS side of a test server: `--tls-port` (a second, free port) with
/// these PEM files.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server's certificate.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// The CA that signed client certificates.
    pub ca_file: PathBuf,
    /// Whether clients must present a certificate (`tls-auth-clients yes`),
    /// else it is optional.
    pub require_client_cert: bool,
}

/// A running `redis-server`, stopped (SIGKILL) and its directory removed on
/// drop.
#[derive(Debug)]
pub struct RedisServer {
    proc: Proc,
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    options: ServerOptions,
}

/// The guard process and the server it runs.
#[derive(Debug)]
struct Proc {
    guard: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Proc {
    /// Closing the guard's stdin makes it SIGKILL the server; then it exits.
    fn kill(&mut self) {
        drop(self.stdin.take());
        let _ = self.guard.wait();
    }
}

/// Removes directories of earlier test processes that are gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("jobs-redis-test-") else { continue };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

static DIRS: AtomicU64 = AtomicU64::new(0);

/// The binary to run.
fn server_binary() -> String {
    let bin = std::env::var("JOBS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let found = Command::new(&bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    match found {
        Ok(s) if s.success() => bin,
        _ => panic!(
            "`{bin}` cannot be run: the jobs-redis tests need a Redis server (6.2 or newer). \
             Install it (`apt-get install redis-server`) or set JOBS_REDIS_SERVER to its path."
        ),
    }
}

/// A loopback port that refuses connections for as long as the value
/// lives: bound but not listening, so no server another test starts can
/// take it, as it could a port found free and let go before it is used.
#[derive(Debug)]
pub struct RefusingPort(tokio::net::TcpSocket);

impl RefusingPort {
    /// Binds one.
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("a free loopback port");
        RefusingPort(socket)
    }

    /// Its number.
    pub fn port(&self) -> u16 {
        self.0.local_addr().expect("bound").port()
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// Whether a server answers PING on this port (with this password).
fn answers_ping(port: u16, password: Option<&str>) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut req = String::new();
    if let Some(p) = password {
        req.push_str(&format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()));
    }
    req.push_str("*1\r\n$4\r\nPING\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.windows(5).any(|w| w == b"+PONG") {
            return true;
        }
    }
    false
}

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with these options.
    pub fn start_with(options: ServerOptions) -> RedisServer {
        let bin = server_binary();
        remove_stale_dirs();
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jobs-redis-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory for redis-server");
        let mut last_err = String::new();
        // A port found free may be taken before the server binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let tls_port = options.tls.as_ref().map(|_| free_port());
            match spawn(&bin, port, tls_port, &dir, &options) {
                Ok(proc) => return RedisServer { proc, port, tls_port, dir, options },
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server did not start: {last_err}");
    }

    /// `redis://127.0.0.1:<port>` (with the password, when one is set).
    pub fn url(&self) -> String {
        match &self.options.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// `rediss://127.0.0.1:<tls port>` (with the password, when one is set),
    /// when it listens for TLS; the server's certificate must name the
    /// address `127.0.0.1`.
    pub fn tls_url(&self) -> Option<String> {
        let port = self.tls_port?;
        Some(match &self.options.password {
            Some(p) => format!("rediss://:{p}@127.0.0.1:{port}"),
            None => format!("rediss://127.0.0.1:{port}"),
        })
    }

    /// The TLS port, when it listens for TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// Creates (or replaces) ACL user `user` with password `password` and
    /// `rules` (space separated, as `ACL SETUSER` takes them), through
    /// `redis-cli`.
    pub fn acl_user(&self, user: &str, password: &str, rules: &str) {
        let rule = format!("ACL SETUSER {user} on >{password} {rules}");
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(rule.split(' ')).output();
        let answer = out.as_ref().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        assert!(answer.as_deref().is_ok_and(|a| a == "OK"), "{rule}: {out:?}");
    }

    /// A field of `command`'s line of `INFO commandstats` (`calls`,
    /// `failed_calls`, ..; 0 when the command never ran), through
    /// `redis-cli`.
    pub fn command_stat(&self, command: &str, field: &str) -> u64 {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string(), "INFO", "commandstats"]).output();
        let info = String::from_utf8_lossy(&out.expect("redis-cli runs").stdout).into_owned();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:")))
            .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix(field)?.strip_prefix('=')))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    }

    /// Sends a signal (`"STOP"`, `"CONT"`, ...) to the server process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.proc.pid.to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {}", self.proc.pid);
    }
}

/// Runs redis-server under its guard and waits until it answers.
fn spawn(bin: &str, port: u16, tls_port: Option<u16>, dir: &Path, options: &ServerOptions) -> Result<Proc, String> {
    let mut args: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--dir".into(),
        dir.display().to_string(),
        "--logfile".into(),
        "redis.log".into(),
        "--daemonize".into(),
        "no".into(),
    ];
    if options.appendonly {
        args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
    } else {
        args.extend(["--appendonly", "no"].map(String::from));
    }
    if let Some(p) = &options.password {
        args.extend(["--requirepass".to_owned(), p.clone()]);
    }
    if let (Some(tls), Some(tls_port)) = (&options.tls, tls_port) {
        let file = |p: &PathBuf| p.display().to_string();
        args.extend([
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            file(&tls.cert_file),
            "--tls-key-file".to_owned(),
            file(&tls.key_file),
            "--tls-ca-cert-file".to_owned(),
            file(&tls.ca_file),
            "--tls-auth-clients".to_owned(),
            (if tls.require_client_cert { "yes" } else { "optional" }).to_owned(),
        ]);
    }
    if options.cluster {
        args.extend(
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000"]
                .map(String::from),
        );
    }
    // The guard: start the server, report its pid, wait for our end of
    // stdin to close (drop, exit or death of this process), kill it.
    let script = r#""$0" "$@" & pid=$!; echo $pid; read _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"#;
    let mut guard = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(bin)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut line = String::new();
    let stdout = guard.stdout.take().expect("piped stdout");
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    let pid: u32 = line.trim().parse().map_err(|_| format!("no pid from the guard: {line:?}"))?;
    let stdin = guard.stdin.take();
    let mut proc = Proc { guard, stdin, pid };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers_ping(port, options.password.as_deref()) {
        let exited = !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
        if exited || Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            proc.kill();
            return Err(format!("port {port}: not answering PING; log:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(proc)
}

impl RedisServer {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for tests that signal it).
    pub fn pid(&self) -> u32 {
        self.proc.pid
    }

    /// Its working directory (append-only files live here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server with SIGKILL and waits until it is gone; the
    /// directory stays, for [`RedisServer::restart`].
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same port and directory (after
    /// [`RedisServer::kill`]): with `appendonly`, its data comes back.
    pub fn restart(&mut self) {
        self.kill();
        self.proc =
            spawn(&server_binary(), self.port, self.tls_port, &self.dir, &self.options).expect("redis-server restarts");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL of a server shared by every test of this binary, started on
/// first use. It stops when the test binary exits.
pub fn shared_server_url() -> String {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).url()
}
