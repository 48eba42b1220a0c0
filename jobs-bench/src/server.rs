//! The Redis server under test: started here or given by URL; its `INFO`
//! figures, key cleanup, and `redis-benchmark` for the machine's ceiling.

use std::collections::BTreeMap;

use jobs_redis::testing::RedisServer;
use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo};
use serde::Serialize;

use crate::BenchError;

/// The server the benchmark runs against.
pub struct Target {
    url: String,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    /// Kept alive while the benchmark runs; stopped on drop.
    own: Option<RedisServer>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &jobs_redis::mask_url(&self.url))
            .field("own", &self.own.is_some())
            .finish()
    }
}

impl Target {
    /// Starts a `redis-server` (no persistence) on a free loopback port in a
    /// temporary directory; it stops when the target is dropped.
    ///
    /// `redis-server` must be on `PATH` or named by `JOBS_REDIS_SERVER`.
    pub fn start() -> Result<Target, BenchError> {
        let server = std::panic::catch_unwind(RedisServer::start)
            .map_err(|_| BenchError::Redis("could not start redis-server (see the message above)".into()))?;
        let mut t = Self::connect(&server.url())?;
        t.own = Some(server);
        Ok(t)
    }

    /// A server of your own (`redis://[user][:password@]host[:port]`). The
    /// benchmark writes only keys under prefixes of its own and deletes them
    /// afterwards; `redis-benchmark` pushes to and pops from `mylist`.
    pub fn connect(url: &str) -> Result<Target, BenchError> {
        let info = url.into_connection_info().map_err(|e| BenchError::Redis(format!("bad Redis URL: {e}")))?;
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
            other => return Err(BenchError::Redis(format!("only plain TCP Redis URLs are supported, not {other:?}"))),
        };
        let settings = info.redis_settings();
        Ok(Target {
            url: url.to_owned(),
            host,
            port,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            own: None,
        })
    }

    /// The URL to connect queues to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this process started the server.
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }

    /// A plain connection for `INFO` and cleanup.
    pub async fn conn(&self) -> Result<MultiplexedConnection, BenchError> {
        let client = redis::Client::open(self.url.as_str()).map_err(redis_err)?;
        client.get_multiplexed_async_connection().await.map_err(redis_err)
    }

    /// One section of `INFO` as field → value.
    pub async fn info(&self, section: &str) -> Result<BTreeMap<String, String>, BenchError> {
        let text: String =
            redis::cmd("INFO").arg(section).query_async(&mut self.conn().await?).await.map_err(redis_err)?;
        Ok(text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect())
    }

    /// `used_memory` of `INFO memory`, in bytes.
    pub async fn used_memory(&self) -> Result<u64, BenchError> {
        let info = self.info("memory").await?;
        info.get("used_memory")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BenchError::Redis("INFO memory has no used_memory".into()))
    }

    /// CPU seconds the server used so far (`INFO cpu`, user and system).
    pub async fn cpu_seconds(&self) -> Result<f64, BenchError> {
        let info = self.info("cpu").await?;
        let get = |k: &str| info.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        Ok(get("used_cpu_user") + get("used_cpu_sys"))
    }

    /// The server's version.
    pub async fn version(&self) -> Result<String, BenchError> {
        Ok(self.info("server").await?.get("redis_version").cloned().unwrap_or_default())
    }

    /// Zeroes `INFO commandstats` (`CONFIG RESETSTAT`).
    pub async fn reset_stats(&self) -> Result<(), BenchError> {
        redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut self.conn().await?).await.map_err(redis_err)
    }

    /// `INFO commandstats`: calls and microseconds per command since the
    /// last reset, busiest first, with the time per job of `jobs` jobs.
    pub async fn command_stats(&self, jobs: usize) -> Result<Vec<CommandStat>, BenchError> {
        let mut out: Vec<CommandStat> = self
            .info("commandstats")
            .await?
            .into_iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("cmdstat_")?.to_owned();
                let field =
                    |f: &str| v.split(',').find_map(|kv| kv.strip_prefix(f)?.strip_prefix('=')?.parse::<f64>().ok());
                let usec = field("usec")?;
                Some(CommandStat {
                    name,
                    calls: field("calls")? as u64,
                    usec: usec as u64,
                    usec_per_job: usec / jobs.max(1) as f64,
                })
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.usec));
        Ok(out)
    }

    /// Deletes every key under `prefix` (`SCAN` + `UNLINK`).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), BenchError> {
        let mut c = self.conn().await?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut c)
                .await
                .map_err(redis_err)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(&keys).query_async::<()>(&mut c).await.map_err(redis_err)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.lazy_frees_done().await
    }

    /// Returns once the server's background thread has freed what `UNLINK`
    /// handed it (`lazyfree_pending_objects` is 0), so that the freeing of
    /// one run's keys neither competes with the next run for the CPU nor
    /// counts in its Redis CPU. Gives up after 30 s.
    async fn lazy_frees_done(&self) -> Result<(), BenchError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let pending =
                self.info("memory").await?.get("lazyfree_pending_objects").and_then(|v| v.parse::<u64>().ok());
            // An older server without the field: nothing to wait for.
            if pending.unwrap_or(0) == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(BenchError::Stuck(format!(
                    "{} objects still being freed after 30 s",
                    pending.unwrap_or(0)
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// `n` PINGs one after another through the Rust driver the queue uses
    /// (a multiplexed connection on this runtime): the round trip an
    /// awaited call cannot go below.
    pub async fn driver_round_trip(&self, n: usize) -> Result<BenchmarkRow, BenchError> {
        let mut c = self.conn().await?;
        let mut ns = Vec::with_capacity(n);
        let start = std::time::Instant::now();
        for _ in 0..n {
            let t = std::time::Instant::now();
            redis::cmd("PING").query_async::<()>(&mut c).await.map_err(redis_err)?;
            ns.push(i64::try_from(t.elapsed().as_nanos()).unwrap_or(i64::MAX));
        }
        let rps = n as f64 / start.elapsed().as_secs_f64();
        let p = crate::scenario::Percentiles::of(ns);
        Ok(BenchmarkRow { test: "PING (redis-rs)".into(), rps, p50_ms: p.p50_ms, p99_ms: p.p99_ms })
    }

    /// Runs `redis-benchmark` against this server: `tests` (comma
    /// separated), `n` requests, `clients` connections, `pipeline` requests
    /// per round trip. Returns one row per test.
    pub async fn redis_benchmark(
        &self,
        tests: &str,
        n: usize,
        clients: usize,
        pipeline: usize,
    ) -> Result<Vec<BenchmarkRow>, BenchError> {
        let mut cmd = tokio::process::Command::new("redis-benchmark");
        cmd.arg("-h").arg(&self.host).arg("-p").arg(self.port.to_string());
        if let Some(u) = &self.username {
            cmd.arg("--user").arg(u);
        }
        if let Some(p) = &self.password {
            cmd.arg("-a").arg(p);
        }
        cmd.args(["--csv", "-t", tests])
            .arg("-n")
            .arg(n.to_string())
            .arg("-c")
            .arg(clients.to_string())
            .arg("-P")
            .arg(pipeline.to_string());
        let out = cmd.output().await.map_err(|e| {
            BenchError::RedisBenchmark(format!("cannot run redis-benchmark ({e}); install Debian's redis-tools"))
        })?;
        if !out.status.success() {
            return Err(BenchError::RedisBenchmark(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        let rows = parse_csv(&String::from_utf8_lossy(&out.stdout));
        if rows.is_empty() {
            return Err(BenchError::RedisBenchmark(format!(
                "no figures in its output: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        Ok(rows)
    }
}

/// One command's share of Redis's time.
#[derive(Debug, Clone, Serialize)]
pub struct CommandStat {
    /// Command name, lowercase (`evalsha`, `lpop`, ...).
    pub name: String,
    /// Calls, counting those made by scripts.
    pub calls: u64,
    /// Microseconds spent in it.
    pub usec: u64,
    /// Microseconds spent in it per job of the measurement.
    pub usec_per_job: f64,
}

/// One line of `redis-benchmark --csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRow {
    /// The test (`PING_MBULK`, `LPUSH`, ...).
    pub test: String,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// Rows of `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
/// "p95_latency_ms","p99_latency_ms","max_latency_ms"`.
fn parse_csv(text: &str) -> Vec<BenchmarkRow> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            if f.len() < 7 {
                return None;
            }
            Some(BenchmarkRow {
                test: f[0].to_owned(),
                rps: f[1].parse().ok()?,
                p50_ms: f[4].parse().ok()?,
                p99_ms: f[6].parse().ok()?,
            })
        })
        .collect()
}

fn redis_err(e: redis::RedisError) -> BenchError {
    BenchError::Redis(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_parse() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"PING_MBULK\",\"34293.55\",\"0.028\",\"0.008\",\"0.023\",\"0.063\",\"0.079\",\"3.823\"\n";
        let rows = parse_csv(text);
        assert_eq!(rows, vec![BenchmarkRow { test: "PING_MBULK".into(), rps: 34293.55, p50_ms: 0.023, p99_ms: 0.079 }]);
    }
}
