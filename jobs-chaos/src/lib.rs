//! The chaos suite of `jobs`: real worker processes and a real
//! `redis-server` under faults, with a verdict on every job, checking the
//! at-least-once delivery that `jobs-core`'s README ("Semantics") and
//! `docs/architecture.md` describe.
//!
//! A run starts `redis-server` with `appendonly yes` on a free loopback
//! port, several worker processes (this crate's binary in `worker` mode) and
//! in-process producers. While producers enqueue it
//!
//! - runs some worker processes with their clock minutes off
//!   (libfaketime), restarted skewed after every kill;
//! - SIGKILLs a random worker process every few seconds, and restarts it;
//! - stops a worker process (SIGSTOP) for three leases, then continues it:
//!   its late results must be refused, the newer attempt wins;
//! - SIGKILLs Redis and restarts it from its append-only file, under load;
//! - takes Redis down (connections refused) and freezes it (SIGSTOP:
//!   connections hang) for a while, then brings it back;
//! - runs handlers that exhaust their timeout, that panic, that never
//!   return until cancelled, and one that ends its own process;
//! - puts half the jobs in groups with a concurrency bound and a rate.
//!
//! Every job records each attempt in its process's run log
//! ([`runlog`]). At the end every acknowledged job is checked against the
//! run logs and its record ([`verify`]): none lost, each ran at least once,
//! each ended as its kind must, and every duplicate run is explained by a
//! fault that cost its lease; and no group went past its bound or its
//! rate, or kept a count after the drain ([`groups`]). The [`Report`] has
//! a table and JSON.
//!
//! ```no_run
//! // In an integration test of this crate: `env!("CARGO_BIN_EXE_jobs-chaos")`.
//! let cfg = jobs_chaos::ChaosConfig::ci("target/debug/jobs-chaos");
//! let report = jobs_chaos::run(cfg)?;
//! println!("{}", report.table());
//! assert!(report.passed, "{:?}", report.failures);
//! # Ok::<(), jobs_chaos::ChaosError>(())
//! ```
//!
//! `docs/chaos.md` explains the checks, what each `appendfsync` policy
//! risks, and the figures of the long run (`scripts/chaos`).

mod config;
mod error;
pub mod faults;
mod fleet;
pub mod groups;
pub mod jobs;
mod model;
mod producer;
pub mod redis_proc;
mod report;
mod run;
pub mod runlog;
pub mod verify;
mod worker;

pub use config::{ChaosConfig, Fsync, SpecialJobs};
pub use error::ChaosError;
pub use fleet::{Fleet, WorkerSpec};
pub use redis_proc::RedisProc;
pub use report::Report;
pub use run::run;
pub use worker::{connect, redis_config, run_worker, serve_sandbox_child, WorkerArgs};
