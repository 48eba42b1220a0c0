//! The worker process of the sandbox tests (`tests/tests/sandbox.rs`): one
//! program that is both the worker and, started again by its pools, the
//! sandbox child. It runs misbehaving sandboxed jobs (unbounded
//! allocation, `abort()`, a busy loop past its timeout, a null-pointer
//! write through a C call, a panic, a CPU-time hog), a sandboxed job that
//! reaches for a loopback listener of the worker without network, one that
//! waits until the worker cancels it, and well-behaved jobs in and out of
//! the sandbox after them; then prints one JSON report on standard output.
//!
//! `sandbox-worker [REDIS_URL]`: on a `MemoryQueue`, or on Redis.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::sandbox::Sandbox;
use jobs_core::{JobHandle, JobMetrics, SharedQueue, WaitError};
use serde::Serialize;

/// How long one job may take to end, from its enqueue.
const DEADLINE: Duration = Duration::from_secs(60);
/// The memory limit of the crash pool's children.
const MEMORY_LIMIT: u64 = 256 << 20;

/// Allocates (and touches) 64 MiB after 64 MiB, without end.
#[job(name = "sandbox.alloc", queue = "sandbox", retries = 0, sandbox)]
async fn alloc() -> Result<(), JobError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(vec![1u8; 64 << 20]);
        black_box(&held);
    }
}

/// Aborts the process.
#[job(name = "sandbox.abort", queue = "sandbox", retries = 0, sandbox)]
async fn abort() -> Result<(), JobError> {
    std::process::abort()
}

/// Spins forever without yielding: only its timeout ends it.
#[job(name = "sandbox.spin", queue = "sandbox", retries = 0, timeout = "2s", sandbox)]
async fn spin() -> Result<(), JobError> {
    loop {
        std::hint::spin_loop();
    }
}

/// Writes through a null pointer inside C's `memset`.
#[job(name = "sandbox.segv", queue = "sandbox", retries = 0, sandbox)]
async fn segv() -> Result<(), JobError> {
    native::write_to_null();
    Ok(())
}

/// Panics: caught in the child, which serves on.
#[job(name = "sandbox.panic", queue = "sandbox", retries = 0, sandbox)]
async fn panics() -> Result<(), JobError> {
    panic!("on purpose")
}

/// Burns CPU with no timeout: the CPU time limit of its pool ends it.
#[job(name = "sandbox.burn", queue = "sandbox.cpu", retries = 0, sandbox)]
async fn burn() -> Result<(), JobError> {
    loop {
        std::hint::spin_loop();
    }
}

/// Waits without end, for the worker to cancel it; says when it starts,
/// and in which process (its progress note).
#[job(name = "sandbox.wait", queue = "sandbox.cancel", retries = 0, sandbox)]
async fn wait(ctx: JobContext) -> Result<(), JobError> {
    ctx.progress(0.0, std::process::id().to_string()).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Whether a TCP connection to `addr` (a loopback listener of the worker)
/// succeeds from the sandbox.
#[job(name = "sandbox.connect", queue = "sandbox.nonet", retries = 0, sandbox)]
async fn connect(addr: String) -> Result<bool, JobError> {
    let addr: std::net::SocketAddr = addr.parse().map_err(JobError::permanent)?;
    Ok(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok())
}

/// A well-behaved sandboxed job: prints to its standard output (which
/// must not disturb the channel to the pool), reports its progress (which
/// the pool stores) and says which process ran it.
#[job(name = "sandbox.ok", queue = "sandbox", retries = 0, sandbox)]
async fn ok(ctx: JobContext, word: String) -> Result<Ran, JobError> {
    println!("a job's own output: {word}");
    ctx.progress(0.5, "half way").await?;
    Ok(Ran { pid: std::process::id(), word })
}

/// A job outside the sandbox, on the same pool.
#[job(name = "sandbox.plain", queue = "sandbox", retries = 0)]
async fn plain(word: String) -> Result<Ran, JobError> {
    Ok(Ran { pid: std::process::id(), word })
}

/// A sandboxed workflow step: reads the result of the step it depends on
/// and its own place in the workflow, in its child.
#[job(name = "sandbox.step", queue = "sandbox", retries = 0, sandbox)]
async fn step(ctx: JobContext) -> Result<StepRan, JobError> {
    let before = ctx.dependency::<Plain>("first").map_err(JobError::permanent)?;
    let (flow, member) = ctx.flow().ok_or_else(|| JobError::permanent("no workflow place in the child"))?;
    Ok(StepRan { pid: std::process::id(), word: before.word, flow: flow.to_owned(), member: member.to_owned() })
}

/// What the sandboxed step saw.
#[derive(Debug, Serialize, serde::Deserialize)]
struct StepRan {
    pid: u32,
    /// The word its dependency returned.
    word: String,
    flow: String,
    member: String,
}

/// Which process ran a job.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Ran {
    pid: u32,
    word: String,
}

/// The C call of [`segv`].
mod native {
    use std::ffi::{c_int, c_void};
    use std::hint::black_box;

    extern "C" {
        fn memset(s: *mut c_void, c: c_int, n: usize) -> *mut c_void;
    }

    /// The whole point of the job: a write through a null pointer in
    /// native code, as a broken decoder would do.
    #[allow(unsafe_code)]
    pub(super) fn write_to_null() {
        // SAFETY: none; this crashes the process on purpose, and only ever
        // runs in a sandbox child.
        unsafe {
            memset(black_box(std::ptr::null_mut()), 0, black_box(16));
        }
    }
}

/// How one job ended.
#[derive(Debug, Serialize)]
struct Ended {
    status: String,
    /// The attempt log's errors, in order.
    errors: Vec<String>,
    result: Option<serde_json::Value>,
    /// The stored progress: fraction and note.
    progress: Option<(f32, String)>,
}

#[derive(Debug, Serialize)]
struct Report {
    worker_pid: u32,
    jobs: BTreeMap<String, Ended>,
    /// `jobs_sandbox_restarts_total` at the end.
    restarts: u64,
    /// Children of the worker left unreaped once its pools stopped.
    zombies: usize,
    /// Whether the child of the cancelled job was killed and reaped.
    cancelled_child_gone: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    jobs_core::sandbox::serve_if_child();
    let url = std::env::args().nth(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = rt.block_on(run(url))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn run(url: Option<String>) -> Result<Report, Box<dyn std::error::Error>> {
    let queue: SharedQueue = match url {
        Some(url) => std::sync::Arc::new(jobs_redis::RedisQueue::connect(&url).await?),
        None => std::sync::Arc::new(MemoryQueue::new()),
    };
    let metrics = JobMetrics::new();
    let pool = |queues: &[&str], sandbox: Sandbox| {
        WorkerPool::builder(queue.clone()).queues(queues.to_vec()).workers(4).metrics(&metrics).sandbox(sandbox).start()
    };
    let crashes = pool(&["sandbox"], Sandbox::default().memory_limit(Some(MEMORY_LIMIT)).warm_children(2))?;
    let cpu = pool(&["sandbox.cpu"], Sandbox::default().cpu_time_limit(Some(Duration::from_secs(1))))?;
    let offline = pool(&["sandbox.nonet"], Sandbox::default().network(false).warm_children(1))?;
    // A short lease: the heartbeat that brings a cancel request comes every
    // third of it.
    let cancelling = WorkerPool::builder(queue.clone())
        .queues(["sandbox.cancel"])
        .lease(Duration::from_millis(600))
        .metrics(&metrics)
        .sandbox(Sandbox::default().warm_children(1))
        .start()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();

    let mut jobs = BTreeMap::new();
    let first = [
        (Alloc::NAME, Alloc {}.enqueue(&queue).await?),
        (Abort::NAME, Abort {}.enqueue(&queue).await?),
        (Spin::NAME, Spin {}.enqueue(&queue).await?),
        (Segv::NAME, Segv {}.enqueue(&queue).await?),
        (Panics::NAME, Panics {}.enqueue(&queue).await?),
        (Burn::NAME, Burn {}.enqueue(&queue).await?),
        (Connect::NAME, Connect { addr }.enqueue(&queue).await?),
    ];
    for (name, id) in first {
        jobs.insert(name.to_owned(), ended(&queue, id).await?);
    }
    let waiting = Wait {}.enqueue(&queue).await?;
    let child = started(&queue, &waiting).await?;
    queue.cancel(&waiting).await?;
    jobs.insert(Wait::NAME.to_owned(), ended(&queue, waiting).await?);
    let cancelled_child_gone = gone(child).await;
    // After every crash, the pool still runs jobs, in and out of the sandbox.
    let after = [
        (Ok::NAME, Ok { word: "sandboxed".into() }.enqueue(&queue).await?),
        (Plain::NAME, Plain { word: "in the worker".into() }.enqueue(&queue).await?),
    ];
    for (name, id) in after {
        jobs.insert(name.to_owned(), ended(&queue, id).await?);
    }
    // A sandboxed step of a workflow reads its dependency's result.
    let run = Workflow::new("sandboxed-steps")
        .step("first", Plain { word: "from the first step".into() })
        .step_after("second", Step {}, ["first"])
        .enqueue(&queue)
        .await?;
    run.wait(DEADLINE).await?;
    let second = run.info().await?.members.into_iter().find(|m| m.name == "second").ok_or("no step `second`")?;
    jobs.insert(Step::NAME.to_owned(), ended(&queue, second.job).await?);
    for p in [crashes, cpu, offline, cancelling] {
        p.shutdown().await?;
    }
    let restarts = restarts(&metrics)?;
    Ok(Report {
        worker_pid: std::process::id(),
        jobs,
        restarts,
        zombies: zombies_after_reaping().await,
        cancelled_child_gone,
    })
}

/// Waits for the job to end and reads how it did.
async fn ended(queue: &SharedQueue, id: JobId) -> Result<Ended, Box<dyn std::error::Error>> {
    let handle: JobHandle<Plain> = JobHandle::new(queue, id.clone());
    match handle.wait(DEADLINE).await {
        Ok(_) | Err(WaitError::Dead { .. } | WaitError::Cancelled { .. } | WaitError::Decode { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let info = queue.job(&id).await?.ok_or("the job vanished")?;
    Ok(Ended {
        status: format!("{:?}", info.status),
        errors: info.attempt_log.iter().filter_map(|a| a.error.clone()).collect(),
        result: info.result,
        progress: info.progress.map(|p| (p.fraction, p.note)),
    })
}

/// Waits until the job has reported its progress (it runs in its child),
/// and returns the child's pid from the note.
async fn started(queue: &SharedQueue, id: &JobId) -> Result<u32, Box<dyn std::error::Error>> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(p) = queue.job(id).await?.and_then(|i| i.progress) {
            return Ok(p.note.parse()?);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the waiting job never started".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` is gone (killed and reaped) within the deadline.
async fn gone(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// `jobs_sandbox_restarts_total`, read from the exposition text.
fn restarts(metrics: &JobMetrics) -> Result<u64, Box<dyn std::error::Error>> {
    let text = metrics.encode()?;
    let line = text.lines().find(|l| l.starts_with("jobs_sandbox_restarts_total ")).ok_or("no restarts metric")?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

/// The worker's children that are still there, unreaped or running, once
/// the idle ones had their time to end (they are reaped in the
/// background).
async fn zombies_after_reaping() -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = children_of(std::process::id());
        if left == 0 || tokio::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many processes have `pid` as their parent (from /proc).
fn children_of(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // `pid (comm) state ppid ...`: comm may hold spaces, so read
            // after its closing parenthesis.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
            rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
        })
        .count()
}
