//! The end-to-end run with its pools in several worker processes: this
//! program started again with `--worker-process`, each serving the queue
//! with its share of the workers, while this process produces and counts
//! the results Redis records.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use jobs_core::prelude::*;
use jobs_redis::{RedisConfig, RedisQueue};

use crate::job::QUEUE;
use crate::scenario::{pool_prefetch, process_cpu_s, start_producing, with_pool_prefetch, EndToEnd, Producing};
use crate::{BenchError, Progress, Settings, Store};

/// The threads of each worker process's runtime: the machine's cores shared
/// among the `processes`, at least one (a current-thread runtime). Tokio's
/// default, a thread per core in every process, puts `processes` times as
/// many threads on the cores as there are cores, and their switches and
/// cross-thread wake-ups cost each job more CPU
/// (`bench/results/processes.md`).
pub fn runtime_threads(processes: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    (cores / processes.max(1)).max(1)
}

/// How long a worker process may take to start its pool or to stop it.
const START_STOP: Duration = Duration::from_secs(60);

/// The worker process's side: a pool of `workers` on the store under
/// `prefix`, taking [`pool_prefetch`] jobs ahead. It prints `ready <cpu
/// seconds>` once the pool runs, serves until its standard input closes,
/// then prints `cpu <cpu seconds>` once the pool has stopped.
pub async fn serve(url: &str, prefix: &str, workers: usize) -> Result<(), BenchError> {
    let config = RedisConfig { prefix: prefix.to_owned(), ..RedisConfig::new(url) };
    let queue = RedisQueue::from_config(&config).await?;
    let pool =
        with_pool_prefetch(WorkerPool::builder(queue).workers(workers)).queues([QUEUE]).scheduler(false).start()?;
    say(&format!("ready {}", process_cpu_s()))?;
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink()))
        .await
        .map_err(|e| BenchError::Task(e.to_string()))?
        .map_err(|e| BenchError::Io(e.to_string()))?;
    pool.shutdown().await?;
    say(&format!("cpu {}", process_cpu_s()))
}

fn say(line: &str) -> Result<(), BenchError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| BenchError::Io(e.to_string()))
}

/// One worker process, as the measuring process sees it.
struct Worker {
    child: Child,
    lines: Option<BufReader<ChildStdout>>,
    /// Its CPU seconds when its pool was ready.
    ready_cpu: f64,
}

impl Worker {
    fn start(exe: &Path, url: &str, prefix: &str, workers: usize, threads: usize) -> Result<Self, BenchError> {
        let mut child = Command::new(exe)
            .args(["--worker-process", "--redis", url, "--prefix", prefix])
            .args(["--workers", &workers.to_string()])
            .args(pool_prefetch().map(|n| format!("--prefetch={n}")))
            .arg(format!("--runtime-threads={threads}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::Io(format!("starting a worker process: {e}")))?;
        let lines = child.stdout.take().map(BufReader::new);
        Ok(Worker { child, lines, ready_cpu: 0.0 })
    }

    /// The CPU seconds of the next line, `<word> <seconds>`, within
    /// [`START_STOP`].
    async fn read(&mut self, word: &'static str) -> Result<f64, BenchError> {
        let mut lines = self.lines.take().ok_or_else(|| BenchError::Io("a worker process's output is gone".into()))?;
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let n = lines.read_line(&mut line);
            (lines, n, line)
        });
        let (lines, n, line) = tokio::time::timeout(START_STOP, read)
            .await
            .map_err(|_| BenchError::Stuck(format!("a worker process did not say `{word}` in time")))?
            .map_err(|e| BenchError::Task(e.to_string()))?;
        self.lines = Some(lines);
        n.map_err(|e| BenchError::Io(e.to_string()))?;
        line.trim()
            .strip_prefix(word)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| BenchError::Io(format!("a worker process said `{}`, not `{word} <seconds>`", line.trim())))
    }

    /// Closes its input (its pool stops), then its CPU seconds since ready.
    async fn stop(mut self) -> Result<f64, BenchError> {
        drop(self.child.stdin.take());
        let end = self.read("cpu").await?;
        let ready = self.ready_cpu;
        let status = tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .map_err(|e| BenchError::Task(e.to_string()))?
            .map_err(|e| BenchError::Io(e.to_string()))?;
        if !status.success() {
            return Err(BenchError::Io(format!("a worker process ended with {status}")));
        }
        Ok(end - ready)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Only a process not stopped (an error on the way) is still running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings' `e2e_n` no-op jobs through `processes` worker processes
/// of `workers` each while `producers` tasks here enqueue them in batches
/// of `batch`; timed until Redis has recorded every result. The CPU per job
/// counts this process and the worker processes (from their pools' start
/// to their stop).
pub async fn end_to_end(
    store: &Store,
    s: &Settings,
    url: &str,
    (processes, workers): (usize, usize),
    (batch, producers): (usize, usize),
    p: &Progress,
) -> Result<EndToEnd, BenchError> {
    let n = s.e2e_n;
    let prefix = store.prefix().ok_or_else(|| BenchError::Task("worker processes need Redis".into()))?;
    let exe = match &s.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(|e| BenchError::Io(e.to_string()))?,
    };
    let mut pool = Vec::with_capacity(processes);
    for _ in 0..processes {
        pool.push(Worker::start(&exe, url, prefix, workers, runtime_threads(processes))?);
    }
    for w in &mut pool {
        w.ready_cpu = w.read("ready").await?;
    }
    let Producing { start, cpu_before, producing } = start_producing(store, n, (batch, producers), None).await;
    let deadline = Instant::now() + crate::scenario::STUCK;
    let target = n as u64;
    // The queue's processed counters alone, one HMGET a millisecond: the
    // whole stats (`stats()`) would cost Redis more than the jobs' share
    // of its time that the run measures.
    let counters = jobs_redis::keys::QueueKeys::new(prefix, QUEUE).stats();
    let mut conn = crate::Target::connect(url)?.conn().await?;
    loop {
        let done: u64 = redis::cmd("HMGET")
            .arg(&counters)
            .arg(&["processed:0", "processed:1", "processed:2", "processed:3"])
            .query_async::<Vec<Option<u64>>>(&mut conn)
            .await
            .map_err(|e| BenchError::Io(e.to_string()))?
            .into_iter()
            .flatten()
            .sum();
        p.step(usize::try_from(done).unwrap_or(usize::MAX), n);
        if done >= target {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stuck(format!("end to end in {processes} processes: {done} of {n} jobs ran")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut cpu = process_cpu_s() - cpu_before;
    let produced = producing.await.map_err(|e| BenchError::Task(e.to_string()))??;
    for w in pool {
        cpu += w.stop().await?;
    }
    Ok(EndToEnd::of(n, seconds, produced, cpu))
}
