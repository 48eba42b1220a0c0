//! `--peers`: jobs beside the Rust job libraries it is measured against,
//! through the same scenarios on the same `redis-server`: each library at
//! its defaults but for the settings [`PeerFigures::settings`] names, the same
//! no-op job with the same 50-byte payload ([`Stamp`]), one producer
//! sending batches of [`BATCH`] in the same process.
//!
//! Each peer is an optional build (`peer-bullmq`, `peer-sidekiq`,
//! `peer-apalis`, or `peers` for all); jobs itself always runs.

#[cfg(feature = "peer-apalis")]
mod apalis;
#[cfg(feature = "peer-bullmq")]
mod bullmq;
mod jobs;
#[cfg(feature = "peer-sidekiq")]
mod sidekiq;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::{now_ns, SINK};
use crate::scenario::Percentiles;
use crate::{BenchError, Progress, Target};

/// A boxed future, as the peers' trait objects return.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Jobs per producer call (a library without a bulk call sends them
/// concurrently).
pub const BATCH: usize = 500;

/// How long a scenario may take before the peer is reported stuck.
const STUCK: Duration = Duration::from_secs(60);

/// The payload every library's job carries: when it was sent (nanoseconds
/// since the Unix epoch) and padding to 50 bytes of JSON, as
/// [`BenchNoop`](crate::job::BenchNoop)'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamp {
    /// When it was sent.
    pub sent: u64,
    /// Padding.
    pub pad: String,
}

impl Stamp {
    fn at(sent: u64) -> Stamp {
        Stamp { sent, pad: "xxxxxxxxxxxxx".to_owned() }
    }

    /// Counts a run of the job in the benchmark's sink (timed when it
    /// records).
    pub fn ran(&self) {
        SINK.ran(self.sent);
    }
}

/// Sends jobs of one library.
pub(crate) trait Producer: Send + Sync {
    /// Enqueues one job per stamp.
    fn send<'a>(&'a self, stamps: Vec<Stamp>) -> BoxFuture<'a, Result<(), String>>;
}

/// A library's running workers.
pub(crate) trait Workers: Send {
    /// Stops them (waits a little for their shutdown).
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Starts a library's producer on the server at a URL.
pub(crate) type StartProducer = for<'a> fn(&'a str) -> BoxFuture<'a, Result<Box<dyn Producer>, String>>;
/// Starts this many of a library's workers on the server at a URL.
pub(crate) type StartWorkers = for<'a> fn(&'a str, usize) -> BoxFuture<'a, Result<Box<dyn Workers>, String>>;
/// A row of the table: its label, and a library's cell.
type Row<'a> = (String, &'a dyn Fn(&PeerFigures) -> String);

/// One library as the comparison runs it.
pub(crate) struct Peer {
    /// Its crate.
    pub(crate) name: &'static str,
    /// The crate's version.
    pub(crate) version: &'static str,
    /// What the benchmark sets beside its defaults.
    pub(crate) settings: &'static str,
    /// Its producer on the server at a URL.
    pub(crate) producer: StartProducer,
    /// Its workers, this many at once, on the server at a URL.
    pub(crate) workers: StartWorkers,
}

/// The names of the libraries this build measures: jobs first, then each
/// peer built in.
pub fn built_in() -> Vec<&'static str> {
    peers().iter().map(|p| p.name).collect()
}

/// The libraries this build measures: jobs first, then each peer built in.
fn peers() -> Vec<Peer> {
    vec![
        jobs::peer(),
        #[cfg(feature = "peer-bullmq")]
        bullmq::peer(),
        #[cfg(feature = "peer-sidekiq")]
        sidekiq::peer(),
        #[cfg(feature = "peer-apalis")]
        apalis::peer(),
    ]
}

/// The sizes of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct PeerSettings {
    /// Jobs of the end-to-end run with a small pool, and its workers.
    pub small: (usize, usize),
    /// Jobs of the end-to-end and drain runs with a large pool, and its
    /// workers.
    pub large: (usize, usize),
    /// Jobs timed for pickup latency (after a 5 % warm-up), at this rate,
    /// by an idle pool of the small size.
    pub pickup: (usize, u32),
    /// Rounds: each figure is the median of this many runs.
    pub rounds: usize,
    /// Only the libraries of these names (empty: every one built in).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

impl PeerSettings {
    /// The sizes of the README's table.
    pub fn full(rounds: usize) -> Self {
        PeerSettings { small: (20_000, 32), large: (50_000, 256), pickup: (2_000, 500), rounds, only: Vec::new() }
    }

    /// Small sizes, for a quick look.
    pub fn quick(rounds: usize) -> Self {
        PeerSettings { small: (5_000, 32), large: (10_000, 256), pickup: (500, 500), rounds, only: Vec::new() }
    }

    /// Tiny sizes for the smoke test: every code path, no meaningful figure.
    pub fn smoke() -> Self {
        PeerSettings { small: (200, 4), large: (400, 16), pickup: (20, 500), rounds: 1, only: Vec::new() }
    }
}

/// One figure over the rounds: the median and the spread, or why a round
/// failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    /// Median of the rounds that ran.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Each round's value, in the order run.
    pub runs: Vec<f64>,
    /// Rounds that did not finish, and the first one's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<(usize, String)>,
}

impl Spread {
    pub(crate) fn of(runs: Vec<f64>, failed: Option<(usize, String)>) -> Spread {
        let mut sorted = runs.clone();
        let median = crate::scenario::median(&mut sorted);
        Spread {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            runs,
            failed,
        }
    }
}

/// What one library reached.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFigures {
    /// Its crate.
    pub name: String,
    /// The crate's version.
    pub version: String,
    /// What the benchmark set beside its defaults.
    pub settings: String,
    /// Jobs per second end to end with the small pool.
    pub e2e_small: Spread,
    /// Jobs per second end to end with the large pool.
    pub e2e_large: Spread,
    /// Jobs per second draining a backlog with the large pool.
    pub drain_large: Spread,
    /// Pickup latency p50 (ms).
    pub pickup_p50_ms: Spread,
    /// Pickup latency p99 (ms).
    pub pickup_p99_ms: Spread,
}

/// Empties the server between runs: each library leaves keys of its own,
/// under names the benchmark cannot scope.
async fn flush(url: &str) -> Result<(), BenchError> {
    let client = redis::Client::open(url).map_err(|e| BenchError::Redis(e.to_string()))?;
    let mut c = client.get_multiplexed_async_connection().await.map_err(|e| BenchError::Redis(e.to_string()))?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut c).await.map_err(|e| BenchError::Redis(e.to_string()))
}

/// Sends `n` stamped jobs in batches of [`BATCH`].
async fn produce(producer: &dyn Producer, n: usize) -> Result<(), String> {
    let mut left = n;
    while left > 0 {
        let k = left.min(BATCH);
        producer.send((0..k).map(|_| Stamp::at(now_ns())).collect()).await?;
        left -= k;
    }
    Ok(())
}

/// Waits until the sink counted `n` runs.
async fn ran(n: usize, what: &str) -> Result<(), String> {
    if SINK.wait_for(n as u64, STUCK, |_| {}).await {
        Ok(())
    } else {
        Err(format!("{what}: {} of {n} jobs ran within {}s", SINK.done(), STUCK.as_secs()))
    }
}

/// Jobs per second from the first send until the last job ran, workers
/// started (and idle) first.
async fn end_to_end(peer: &Peer, url: &str, n: usize, workers: usize) -> Result<f64, String> {
    let producer = (peer.producer)(url).await?;
    let running = (peer.workers)(url, workers).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    SINK.reset(false);
    let start = std::time::Instant::now();
    let out = async {
        produce(&*producer, n).await?;
        ran(n, "end to end").await
    }
    .await;
    let secs = start.elapsed().as_secs_f64();
    running.stop().await;
    out.map(|()| n as f64 / secs)
}

/// Jobs per second draining `n` jobs enqueued before the workers start,
/// from their start.
async fn drain(peer: &Peer, url: &str, n: usize, workers: usize) -> Result<f64, String> {
    let producer = (peer.producer)(url).await?;
    produce(&*producer, n).await?;
    SINK.reset(false);
    let start = std::time::Instant::now();
    let running = (peer.workers)(url, workers).await?;
    let out = ran(n, "drain").await;
    let secs = start.elapsed().as_secs_f64();
    running.stop().await;
    out.map(|()| n as f64 / secs)
}

/// From before each send to the job's start, one job at a time at `rate`
/// per second, idle workers; the first 5 % a warm-up.
async fn pickup(peer: &Peer, url: &str, n: usize, rate: u32, workers: usize) -> Result<Percentiles, String> {
    let producer = (peer.producer)(url).await?;
    let running = (peer.workers)(url, workers).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warmup = n / 20;
    SINK.reset(true);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let out = async {
        for _ in 0..n + warmup {
            tick.tick().await;
            producer.send(vec![Stamp::at(now_ns())]).await?;
        }
        ran(n + warmup, "pickup").await
    }
    .await;
    let mut samples = SINK.take();
    running.stop().await;
    out?;
    // The first sent are the warm-up; samples are in run order, close to
    // send order at this rate.
    samples.drain(..warmup.min(samples.len()));
    Ok(Percentiles::of(samples))
}

/// One figure of every round, each round on an empty server.
async fn rounds<T>(
    url: &str,
    n: usize,
    mut one: impl AsyncFnMut() -> Result<T, String>,
    value: impl Fn(&T) -> Vec<f64>,
    width: usize,
) -> Result<Vec<Spread>, BenchError> {
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); width];
    let mut failed: Option<(usize, String)> = None;
    for _ in 0..n {
        flush(url).await?;
        match one().await {
            Ok(v) => {
                for (i, x) in value(&v).into_iter().enumerate() {
                    runs[i].push(x);
                }
            }
            Err(e) => match &mut failed {
                Some((k, _)) => *k += 1,
                None => failed = Some((1, e)),
            },
        }
    }
    Ok(runs.into_iter().map(|r| Spread::of(r, failed.clone())).collect())
}

/// Every library built in, through every scenario, `settings.rounds` times.
pub async fn run(target: &Target, s: &PeerSettings, progress: &Progress) -> Result<Vec<PeerFigures>, BenchError> {
    let url = target.url();
    let mut out = Vec::new();
    for peer in peers().into_iter().filter(|p| s.only.is_empty() || s.only.iter().any(|o| o == p.name)) {
        let p =
            progress.sub(&format!("{} {}: end to end, drain, pickup ({} rounds)", peer.name, peer.version, s.rounds));
        let (n, w) = s.small;
        let e2e_small = one(rounds(url, s.rounds, async || end_to_end(&peer, url, n, w).await, |v| vec![*v], 1).await?);
        p.step(1, 4);
        let (n, w) = s.large;
        let e2e_large = one(rounds(url, s.rounds, async || end_to_end(&peer, url, n, w).await, |v| vec![*v], 1).await?);
        p.step(2, 4);
        let drain_large = one(rounds(url, s.rounds, async || drain(&peer, url, n, w).await, |v| vec![*v], 1).await?);
        p.step(3, 4);
        let (n, rate) = s.pickup;
        let mut pick = rounds(
            url,
            s.rounds,
            async || pickup(&peer, url, n, rate, s.small.1).await,
            |v: &Percentiles| vec![v.p50_ms, v.p99_ms],
            2,
        )
        .await?
        .into_iter();
        let figures = PeerFigures {
            name: peer.name.to_owned(),
            version: peer.version.to_owned(),
            settings: peer.settings.to_owned(),
            e2e_small,
            e2e_large,
            drain_large,
            pickup_p50_ms: pick.next().unwrap_or_default(),
            pickup_p99_ms: pick.next().unwrap_or_default(),
        };
        p.done(&format!(
            "{:.0}/s and {:.0}/s end to end, {:.0}/s draining, pickup p50 {:.3} ms",
            figures.e2e_small.median,
            figures.e2e_large.median,
            figures.drain_large.median,
            figures.pickup_p50_ms.median
        ));
        out.push(figures);
    }
    flush(url).await?;
    Ok(out)
}

/// The spread of a measurement of one figure.
fn one(v: Vec<Spread>) -> Spread {
    v.into_iter().next().unwrap_or_default()
}

/// The comparison as a Markdown table: a column per library, each figure
/// its median with the spread of the rounds.
pub fn table(s: &PeerSettings, all: &[PeerFigures]) -> String {
    let mut t = String::from("| figure |");
    for f in all {
        t.push_str(&format!(" {} {} |", f.name, f.version));
    }
    t.push_str("\n| --- |");
    t.push_str(&" ---: |".repeat(all.len()));
    t.push('\n');
    let rate = |sp: &Spread| cell(sp, |v| format!("{v:.0}/s"));
    let ms = |sp: &Spread| cell(sp, |v| format!("{v:.3} ms"));
    let rows: [Row<'_>; 5] = [
        (format!("end to end, {} workers, {} jobs", s.small.1, s.small.0), &|f| rate(&f.e2e_small)),
        (format!("end to end, {} workers, {} jobs", s.large.1, s.large.0), &|f| rate(&f.e2e_large)),
        (format!("drain a backlog of {}, {} workers", s.large.0, s.large.1), &|f| rate(&f.drain_large)),
        (format!("pickup at {}/s, p50", s.pickup.1), &|f| ms(&f.pickup_p50_ms)),
        (format!("pickup at {}/s, p99", s.pickup.1), &|f| ms(&f.pickup_p99_ms)),
    ];
    for (name, get) in rows {
        t.push_str(&format!("| {name} |"));
        for f in all {
            t.push_str(&format!(" {} |", get(f)));
        }
        t.push('\n');
    }
    t.push_str(&format!("\nMedians of {} rounds (smallest to largest in brackets). Settings:\n", s.rounds));
    for f in all {
        t.push_str(&format!("- {} {}: {}\n", f.name, f.version, f.settings));
    }
    t
}

fn cell(sp: &Spread, show: impl Fn(f64) -> String) -> String {
    if sp.runs.is_empty() {
        return format!("failed: {}", sp.failed.as_ref().map_or("no run", |(_, e)| e.as_str()));
    }
    let failed = match &sp.failed {
        Some((k, _)) => format!("; {k} round(s) failed"),
        None => String::new(),
    };
    if sp.runs.len() == 1 {
        return format!("{}{failed}", show(sp.median));
    }
    format!("{} ({} to {}{failed})", show(sp.median), show(sp.min), show(sp.max))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn the_peers_payload_is_fifty_bytes_as_jobs_own() {
        let json = serde_json::to_vec(&Stamp::at(now_ns())).unwrap();
        assert_eq!(json.len(), crate::job::PAYLOAD_BYTES, "{}", String::from_utf8_lossy(&json));
    }

    #[test]
    fn a_spread_is_the_median_and_the_range_of_its_rounds() {
        let s = Spread::of(vec![3.0, 1.0, 2.0], None);
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, vec![3.0, 1.0, 2.0]));
        assert_eq!(Spread::of(vec![4.0, 1.0], None).median, 2.5);
        let failed = Spread::of(Vec::new(), Some((2, "stuck".into())));
        assert_eq!(cell(&failed, |v| format!("{v}")), "failed: stuck");
        assert_eq!(
            cell(&Spread::of(vec![1.0, 2.0], Some((1, "x".into()))), |v| format!("{v}")),
            "1.5 (1 to 2; 1 round(s) failed)"
        );
    }
}
