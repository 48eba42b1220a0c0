//! Producers: enqueue the load in batches at a steady rate, retrying a
//! failed batch (the same jobs, the same ids: a batch whose reply was lost
//! is not stored twice) until Redis acknowledges it. Only acknowledged ids
//! are recorded: they are what the run must not lose.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{JobExt, JobOptions, JobQueue, NewJob};
use jobs_redis::RedisQueue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::ChaosConfig;
use crate::error::ChaosError;
use crate::jobs::{ChaosHang, ChaosPanic, ChaosPoison, ChaosSandboxed, ChaosTimeout, ChaosWork, Kind};
use crate::model::{lock, Acked, Shared};
use crate::runlog::now_ms;

/// Hands out the special jobs so that they spread over the first 80 % of
/// the load (and finish before the drain).
#[derive(Debug)]
pub(crate) struct Specials {
    targets: [(Kind, u32); 5],
    emitted: Mutex<[u32; 5]>,
}

impl Specials {
    pub(crate) fn new(cfg: &ChaosConfig) -> Self {
        let s = cfg.special;
        Specials {
            targets: [
                (Kind::Timeout, s.timeout),
                (Kind::Panic, s.panic),
                (Kind::Hang, s.hang),
                (Kind::Poison, s.poison),
                (Kind::Sandboxed, s.sandboxed),
            ],
            emitted: Mutex::new([0; 5]),
        }
    }

    /// The kind of the next job at `fraction` (0..1) of the load.
    fn next(&self, fraction: f64) -> Kind {
        let f = (fraction / 0.8).min(1.0);
        let mut emitted = lock(&self.emitted);
        for (i, (kind, total)) in self.targets.iter().enumerate() {
            let due = (f * f64::from(*total)).ceil() as u32;
            if emitted[i] < due.min(*total) {
                emitted[i] += 1;
                return *kind;
            }
        }
        Kind::Work
    }
}

/// The group of the job numbered `seq`: with [`ChaosConfig::groups`] set,
/// `g<n>` for an even `seq` (the odd half stays ungrouped, so both paths
/// run under the same faults).
fn group_of(cfg: &ChaosConfig, seq: u64) -> Option<String> {
    (cfg.groups > 0 && seq.is_multiple_of(2)).then(|| format!("g{}", (seq / 2) % u64::from(cfg.groups)))
}

/// One producer task: `rate` jobs per second until `load_end`.
pub(crate) async fn produce(
    cfg: ChaosConfig,
    queue: RedisQueue,
    shared: Arc<Shared>,
    specials: Arc<Specials>,
    index: usize,
    started: Instant,
) -> Result<(), ChaosError> {
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(index as u64 + 1));
    let rate = f64::from(cfg.rate) / cfg.producers as f64;
    let every = Duration::from_secs_f64(cfg.batch as f64 / rate.max(0.001));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let load_end = started + cfg.load;
    let mut seq = (index as u64) << 40;
    while Instant::now() < load_end {
        ticker.tick().await;
        let fraction = started.elapsed().as_secs_f64() / cfg.load.as_secs_f64();
        let mut kinds = Vec::with_capacity(cfg.batch);
        let mut batch: Vec<NewJob> = Vec::with_capacity(cfg.batch);
        for _ in 0..cfg.batch {
            seq += 1;
            let kind = specials.next(fraction);
            let opts = match group_of(&cfg, seq) {
                Some(g) => JobOptions::new().group(g),
                None => JobOptions::new(),
            };
            let job = match kind {
                Kind::Work => {
                    let (lo, hi) = if rng.random_bool(cfg.long_work_share) { cfg.long_work_ms } else { cfg.work_ms };
                    let sleep_ms = rng.random_range(lo..=hi);
                    ChaosWork { seq, sleep_ms }.into_new_job(opts)?
                }
                Kind::Timeout => ChaosTimeout { seq }.into_new_job(opts)?,
                Kind::Panic => ChaosPanic { seq }.into_new_job(opts)?,
                Kind::Hang => ChaosHang { seq }.into_new_job(opts)?,
                Kind::Poison => ChaosPoison { seq }.into_new_job(opts)?,
                Kind::Sandboxed => ChaosSandboxed { seq }.into_new_job(opts)?,
            };
            kinds.push(kind);
            batch.push(job);
        }
        let mut delay = Duration::from_millis(50);
        let ids = loop {
            match queue.enqueue_many(batch.clone()).await {
                Ok(ids) => break ids,
                Err(e) => {
                    if shared.enqueue_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        shared.note(format!("first failed enqueue (retried with the same ids): {e}"));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
            }
        };
        let at = now_ms();
        let mut acked = lock(&shared.acked);
        for (id, kind) in ids.into_iter().zip(kinds) {
            acked.push(Acked { id, kind, ack_ms: at });
        }
    }
    Ok(())
}
