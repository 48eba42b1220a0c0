//! [`Fleet`]: the worker processes of a run, each the `jobs-chaos` binary in
//! `worker` mode, which the run kills, stops, continues and restarts.
//!
//! A worker process shuts down cleanly when its stdin closes, so closing it
//! is the graceful stop, and a worker never outlives the chaos program.
//!
//! A slot may have a skewed clock: its processes, the first and every one
//! that replaces it, run with libfaketime preloaded (`FAKETIME=+420`: the
//! wall clock that many seconds ahead; the monotonic clock left true, so
//! that timers and timeouts are unaffected). Each checks at its start that
//! its clock is off by what it was given (see `worker.rs`).

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
    /// Clock offsets (seconds ahead, signed) of the first slots; the others
    /// run on the host's clock.
    pub skewed_clocks: Vec<i64>,
    /// The pools' crash budget.
    pub crash_budget: u32,
    /// libfaketime's multi-threaded library for the skewed slots (`None`:
    /// found by `faketime_lib` in this module).
    pub faketime_lib: Option<PathBuf>,
}

impl WorkerSpec {
    /// How many seconds ahead the clock of `slot`'s processes is.
    pub fn skew_s(&self, slot: usize) -> i64 {
        self.skewed_clocks.get(slot).copied().unwrap_or(0)
    }
}

/// One worker process the fleet started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcInfo {
    /// Its slot.
    pub slot: usize,
    /// 1 for the slot's first process, then one more per restart.
    pub generation: u32,
    /// Its pid.
    pub pid: u32,
    /// How many seconds ahead its clock was set (0: the host's clock).
    pub skew_s: i64,
}

/// libfaketime's multi-threaded build (the worker runs a tokio runtime):
/// `given` when set, else `JOBS_FAKETIME_LIB`, else the places Debian and
/// a source install put it. [`ChaosError::Faketime`] when it is not there.
pub fn faketime_lib(given: Option<&Path>) -> Result<PathBuf, ChaosError> {
    if let Some(p) = given.map(Path::to_path_buf).or_else(|| std::env::var_os("JOBS_FAKETIME_LIB").map(PathBuf::from)) {
        return if p.is_file() { Ok(p) } else { Err(ChaosError::Faketime { tried: vec![p] }) };
    }
    let tried: Vec<PathBuf> = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(ChaosError::Faketime { tried }),
    }
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
    /// libfaketime, when a slot is skewed.
    faketime: Option<PathBuf>,
    history: Vec<ProcInfo>,
}

impl Fleet {
    /// Starts `n` worker processes. Fails with [`ChaosError::Faketime`]
    /// when a slot is skewed and libfaketime is missing.
    pub fn start(spec: WorkerSpec, n: usize) -> Result<Fleet, ChaosError> {
        for d in [&spec.runlog_dir, &spec.stderr_dir] {
            std::fs::create_dir_all(d).map_err(|e| ChaosError::io(d, e))?;
        }
        let skewed = (0..n).any(|slot| spec.skew_s(slot) != 0);
        let faketime = if skewed { Some(faketime_lib(spec.faketime_lib.as_deref())?) } else { None };
        let mut fleet = Fleet {
            spec,
            slots: (0..n).map(|_| None).collect(),
            generations: vec![0; n],
            faketime,
            history: Vec::new(),
        };
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
        let skew_s = self.spec.skew_s(slot);
        let mut cmd = Command::new(&self.spec.exe);
        if let (true, Some(lib)) = (skew_s != 0, &self.faketime) {
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME", format!("{skew_s:+}"))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                // The offset read at every call, not a cached reading.
                .env("FAKETIME_NO_CACHE", "1");
        }
        let mut child = cmd
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
            .arg(format!("--clock-skew-ms={}", skew_s.saturating_mul(1000)))
            .arg("--crash-budget")
            .arg(self.spec.crash_budget.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| ChaosError::Spawn { program: self.spec.exe.display().to_string(), source })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        self.slots[slot] = Some(Slot { child, stdin, pid, stopped: false, generation });
        self.history.push(ProcInfo { slot, generation, pid, skew_s });
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

    /// How many seconds ahead the clock of `slot`'s processes is.
    pub fn skew_s(&self, slot: usize) -> i64 {
        self.spec.skew_s(slot)
    }

    /// Every process started so far, in order.
    pub fn history(&self) -> &[ProcInfo] {
        &self.history
    }

    /// The run log of the process now in `slot`.
    pub fn runlog(&self, slot: usize) -> Option<PathBuf> {
        let g = self.generation(slot)?;
        Some(self.spec.runlog_dir.join(format!("w{slot}-g{g}.log")))
    }

    /// The stderr file of the process now in `slot`.
    pub fn stderr_file(&self, slot: usize) -> Option<PathBuf> {
        let g = self.generation(slot)?;
        Some(self.spec.stderr_dir.join(format!("w{slot}-g{g}.err")))
    }

    /// Whether the process in `slot` has exited (without reaping it).
    pub fn has_exited(&mut self, slot: usize) -> bool {
        self.slots.get_mut(slot).and_then(Option::as_mut).is_some_and(|s| matches!(s.child.try_wait(), Ok(Some(_))))
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
