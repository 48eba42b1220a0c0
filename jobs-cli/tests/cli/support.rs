//! The harness: backends, running a command line, seeding jobs, waiting.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jobs_cli::{run, Context, Io};
use jobs_core::backend::{FetchRequest, Finish, Outcome};
use jobs_core::{JobId, JobQueue, MemoryQueue, SharedQueue, When};

/// A fresh embedded queue.
pub fn memory() -> SharedQueue {
    Arc::new(MemoryQueue::new())
}

/// A Redis queue with a key prefix of its own on the shared test server, so
/// every test sees an empty backend.
#[cfg(feature = "redis")]
pub async fn redis() -> SharedQueue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let url = jobs_redis::testing::shared_server_url();
    let prefix = format!("cli-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let config = jobs_redis::RedisConfig { prefix, ..jobs_redis::RedisConfig::new(url) };
    Arc::new(jobs_redis::RedisQueue::from_config(&config).await.expect("the test Redis answers"))
}

/// What a command did.
#[derive(Debug)]
pub struct Output {
    pub code: u8,
    pub out: String,
    pub err: String,
}

impl Output {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success:\n{self:?}");
        &self.out
    }

    /// Asserts the exit code, nothing on stdout, and one `error: ` line on
    /// stderr; returns that line.
    #[track_caller]
    pub fn fails(&self, code: u8) -> &str {
        assert_eq!(self.code, code, "exit code:\n{self:?}");
        assert_eq!(self.out, "", "nothing on stdout on error:\n{self:?}");
        let last = self.err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "one error line on stderr:\n{self:?}");
        assert!(!last.contains("Error {") && !last.contains("Backend("), "no debug dump: {last}");
        last
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(out).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{out}"))
    }
}

/// Runs `jobs ARGS..` on `q`, non-interactively.
pub async fn cli(q: &SharedQueue, args: &[&str]) -> Output {
    exec(Context::new(q.clone()), args, None).await
}

/// Runs `jobs ARGS..` on `q` with `input` as the operator's answers.
pub async fn cli_answering(q: &SharedQueue, args: &[&str], input: &str) -> Output {
    exec(Context::new(q.clone()), args, Some(input)).await
}

/// Runs a command line in a context.
pub async fn exec(ctx: Context, args: &[&str], input: Option<&str>) -> Output {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut answers = input.unwrap_or_default().as_bytes();
    let mut io = Io::new(&mut out, &mut err);
    if input.is_some() {
        io = io.interactive(&mut answers);
    }
    let argv = std::iter::once("jobs").chain(args.iter().copied());
    let code = run(argv, ctx, &mut io).await;
    Output { code, out: String::from_utf8(out).expect("utf-8 stdout"), err: String::from_utf8(err).expect("utf-8") }
}

/// Asserts that every line fits an 80-column terminal.
#[track_caller]
pub fn fits_80(text: &str) {
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{} characters: {line}\n{text}", line.chars().count());
    }
}

/// Waits until `check` holds, up to 10 s; polls the condition, never waits
/// for a fixed time in place of it.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A worker's fetch of one job of `queue`, leased for 30 s.
pub fn take_one(queue: &str) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.to_owned()],
        max: 1,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    }
}

/// Takes the job `id` as a worker would, and fails one attempt per error:
/// each but the last is retried at once, the last one kills it. The job's
/// queue must hold no other ready job.
pub async fn fail(q: &SharedQueue, id: &JobId, errors: &[&str]) {
    for (i, error) in errors.iter().enumerate() {
        let req = FetchRequest { default_max_retries: 10, ..take_one(id.queue()) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let leased = loop {
            if let Some(j) = q.fetch(&req).await.expect("fetch").jobs.pop() {
                assert_eq!(&j.id, id, "the queue held another ready job");
                break j;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {id} to be fetched");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let token = leased.token;
        let outcome = if i + 1 == errors.len() {
            Outcome::Dead { error: error.to_string() }
        } else {
            Outcome::Retry { error: error.to_string(), at: When::At(SystemTime::now() - Duration::from_secs(1)) }
        };
        q.finish(vec![Finish { id: id.clone(), token, outcome }]).await.expect("finish");
    }
}

/// Runs one scenario per backend: `memory::NAME` and `redis::NAME`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::memory()).await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::redis().await).await;
                }
            )*
        }
    };
}
pub(crate) use on_every_backend;
