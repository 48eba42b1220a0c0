//! [`Fleet`]: the worker processes of a run, each the `jobs-chaos` binary in
//! `worker` mode, which the run kills, stops, continues and restarts.
//!
//! A worker process shuts down cleanly when its stdin closes, so closing it
//! is the graceful stop, and a worker never outlives the chaos program.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::ChaosError;
use crate::redis_proc::send_signal;

/// What every worker process is started with.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The `jobs-chaos` binary.
    pub exe: PathBuf,
    /// The Redis URL.
    pub url: String,
    /// The queue to serve.
    pub queue: String,
    /// The pool's lease.
    pub lease: Duration,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Where run logs go (one file per process).
    pub runlog_dir: PathBuf,
    /// Where each process's stderr goes (one file per process).
    pub stderr_dir: PathBuf,
}

/// One worker slot: the process now filling it.
#[derive(Debug)]
struct Slot {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    stopped: bool,
    generation: u32,
}

/// The worker processes, by slot.
#[derive(Debug)]
pub struct Fleet {
    spec: WorkerSpec,
    slots: Vec<Option<Slot>>,
    generations: Vec<u32>,
}

impl Fleet {
    /// Starts `n` worker processes.
    pub fn start(spec: WorkerSpec, n: usize) -> Result<Fleet, ChaosError> {
        for d in [&spec.runlog_dir, &spec.stderr_dir] {
            std::fs::create_dir_all(d).map_err(|e| ChaosError::io(d, e))?;
        }
        let mut fleet = Fleet { spec, slots: (0..n).map(|_| None).collect(), generations: vec![0; n] };
        for slot in 0..n {
            fleet.restart(slot)?;
        }
        Ok(fleet)
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The pid of the process in `slot`, if one runs.
    pub fn pid(&self, slot: usize) -> Option<u32> {
        self.slots.get(slot)?.as_ref().map(|s| s.pid)
    }

    /// Slots whose process runs and is not stopped.
    pub fn live(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|&i| self.slots[i].as_ref().is_some_and(|s| !s.stopped)).collect()
    }

    /// Starts a process in `slot` (after a kill or a crash); returns its pid.
    pub fn restart(&mut self, slot: usize) -> Result<u32, ChaosError> {
        self.kill(slot);
        self.generations[slot] += 1;
        let generation = self.generations[slot];
        let name = format!("w{slot}-g{generation}");
        let runlog = self.spec.runlog_dir.join(format!("{name}.log"));
        let err_path = self.spec.stderr_dir.join(format!("{name}.err"));
        let stderr = std::fs::File::create(&err_path).map_err(|e| ChaosError::io(&err_path, e))?;
        let mut child = Command::new(&self.spec.exe)
            .arg("worker")
            .arg("--redis")
            .arg(&self.spec.url)
            .arg("--queue")
            .arg(&self.spec.queue)
            .arg("--lease-ms")
            .arg(self.spec.lease.as_millis().to_string())
            .arg("--concurrency")
            .arg(self.spec.concurrency.to_string())
            .arg("--runlog")
            .arg(&runlog)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| ChaosError::Spawn { program: self.spec.exe.display().to_string(), source })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        self.slots[slot] = Some(Slot { child, stdin, pid, stopped: false, generation });
        Ok(pid)
    }

    /// SIGKILLs the process in `slot` and waits until it is gone; returns
    /// its pid (`None` when none ran).
    pub fn kill(&mut self, slot: usize) -> Option<u32> {
        let mut s = self.slots.get_mut(slot)?.take()?;
        let _ = s.child.kill();
        let _ = s.child.wait();
        Some(s.pid)
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the process in `slot`.
    pub fn set_stopped(&mut self, slot: usize, stop: bool) -> Result<u32, ChaosError> {
        let s = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or_else(|| ChaosError::Config(format!("no worker process in slot {slot}")))?;
        send_signal(s.pid, if stop { "STOP" } else { "CONT" })?;
        s.stopped = stop;
        Ok(s.pid)
    }

    /// Processes that exited by themselves (a poison job ends its process):
    /// `(slot, pid, status)`; their slots are empty afterwards.
    pub fn reap_exited(&mut self) -> Vec<(usize, u32, ExitStatus)> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let exited = match slot {
                Some(s) => s.child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                if let Some(s) = slot.take() {
                    out.push((i, s.pid, status));
                }
            }
        }
        out
    }

    /// Closes every process's stdin (their graceful stop), waits up to
    /// `timeout` for them to exit, then SIGKILLs the rest. Returns how many
    /// exited by themselves.
    pub fn shutdown(&mut self, timeout: Duration) -> usize {
        for s in self.slots.iter_mut().flatten() {
            if s.stopped {
                let _ = send_signal(s.pid, "CONT");
                s.stopped = false;
            }
            drop(s.stdin.take());
        }
        let deadline = Instant::now() + timeout;
        let mut clean = 0;
        for slot in &mut self.slots {
            let Some(mut s) = slot.take() else { continue };
            loop {
                match s.child.try_wait() {
                    Ok(Some(_)) => {
                        clean += 1;
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                    _ => {
                        let _ = s.child.kill();
                        let _ = s.child.wait();
                        break;
                    }
                }
            }
        }
        clean
    }

    /// The stderr files of every process so far.
    pub fn stderr_dir(&self) -> &Path {
        &self.spec.stderr_dir
    }

    /// The generation (1 for the first process) of the process in `slot`.
    pub fn generation(&self, slot: usize) -> Option<u32> {
        self.slots.get(slot)?.as_ref().map(|s| s.generation)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for slot in 0..self.slots.len() {
            self.kill(slot);
        }
    }
}
