//! [`ChaosConfig`]: how long a run lasts, how hard it pushes, which faults
//! it injects and how often.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::error::ChaosError;

/// Redis's `appendfsync` policy for the run's server (`appendonly yes`).
///
/// Both keep every acknowledged write across a kill of the Redis *process*
/// in the normal case, because Redis `write(2)`s the append-only file before
/// it replies and the kernel keeps what was written. They differ on a loss
/// of the *machine* (power, kernel panic): see `docs/chaos.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// `fsync` before replying to the clients whose writes it covers: the
    /// strict check (nothing acknowledged may be lost).
    Always,
    /// `fsync` once a second in a background thread.
    Everysec,
}

impl Fsync {
    /// The value of `appendfsync`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
        }
    }
}

impl FromStr for Fsync {
    type Err = ChaosError;
    fn from_str(s: &str) -> Result<Self, ChaosError> {
        match s {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::Everysec),
            _ => Err(ChaosError::Config(format!("appendfsync `{s}`: use `always` or `everysec`"))),
        }
    }
}

/// How many jobs of each special kind a run enqueues (besides the plain
/// `chaos.work` jobs that make up the load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpecialJobs {
    /// `chaos.timeout`: sleeps past its 300 ms timeout on every attempt; ends dead.
    pub timeout: u32,
    /// `chaos.panic`: panics on its first attempt, then succeeds.
    pub panic: u32,
    /// `chaos.hang`: never returns until cancelled; the run cancels it once it runs.
    pub hang: u32,
    /// `chaos.poison`: exits its worker process on every attempt; ends dead.
    pub poison: u32,
    /// `chaos.sandboxed`: runs in a sandbox child, which aborts on its first
    /// attempt; then succeeds.
    pub sandboxed: u32,
}

/// The largest clock skew a run accepts (seconds): a day.
const MAX_SKEW_S: u64 = 86_400;

/// Everything a chaos run does. Start from [`ChaosConfig::ci`] or
/// [`ChaosConfig::long`] and change fields.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosConfig {
    /// The `jobs-chaos` binary, run again as `jobs-chaos worker ..` for each
    /// worker process.
    pub worker_exe: PathBuf,
    /// The `redis-server` binary (`JOBS_REDIS_SERVER` or `redis-server`).
    pub redis_server: String,
    /// The `appendfsync` policy.
    pub fsync: Fsync,
    /// How long producers enqueue and faults are injected; draining comes after.
    #[serde(with = "ms")]
    pub load: Duration,
    /// Jobs enqueued per second, all producers together.
    pub rate: u32,
    /// Jobs per `enqueue_many` call.
    pub batch: usize,
    /// Producer tasks.
    pub producers: usize,
    /// Worker processes.
    pub worker_procs: usize,
    /// Jobs each worker process runs at once.
    pub concurrency: usize,
    /// Clock offsets (seconds, signed) of the first worker slots, in slot
    /// order; the other slots run on the host's clock. A skewed slot's
    /// process runs under libfaketime (`FAKETIME=+420` ...), and so does
    /// every process that replaces it after a kill or a crash.
    pub skewed_clocks: Vec<i64>,
    /// libfaketime's multi-threaded library (`libfaketimeMT.so.1`) for the
    /// skewed slots; `None`: `JOBS_FAKETIME_LIB`, else where Debian's
    /// `faketime` package puts it. Missing while a slot is skewed, the run
    /// fails at once with `ChaosError::Faketime`.
    pub faketime_lib: Option<PathBuf>,
    /// The pools' crash budget (`WorkerPoolBuilder::crash_budget`): how
    /// many leases a job may lose before its handler started until it ends
    /// dead.
    pub crash_budget: u32,
    /// The pools' lease.
    #[serde(with = "ms")]
    pub lease: Duration,
    /// A random worker process is SIGKILLed this often (with some jitter).
    #[serde(with = "ms")]
    pub kill_every: Duration,
    /// A killed worker process is started again after this long.
    #[serde(with = "ms")]
    pub restart_after: Duration,
    /// How many times a busy worker process is stopped (SIGSTOP) for three
    /// leases, then continued (SIGCONT).
    pub stops: u32,
    /// How many times `redis-server` is SIGKILLed and restarted at once.
    pub redis_crashes: u32,
    /// How many times `redis-server` is SIGKILLed and left down (connections
    /// refused) for [`ChaosConfig::redis_down_for`] before its restart.
    pub redis_outages: u32,
    /// How many times `redis-server` is frozen (SIGSTOP: connections hang)
    /// for [`ChaosConfig::redis_down_for`], then continued.
    pub redis_freezes: u32,
    /// How long an outage or a freeze of Redis lasts.
    #[serde(with = "ms")]
    pub redis_down_for: Duration,
    /// The special jobs.
    pub special: SpecialJobs,
    /// How long the run waits, after the load, for every job to finish.
    #[serde(with = "ms")]
    pub drain_timeout: Duration,
    /// A `chaos.work` job sleeps between these many milliseconds ...
    pub work_ms: (u64, u64),
    /// ... except this share of them (0 to 1), which sleep between
    /// [`ChaosConfig::long_work_ms`]: jobs in flight for a kill or a stop
    /// to catch.
    pub long_work_share: f64,
    /// How long the long `chaos.work` jobs sleep (milliseconds).
    pub long_work_ms: (u64, u64),
    /// Seed of the fault schedule and the choice of victims.
    pub seed: u64,
    /// Keep the run's directory (Redis files, run logs, worker logs).
    pub keep_dir: bool,
    /// Hash slots the chaos queue is spread over (1: not partitioned).
    pub partitions: u16,
    /// Groups the jobs of even sequence numbers are spread over (`g0` ..),
    /// the other half staying ungrouped; 0: no job has a group. The run
    /// checks that no group ever held more than
    /// [`ChaosConfig::group_concurrency`] leases at once, and that every
    /// group's counts are back to zero once every job ended.
    pub groups: u32,
    /// The queue's `group_concurrency` when [`ChaosConfig::groups`] is set.
    pub group_concurrency: u32,
    /// The queue's `group_rate` when [`ChaosConfig::groups`] is set
    /// (`None`: no rate); the run checks that no group started more jobs
    /// in one window.
    pub group_rate: Option<jobs_core::Rate>,
    /// Print progress on stderr.
    pub progress: bool,
}

impl ChaosConfig {
    /// The short run CI does as a `cargo test` (about a minute): 30 s of
    /// load with every kind of fault at least once, Redis outage and freeze
    /// of 3 s, one of the three worker slots 7 minutes ahead, half the jobs
    /// in 20 groups of at most 2 running at once and 4 starts a second.
    pub fn ci(worker_exe: impl Into<PathBuf>) -> Self {
        ChaosConfig {
            worker_exe: worker_exe.into(),
            redis_server: std::env::var("JOBS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned()),
            fsync: Fsync::Always,
            load: Duration::from_secs(30),
            rate: 150,
            batch: 10,
            producers: 2,
            worker_procs: 3,
            concurrency: 8,
            skewed_clocks: vec![7 * 60],
            faketime_lib: None,
            crash_budget: jobs_core::backend::DEFAULT_MAX_CRASHES,
            lease: Duration::from_millis(1500),
            kill_every: Duration::from_secs(4),
            restart_after: Duration::from_millis(300),
            stops: 2,
            redis_crashes: 2,
            redis_outages: 1,
            redis_freezes: 1,
            redis_down_for: Duration::from_secs(3),
            special: SpecialJobs { timeout: 5, panic: 10, hang: 3, poison: 1, sandboxed: 5 },
            drain_timeout: Duration::from_secs(60),
            work_ms: (5, 50),
            long_work_share: 0.03,
            long_work_ms: (300, 1500),
            seed: 11,
            keep_dir: false,
            partitions: 1,
            groups: 20,
            group_concurrency: 2,
            group_rate: Some(jobs_core::Rate { limit: 4, per: Duration::from_secs(1) }),
            progress: true,
        }
    }

    /// The long run of `scripts/chaos`: `minutes` of load, a worker killed
    /// every 3 s, per minute a Redis crash, two worker stops and special
    /// jobs; every 5 minutes (at least once) Redis down 10 s and frozen 10 s;
    /// of the four worker slots one 7 minutes ahead and one 7 minutes behind;
    /// half the jobs in 50 groups of at most 2 running at once and 4 starts
    /// a second.
    pub fn long(worker_exe: impl Into<PathBuf>, minutes: u32) -> Self {
        let minutes = minutes.max(1);
        let every5 = minutes.div_ceil(5);
        ChaosConfig {
            load: Duration::from_secs(u64::from(minutes) * 60),
            rate: 200,
            worker_procs: 4,
            skewed_clocks: vec![7 * 60, -7 * 60],
            lease: Duration::from_secs(2),
            kill_every: Duration::from_secs(3),
            restart_after: Duration::from_millis(500),
            stops: 2 * minutes,
            redis_crashes: minutes,
            redis_outages: every5,
            redis_freezes: every5,
            redis_down_for: Duration::from_secs(10),
            special: SpecialJobs {
                timeout: 10 * minutes,
                panic: 20 * minutes,
                hang: 3 * minutes,
                poison: every5,
                sandboxed: 10 * minutes,
            },
            drain_timeout: Duration::from_secs(180),
            seed: u64::from(minutes) * 7919,
            groups: 50,
            ..ChaosConfig::ci(worker_exe)
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ChaosError> {
        let bad = |m: &str| Err(ChaosError::Config(m.to_owned()));
        if self.worker_procs < 2 {
            return bad("worker_procs must be at least 2 (one is killed or stopped while others work)");
        }
        if self.concurrency == 0 || self.producers == 0 || self.batch == 0 || self.rate == 0 {
            return bad("concurrency, producers, batch and rate must be at least 1");
        }
        if self.lease < Duration::from_millis(300) {
            return bad("lease must be at least 300 ms");
        }
        if self.work_ms.0 > self.work_ms.1 || self.long_work_ms.0 > self.long_work_ms.1 {
            return bad("work_ms and long_work_ms must be (min, max) with min <= max");
        }
        if !(0.0..=1.0).contains(&self.long_work_share) {
            return bad("long_work_share must be between 0 and 1");
        }
        if self.skewed_clocks.len() > self.worker_procs {
            return bad("skewed_clocks has more entries than there are worker processes");
        }
        if self.skewed_clocks.iter().any(|s| s.unsigned_abs() > MAX_SKEW_S) {
            return bad("a clock skew must be within a day either way");
        }
        if self.groups > 0 && self.group_concurrency == 0 {
            return bad("group_concurrency must be at least 1");
        }
        if self.load < Duration::from_secs(5) {
            return bad("load must be at least 5 s");
        }
        self.groups_can_drain()
    }

    /// Refuses a run whose grouped jobs cannot all start before the drain
    /// times out, by arithmetic alone: with half the load spread over
    /// [`ChaosConfig::groups`], each group starts at most its rate's worth,
    /// and at most `group_concurrency` jobs of the mean length at once. Such
    /// a run would fail with jobs that never ran, which says nothing about
    /// the queue.
    fn groups_can_drain(&self) -> Result<(), ChaosError> {
        if self.groups == 0 {
            return Ok(());
        }
        let mean = |(lo, hi): (u64, u64)| (lo + hi) as f64 / 2.0 / 1000.0;
        let share = self.long_work_share;
        let work_s = ((1.0 - share) * mean(self.work_ms) + share * mean(self.long_work_ms)).max(0.001);
        let mut per_group = f64::from(self.group_concurrency) / work_s;
        if let Some(rate) = self.group_rate {
            per_group = per_group.min(f64::from(rate.limit) / rate.per.as_secs_f64());
        }
        let window = self.load.as_secs_f64() + self.drain_timeout.as_secs_f64();
        let can_start = per_group * f64::from(self.groups) * window;
        let grouped = f64::from(self.rate) * self.load.as_secs_f64() / 2.0;
        if grouped > can_start {
            return Err(ChaosError::Config(format!(
                "{} groups cannot start the run's {grouped:.0} grouped jobs before the drain ends: at most \
                 {per_group:.1} starts a second each over {window:.0} s, {can_start:.0} in all; raise the groups \
                 (--groups), their rate (--group-rate) or their concurrency (--group-concurrency), or lower the \
                 load's rate (--rate)",
                self.groups
            )));
        }
        Ok(())
    }
}

/// Durations as whole milliseconds in the JSON report.
mod ms {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_runs_can_drain() {
        ChaosConfig::ci("w").validate().unwrap();
        for minutes in [1, 2, 20, 60] {
            ChaosConfig::long("w", minutes).validate().unwrap();
        }
    }

    #[test]
    fn a_run_whose_groups_cannot_drain_is_refused() {
        // Three groups at 4 starts a second: 12 a second for 360 s, against
        // 18,000 grouped jobs.
        let few = ChaosConfig { groups: 3, ..ChaosConfig::long("w", 3) };
        let Err(ChaosError::Config(m)) = few.validate() else { panic!("accepted {few:?}") };
        assert!(m.contains("3 groups cannot start the run's 18000 grouped jobs"), "{m}");
        assert!(m.contains("--group-rate"), "says what to change: {m}");
        // Without a rate, two at once of jobs of about 54 ms on average:
        // about 37 starts a second each, enough.
        ChaosConfig { group_rate: None, ..few.clone() }.validate().unwrap();
        // One at once, with five times the load: bound by the concurrency.
        let busy = ChaosConfig { group_rate: None, group_concurrency: 1, rate: 1000, ..few.clone() };
        assert!(busy.validate().is_err(), "{busy:?}");
        // The three groups' run of bound 8 and 1000 starts a second.
        let wide_open = ChaosConfig {
            group_concurrency: 8,
            group_rate: Some(jobs_core::Rate { limit: 1000, per: Duration::from_secs(1) }),
            ..few
        };
        wide_open.validate().unwrap();
    }
}
