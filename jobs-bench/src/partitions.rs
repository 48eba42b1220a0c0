//! The `partitions` measurement: the end-to-end run on a Redis Cluster of
//! three masters started for it, once with the bench queue in one
//! partition (one hash slot, so one master does all of the queue's work)
//! and once spread over partitions whose slots are on every master, each
//! with every master's share of Redis's CPU: does partitioning a queue
//! spread its work over the cluster, and at what cost per job?
//!
//! It runs only when `--only` names it (see [`crate::Settings::only`]): it
//! starts three `redis-server`s of its own, ignoring `--redis`, since the
//! partitions' placement on masters is only known on a cluster it formed.

use std::collections::BTreeMap;

use jobs_redis::testing::RedisCluster;
use jobs_redis::{RedisConfig, RedisQueue};
use serde::Serialize;

use crate::job::QUEUE;
use crate::scenario::{self, EndToEnd};
use crate::server::Target;
use crate::{BenchError, Progress, Settings, Store};

/// Masters of the cluster (the fewest Redis Cluster allows).
pub const MASTERS: usize = 3;

/// The fewest partitions the partitioned run uses (one per master, when
/// their slots fall on different masters).
const FEWEST_PARTITIONS: u16 = MASTERS as u16;

/// The most partitions the partitioned run uses to reach every master.
pub const MOST_PARTITIONS: u16 = 8;

/// What the `partitions` measurement found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionFigures {
    /// The masters' ports, in the order they were started.
    pub masters: Vec<u16>,
    /// Partitions of the bench queue in the partitioned run: the fewest
    /// from 3 whose slots are on every master (at most 8).
    pub partitions: u16,
    /// Masters holding at least one of those partitions (3 unless even 8
    /// partitions missed one).
    pub masters_used: usize,
    /// Where each partition of the partitioned run lives, partition 0
    /// first.
    pub placement: Vec<Placement>,
    /// The end-to-end run with the bench queue in one partition.
    pub unpartitioned: PartitionRun,
    /// The same run with the queue over [`PartitionFigures::partitions`]
    /// partitions.
    pub partitioned: PartitionRun,
}

/// Where one partition of the bench queue lives.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placement {
    /// The partition (0: the queue's own keys).
    pub partition: u16,
    /// Its hash tag (`bench`, `bench~1~<salt>`, ...).
    pub tag: String,
    /// Its hash slot.
    pub slot: u16,
    /// The port of the master that owns the slot.
    pub master: u16,
}

/// One end-to-end run on the cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionRun {
    /// Partitions of the bench queue (1: not partitioned).
    pub partitions: u16,
    /// The run's figures; `redis_cpu_us_per_job` is summed over the
    /// masters.
    #[serde(flatten)]
    pub end_to_end: EndToEnd,
    /// Each master's share of the Redis CPU the run used, by port (the
    /// shares add up to 1).
    pub redis_cpu_share: BTreeMap<u16, f64>,
    /// (largest share - smallest share) / mean share: 0 when the masters
    /// worked alike, 3 (the number of masters) when one did all the work.
    pub spread: f64,
}

impl PartitionRun {
    /// One line: jobs/s, Redis CPU per job, the masters' shares and their
    /// spread.
    pub fn summary(&self) -> String {
        let shares: Vec<String> =
            self.redis_cpu_share.iter().map(|(port, share)| format!(":{port} {:.0} %", share * 100.0)).collect();
        format!(
            "{:.0} jobs/s; Redis CPU {} µs per job over {MASTERS} masters ({}; spread {:.2})",
            self.end_to_end.per_s,
            self.end_to_end.redis_cpu_us_per_job.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            shares.join(", "),
            self.spread
        )
    }
}

/// The measurement (see the module documentation): a cluster of its own,
/// then the end-to-end run of the `e2e` measurement's sizes on it, first
/// with the bench queue in one partition, then spread over partitions on
/// every master.
pub async fn measure(s: &Settings, progress: &Progress) -> Result<PartitionFigures, BenchError> {
    let p = progress.sub(&format!("partitions: starting a Redis Cluster of {MASTERS} masters"));
    let (cluster, places) = start_cluster().await?;
    let ports = cluster.ports();
    let partitions = covering(&places, MASTERS);
    let placement: Vec<Placement> = places.into_iter().take(usize::from(partitions)).collect();
    let masters_used = distinct_masters(&placement);
    p.done(&format!(
        "masters on ports {}; {partitions} partitions of `{QUEUE}` cover {masters_used} of them ({})",
        ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
        placement
            .iter()
            .map(|pl| format!("{{{}}} slot {} on :{}", pl.tag, pl.slot, pl.master))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let masters = ports
        .iter()
        .map(|&port| Ok((port, Target::connect(&format!("redis://127.0.0.1:{port}"))?)))
        .collect::<Result<Vec<_>, BenchError>>()?;
    let url = cluster.url();
    let unpartitioned = announced_run(&url, &masters, 1, s, progress).await?;
    let partitioned = announced_run(&url, &masters, partitions, s, progress).await?;
    // Stops the nodes: after the runs, which need them.
    drop(cluster);
    Ok(PartitionFigures { masters: ports, partitions, masters_used, placement, unpartitioned, partitioned })
}

/// Starts the cluster and finds where partitions 0 to 7 of the bench queue
/// live. `RedisCluster` blocks (it starts processes and waits for the
/// cluster to form), so it runs off the runtime's workers; it panics when
/// it cannot start, which comes back here as an error (its message printed
/// above, as [`Target::start`] does).
async fn start_cluster() -> Result<(RedisCluster, Vec<Placement>), BenchError> {
    tokio::task::spawn_blocking(|| {
        let cluster = RedisCluster::start(MASTERS);
        let places = (0..MOST_PARTITIONS)
            .map(|partition| {
                let tag = match partition {
                    0 => QUEUE.to_owned(),
                    n => jobs_redis::keys::partition_tag(QUEUE, n),
                };
                // The slot of any key under the tag is the tag's.
                let slot = jobs_redis::keys::key_slot(format!("{{{tag}}}").as_bytes());
                Placement { partition, master: cluster.owner_of(slot), tag, slot }
            })
            .collect();
        (cluster, places)
    })
    .await
    .map_err(|e| BenchError::Redis(format!("could not start a Redis Cluster (see the message above): {e}")))
}

/// The fewest partitions, from 3, whose slots are on `masters` different
/// masters; all of `places` when none are.
fn covering(places: &[Placement], masters: usize) -> u16 {
    (FEWEST_PARTITIONS..=MOST_PARTITIONS)
        .find(|&n| distinct_masters(&places[..usize::from(n).min(places.len())]) >= masters)
        // At most `MOST_PARTITIONS` (a u16) places are made.
        .unwrap_or(places.len() as u16)
}

/// How many different masters hold these partitions.
fn distinct_masters(places: &[Placement]) -> usize {
    places.iter().map(|p| p.master).collect::<std::collections::BTreeSet<_>>().len()
}

/// [`run_on`] with its progress line and its result on stderr.
async fn announced_run(
    url: &str,
    masters: &[(u16, Target)],
    partitions: u16,
    s: &Settings,
    progress: &Progress,
) -> Result<PartitionRun, BenchError> {
    let p = progress.sub(&format!(
        "partitions: end to end on {MASTERS} masters, `{QUEUE}` in {partitions} partition(s), {} workers",
        s.workers
    ));
    let run = run_on(url, masters, partitions, s, &p).await?;
    p.done(&run.summary());
    Ok(run)
}

/// One end-to-end run with the bench queue in `partitions` partitions, on
/// fresh handles under a key prefix of its own, and the masters' CPU
/// around it. The masters are emptied afterwards, so that the next run
/// neither shares their memory with this one's keys nor pays for their
/// expiry.
async fn run_on(
    url: &str,
    masters: &[(u16, Target)],
    partitions: u16,
    s: &Settings,
    p: &Progress,
) -> Result<PartitionRun, BenchError> {
    let prefix = format!("jobs-bench-{}-partitions-{partitions}", std::process::id());
    let config = RedisConfig {
        prefix: prefix.clone(),
        // The unpartitioned run sets no count: the queue is as it would be
        // without the feature.
        partitions: if partitions > 1 { [(QUEUE.to_owned(), partitions)].into() } else { BTreeMap::new() },
        ..RedisConfig::new(url)
    };
    let producer = RedisQueue::from_config(&config).await?;
    // Connecting applied the count; a handle reading another count from
    // Redis would measure something else than it says.
    let count = producer.partitions(QUEUE).await?;
    if count != partitions {
        return Err(BenchError::Redis(format!("`{QUEUE}` has {count} partitions under {prefix}, not {partitions}")));
    }
    let st = Store {
        producer: scenario::shared(producer),
        worker: scenario::shared(RedisQueue::from_config(&config).await?),
        prefix: Some(prefix),
    };
    let before = cpu_seconds(masters).await?;
    let shape = (s.producer_batch, s.producers);
    let mut e2e = scenario::end_to_end(&st, s.e2e_n, s.workers, shape, None, p).await?;
    // As in the `e2e` measurement, includes the last status polls and the
    // pool's shutdown: a slight overestimate.
    let after = cpu_seconds(masters).await?;
    drop(st);
    let used: Vec<(u16, f64)> =
        masters.iter().zip(before.iter().zip(&after)).map(|((port, _), (b, a))| (*port, a - b)).collect();
    let (total, redis_cpu_share, spread) = shares(&used)?;
    e2e.redis_cpu_us_per_job = Some(total * 1e6 / s.e2e_n.max(1) as f64);
    for (port, m) in masters {
        flush(*port, m).await?;
    }
    Ok(PartitionRun { partitions, end_to_end: e2e, redis_cpu_share, spread })
}

/// Each master's CPU seconds so far (`INFO cpu`), in the order given.
async fn cpu_seconds(masters: &[(u16, Target)]) -> Result<Vec<f64>, BenchError> {
    let mut out = Vec::with_capacity(masters.len());
    for (_, m) in masters {
        out.push(m.cpu_seconds().await?);
    }
    Ok(out)
}

/// The CPU seconds used over all masters, each master's share of them by
/// port, and the shares' spread ((largest - smallest) / mean).
fn shares(used: &[(u16, f64)]) -> Result<(f64, BTreeMap<u16, f64>, f64), BenchError> {
    let total: f64 = used.iter().map(|(_, s)| s).sum();
    // A run of any jobs costs Redis some CPU; none means the figures were
    // not read from the servers that ran it.
    if used.is_empty() || !total.is_finite() || total <= 0.0 {
        return Err(BenchError::Redis(format!("the masters report no CPU used by the run: {used:?}")));
    }
    let share: BTreeMap<u16, f64> = used.iter().map(|&(port, s)| (port, s / total)).collect();
    let (lo, hi) = share.values().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mean = 1.0 / share.len() as f64;
    Ok((total, share, (hi - lo) / mean))
}

/// Empties one master (`FLUSHALL SYNC`: freed before it answers, so the
/// freeing counts in neither run).
async fn flush(port: u16, master: &Target) -> Result<(), BenchError> {
    redis::cmd("FLUSHALL")
        .arg("SYNC")
        .query_async::<()>(&mut master.conn().await?)
        .await
        .map_err(|e| BenchError::Redis(format!("FLUSHALL on :{port}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(masters: &[u16]) -> Vec<Placement> {
        masters
            .iter()
            .enumerate()
            .map(|(i, &master)| Placement { partition: i as u16, master, ..Default::default() })
            .collect()
    }

    #[test]
    fn the_fewest_partitions_from_three_that_reach_every_master() {
        assert_eq!(covering(&places(&[1, 2, 3, 1, 2, 3, 1, 2]), 3), 3);
        assert_eq!(covering(&places(&[1, 1, 2, 2, 3, 1, 2, 3]), 3), 5);
        // None reaches the third master: all of them.
        assert_eq!(covering(&places(&[1, 2, 1, 2, 1, 2, 1, 2]), 3), 8);
    }

    #[test]
    fn shares_add_up_to_one_and_spread_goes_from_zero_to_the_masters() {
        let (total, share, spread) = shares(&[(7001, 1.0), (7002, 1.0), (7003, 1.0)]).expect("cpu used");
        assert_eq!((total, spread), (3.0, 0.0));
        assert!((share.values().sum::<f64>() - 1.0).abs() < 1e-12);
        let (_, share, spread) = shares(&[(7001, 2.0), (7002, 0.0), (7003, 0.0)]).expect("cpu used");
        assert_eq!((share[&7001], spread), (1.0, 3.0));
        assert!(shares(&[(7001, 0.0), (7002, 0.0), (7003, 0.0)]).is_err());
    }

    #[test]
    fn only_an_explicit_only_runs_it() {
        let mut s = Settings::smoke();
        assert!(s.runs("e2e") && !s.runs("partitions"), "the default run leaves it out");
        s.only = vec!["partitions".into()];
        assert!(s.runs("partitions") && !s.runs("e2e"));
    }
}
