//! The harness: a temporary data folder, an application started on it, and
//! waiting for jobs with a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use background_jobs::config::DEFAULT_CONFIG;
use background_jobs::{App, AppError, Http, Settings, StartOptions};
use jobs_core::{JobId, JobInfo, JobStatus, QueueInspect};
use tokio::sync::{Mutex, MutexGuard};

/// One application at a time: the jobs' environment is process-wide.
static APP_LOCK: Mutex<()> = Mutex::const_new(());

/// How long any test waits for a job.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Takes the application lock (for tests that start an application
/// themselves).
pub async fn lock() -> MutexGuard<'static, ()> {
    APP_LOCK.lock().await
}

/// The `background-jobs` binary running `command` on the MemoryQueue with
/// its data folder in `dir`, its endpoints on a free loopback port and
/// `info` logs on standard error.
pub fn binary(command: &str, dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_background-jobs"));
    cmd.arg(command)
        .env_remove("JOBS_REDIS_URL")
        .env_remove("JOBS_CONFIG")
        .env("APP_DATA_DIR", dir)
        .env("JOBS_HTTP_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null());
    cmd
}

/// A temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bj-test-{tag}-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings of the shipped configuration with the data folder in `dir`.
pub fn settings(dir: &Path) -> Settings {
    let mut s = Settings::from_yaml(DEFAULT_CONFIG, "test").expect("the shipped configuration parses");
    s.app.data_dir = dir.to_path_buf();
    // No webhook of a test may leave the machine: public addresses are
    // refused, and each test allows the loopback address it needs.
    s.app.notify.allow_public = false;
    // A test binary cannot serve sandbox children (its `main` is the test
    // harness): its pools run the sandboxed jobs in process. The binary's
    // own run (`sandbox.rs`) runs them in children.
    s.jobs.jobs.worker_pool.sandbox.enabled = false;
    s
}

/// A started application on a MemoryQueue in a temporary data folder.
pub struct Harness {
    pub app: App,
    pub dir: TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Harness {
    /// Starts with the shipped configuration, changed by `tweak`; retries
    /// after 20 ms, no HTTP endpoints.
    pub async fn start(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_serving(Http::Off, tweak).await.expect("the application starts")
    }

    /// [`Harness::start`] with the HTTP endpoints served as `http` says.
    pub async fn start_serving(http: Http, tweak: impl FnOnce(&mut Settings)) -> Result<Self, AppError> {
        let lock = APP_LOCK.lock().await;
        let dir = TempDir::new("app");
        let mut s = settings(&dir.0);
        tweak(&mut s);
        let options = StartOptions { workers: true, retry_delay: Some(Duration::from_millis(20)), http };
        let app = App::start(s, options).await?;
        Ok(Harness { app, dir, _lock: lock })
    }

    /// A path in the data folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.0.join(rel)
    }

    /// Writes a file in the data folder.
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    /// Waits until the job has finished; panics at the deadline.
    pub async fn finished(&self, id: &JobId) -> JobInfo {
        finished(&*self.app.queue, id).await
    }

    pub async fn stop(self) {
        self.app.shutdown().await.expect("clean shutdown");
    }
}

/// Waits until the job has finished (succeeded, dead or cancelled); panics
/// with its last state at the deadline.
pub async fn finished<Q: QueueInspect + ?Sized>(q: &Q, id: &JobId) -> JobInfo {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let info = q.job(id).await.expect("backend answers");
        if let Some(i) = &info {
            if i.status.is_finished() {
                return i.clone();
            }
        }
        assert!(Instant::now() < deadline, "job {id} did not finish within {DEADLINE:?}: {info:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts the job succeeded and returns its result.
pub fn succeeded(info: &JobInfo) -> serde_json::Value {
    assert_eq!(info.status, JobStatus::Succeeded, "{} failed: {:?}", info.name, info.attempt_log);
    info.result.clone().unwrap_or_default()
}

/// Asserts the job is dead after exactly `attempts` attempts; returns its last error.
pub fn dead_after(info: &JobInfo, attempts: u32) -> String {
    assert_eq!(info.status, JobStatus::Dead, "{} should be dead: {info:?}", info.name);
    assert_eq!(info.attempts, attempts, "{}: {:?}", info.name, info.attempt_log);
    info.last_error().unwrap_or_default().to_owned()
}

/// A PNG of `w` x `h`.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(background_jobs::demo::seed::landscape(w, h));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode");
    out.into_inner()
}
