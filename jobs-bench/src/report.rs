//! The figures, their JSON form and the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::scenario::{EndToEnd, EventFigures, Percentiles, Rate, RateWait};
use crate::server::{BenchmarkRow, CommandStat};
use crate::Settings;

/// Every figure of one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Single enqueues, each awaited before the next.
    #[serde(skip_serializing_if = "Rate::unmeasured")]
    pub enqueue_single: Rate,
    /// Single enqueues, many in flight.
    #[serde(skip_serializing_if = "Rate::unmeasured")]
    pub enqueue_in_flight: Rate,
    /// `enqueue_many` batches.
    #[serde(skip_serializing_if = "Rate::unmeasured")]
    pub enqueue_many: Rate,
    /// No-op jobs through a worker pool while producers run.
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end: EndToEnd,
    /// The same end-to-end run with the workers spread over worker
    /// processes (Redis only; CPU per job counts every process).
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end_processes: EndToEnd,
    /// The same end-to-end run with every job in a group, 10 jobs per
    /// group (served in turn).
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end_groups: EndToEnd,
    /// The grouped run beside `idle_groups` groups held out of the turn.
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end_groups_idle: EndToEnd,
    /// The grouped run beside the jobs `idle_groups` groups hold, without
    /// groups (the control of `end_to_end_groups_idle`).
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end_groups_live: EndToEnd,
    /// A workflow with a wide fan-out and its fan-in.
    #[serde(skip_serializing_if = "crate::scenario::FanIn::unmeasured")]
    pub fan_in: crate::scenario::FanIn,
    /// Redis CPU while a pool waits on a rate-limited queue (Redis only).
    #[serde(skip_serializing_if = "RateWait::unmeasured")]
    pub rate_wait: RateWait,
    /// The same end-to-end run while a reader follows every job event of
    /// the queue (events on).
    #[serde(skip_serializing_if = "EndToEnd::unmeasured")]
    pub end_to_end_events: EndToEnd,
    /// Job events while followed.
    #[serde(skip_serializing_if = "EventFigures::unmeasured")]
    pub events: EventFigures,
    /// Each round of the events comparison, in the order run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events_rounds: Vec<crate::scenario::EventRound>,
    /// Enqueue (including its round trip) to job start, idle workers.
    #[serde(skip_serializing_if = "Percentiles::unmeasured")]
    pub latency: Percentiles,
    /// Start minus due time of delayed jobs.
    #[serde(skip_serializing_if = "Percentiles::unmeasured")]
    pub delayed_lateness: Percentiles,
    /// Memory per pending job, bytes (`None`: not measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_per_job_bytes: Option<f64>,
    /// The same minus the 50-byte payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_beyond_payload_bytes: Option<f64>,
    /// How memory was measured.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub memory_measure: String,
    /// Redis `INFO commandstats` of each measurement, busiest command first,
    /// with microseconds per job (Redis only): where Redis spends its time.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub commands: BTreeMap<String, Vec<CommandStat>>,
    /// The end-to-end run on a 3-master Redis Cluster of its own, the queue
    /// unpartitioned and then partitioned (Redis only; only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<crate::partitions::PartitionFigures>,
}

/// What `redis-benchmark` reaches against the same server.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// `PING_MBULK`, one client, no pipelining: one round trip at a time.
    pub round_trip: BenchmarkRow,
    /// `PING` one at a time through the Rust driver (`redis-rs`, on the
    /// benchmark's Tokio runtime): the floor of any awaited call here.
    pub driver_round_trip: BenchmarkRow,
    /// `PING_MBULK`, 50 clients, no pipelining: round trips per second.
    pub round_trips_concurrent: BenchmarkRow,
    /// `LPUSH`, 4 clients, 64 per round trip: simple writes per second.
    pub lpush_pipelined: BenchmarkRow,
    /// `LPOP`, 4 clients, 64 per round trip.
    pub lpop_pipelined: BenchmarkRow,
}

/// Where the figures were measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Load average (1, 5, 15 min) when the run started.
    pub load_before: Vec<f64>,
    /// ... and when it ended.
    pub load_after: Vec<f64>,
    /// The Redis server's version.
    pub redis_version: Option<String>,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
}

impl Machine {
    /// This machine, now.
    pub fn now() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            load_before: load_average(),
            load_after: Vec::new(),
            redis_version: None,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        }
    }
}

/// `/proc/loadavg`'s three averages (empty where unavailable).
pub fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default()
}

/// The benchmark's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// How big each measurement was.
    pub settings: Settings,
    /// `redis-benchmark`'s figures (absent without a Redis target).
    pub ceiling: Option<Ceiling>,
    /// `RedisQueue`'s figures.
    pub redis: Option<Figures>,
    /// `MemoryQueue`'s figures.
    pub memory: Option<Figures>,
    /// Each Redis figure as a fraction of the ceiling it is bounded by
    /// (rates: figure / ceiling; latencies: ceiling / figure).
    pub fractions: BTreeMap<String, f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::full()
    }
}

impl Report {
    /// Each Redis figure against its ceiling: enqueue rates against round
    /// trips (single, concurrent) or pipelined `LPUSH`; end to end against
    /// pipelined `LPUSH`; latency percentiles as the round trip's share of
    /// them.
    pub fn fractions(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        let (Some(c), Some(r)) = (&self.ceiling, &self.redis) else { return m };
        // A figure left out (zero) has no fraction.
        let mut put = |k: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                m.insert(k.to_owned(), v);
            }
        };
        put("enqueue_single", r.enqueue_single.per_s / c.round_trip.rps);
        put("enqueue_single_vs_driver", r.enqueue_single.per_s / c.driver_round_trip.rps);
        put("enqueue_in_flight", r.enqueue_in_flight.per_s / c.round_trips_concurrent.rps);
        put("enqueue_many", r.enqueue_many.per_s / c.lpush_pipelined.rps);
        put("end_to_end", r.end_to_end.per_s / c.lpush_pipelined.rps);
        put("latency_p50", c.round_trip.p50_ms / r.latency.p50_ms);
        put("latency_p99", c.round_trip.p99_ms / r.latency.p99_ms);
        m
    }

    /// The figures as a Markdown table.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 4]> = Vec::new();
        let frac = |k: &str| self.fractions.get(k).map(|f| format!("{:.1} %", f * 100.0)).unwrap_or_default();
        let both = |get: &dyn Fn(&Figures) -> String| {
            (self.redis.as_ref().map(get).unwrap_or_default(), self.memory.as_ref().map(get).unwrap_or_default())
        };
        // A measurement left out by `--only` has no row (its figures are zero).
        let mut row = |what: &str, name: &str, get: &dyn Fn(&Figures) -> String, frac: String| {
            if !self.settings.runs(what) {
                return;
            }
            let (r, m) = both(get);
            rows.push([name.to_owned(), r, frac, m]);
        };
        let rate = |v: f64| format!("{v:.0}/s");
        // A run's rate as a share of the one-pool end-to-end run's.
        let share = |f: &Figures, v: f64| {
            if f.end_to_end.per_s > 0.0 && v > 0.0 {
                format!("{:.0} %", v / f.end_to_end.per_s * 100.0)
            } else {
                "-".into()
            }
        };
        let ms = |v: f64| format!("{v:.3} ms");
        row("single", "enqueue, single awaited", &|f| rate(f.enqueue_single.per_s), frac("enqueue_single"));
        row(
            "single",
            "enqueue, single awaited (mean call)",
            &|f| format!("{:.1} µs", f.enqueue_single.mean_us),
            frac("enqueue_single_vs_driver").replace(" %", " % of driver RTT"),
        );
        row(
            "inflight",
            &format!("enqueue, {} in flight", self.settings.in_flight),
            &|f| rate(f.enqueue_in_flight.per_s),
            frac("enqueue_in_flight"),
        );
        row(
            "many",
            &format!("enqueue_many, batches of {}", self.settings.batch),
            &|f| rate(f.enqueue_many.per_s),
            frac("enqueue_many"),
        );
        row(
            "e2e",
            &match self.settings.prefetch {
                None => format!("end to end, {} workers, producers running", self.settings.workers),
                Some(0) => {
                    format!("end to end, {} workers taking none ahead, producers running", self.settings.workers)
                }
                Some(n) => format!("end to end, {} workers taking {n} ahead, producers running", self.settings.workers),
            },
            &|f| rate(f.end_to_end.per_s),
            frac("end_to_end"),
        );
        row(
            "e2e",
            "end to end: CPU per job, benchmark process",
            &|f| format!("{:.1} µs", f.end_to_end.client_cpu_us_per_job),
            String::new(),
        );
        row(
            "e2e",
            "end to end: CPU per job, Redis",
            &|f| f.end_to_end.redis_cpu_us_per_job.map(|c| format!("{c:.1} µs")).unwrap_or_else(|| "-".into()),
            String::new(),
        );
        let each = (self.settings.workers / self.settings.processes.max(1)).max(1);
        row(
            "processes",
            &format!(
                "end to end, {} processes of {each} workers, {} runtime thread(s) each",
                self.settings.processes,
                crate::processes::runtime_threads(self.settings.processes)
            ),
            // MemoryQueue has no other process to serve: not measured.
            &|f| if f.end_to_end_processes.seconds > 0.0 { rate(f.end_to_end_processes.per_s) } else { "-".into() },
            String::new(),
        );
        row(
            "processes",
            "end to end, processes: of the one-process figure",
            &|f| share(f, f.end_to_end_processes.per_s),
            String::new(),
        );
        row(
            "processes",
            "end to end, processes: CPU per job, Redis / all worker processes and producer",
            &|f| {
                if f.end_to_end_processes.seconds <= 0.0 {
                    return "-".into();
                }
                let redis = f.end_to_end_processes.redis_cpu_us_per_job.map(|c| format!("{c:.1}"));
                format!(
                    "{} / {:.1} µs",
                    redis.unwrap_or_else(|| "-".into()),
                    f.end_to_end_processes.client_cpu_us_per_job
                )
            },
            String::new(),
        );
        row("groups", "end to end, every job in a group of 10", &|f| rate(f.end_to_end_groups.per_s), String::new());
        row(
            "groups",
            "end to end, groups: of the ungrouped figure",
            &|f| share(f, f.end_to_end_groups.per_s),
            String::new(),
        );
        row(
            "groups",
            "end to end, groups: CPU per job, Redis",
            &|f| f.end_to_end_groups.redis_cpu_us_per_job.map(|c| format!("{c:.1} µs")).unwrap_or_else(|| "-".into()),
            String::new(),
        );
        row(
            "groups-idle",
            &format!("end to end, groups beside {} idle groups", self.settings.idle_groups),
            &|f| rate(f.end_to_end_groups_idle.per_s),
            String::new(),
        );
        row(
            "groups-idle",
            "end to end, groups beside idle groups: CPU per job, Redis",
            &|f| {
                f.end_to_end_groups_idle
                    .redis_cpu_us_per_job
                    .map(|c| format!("{c:.1} µs"))
                    .unwrap_or_else(|| "-".into())
            },
            String::new(),
        );
        row(
            "groups-live",
            &format!("end to end, groups beside {} ungrouped jobs held an hour", 2 * self.settings.idle_groups),
            &|f| rate(f.end_to_end_groups_live.per_s),
            String::new(),
        );
        row(
            "groups-live",
            "end to end, groups beside held ungrouped jobs: CPU per job, Redis",
            &|f| {
                f.end_to_end_groups_live
                    .redis_cpu_us_per_job
                    .map(|c| format!("{c:.1} µs"))
                    .unwrap_or_else(|| "-".into())
            },
            String::new(),
        );
        row(
            "fan-in",
            &format!("workflow, 1 step, {} after it, 1 after all: steps", self.settings.fan_in_width),
            &|f| rate(f.fan_in.steps_per_s),
            String::new(),
        );
        row(
            "fan-in",
            "workflow fan-in: Redis CPU per step / per plain job (e2e)",
            &|f| match (f.fan_in.redis_cpu_us_per_step, f.end_to_end.redis_cpu_us_per_job) {
                (Some(s), Some(j)) if j > 0.0 => format!("{s:.1} / {j:.1} µs ({:.1}x)", s / j),
                (Some(s), _) => format!("{s:.1} µs"),
                _ => "-".into(),
            },
            String::new(),
        );
        row(
            "rate-wait",
            "Redis CPU, pool idle / rate-limited backlog waiting",
            &|f| {
                if f.rate_wait.seconds > 0.0 {
                    format!("{:.2} / {:.2} ms/s", f.rate_wait.idle_ms_per_s, f.rate_wait.waiting_ms_per_s)
                } else {
                    "-".into()
                }
            },
            String::new(),
        );
        row("events", "end to end with every event followed", &|f| rate(f.end_to_end_events.per_s), String::new());
        row("events", "end to end: cost of following events", &|f| round_costs(f, |r| r.cost_pct), String::new());
        row(
            "events",
            "end to end: cost of recording events (read elsewhere)",
            &|f| round_costs(f, |r| r.recorded_cost_pct),
            String::new(),
        );
        row("events", "events received per second (3 per job)", &|f| rate(f.events.per_s), String::new());
        row(
            "events",
            &format!("event delay p50 at {}/s (enqueue call to receipt)", self.settings.latency_rate),
            &|f| ms(f.events.delay.p50_ms),
            String::new(),
        );
        row("events", "event delay p99", &|f| ms(f.events.delay.p99_ms), String::new());
        row(
            "latency",
            &format!("latency p50 at {}/s", self.settings.latency_rate),
            &|f| ms(f.latency.p50_ms),
            frac("latency_p50"),
        );
        row("latency", "latency p99", &|f| ms(f.latency.p99_ms), frac("latency_p99"));
        row("latency", "latency p99.9", &|f| ms(f.latency.p999_ms), String::new());
        row("latency", "latency max", &|f| ms(f.latency.max_ms), String::new());
        row("delayed", "delayed-job lateness p50", &|f| ms(f.delayed_lateness.p50_ms), String::new());
        row("delayed", "delayed-job lateness p99", &|f| ms(f.delayed_lateness.p99_ms), String::new());
        row(
            "memory",
            &format!("memory per pending job ({} jobs)", self.settings.memory_n),
            &|f| f.memory_per_job_bytes.map(|b| format!("{b:.0} B")).unwrap_or_default(),
            String::new(),
        );
        row(
            "memory",
            "memory per pending job beyond the 50 B payload",
            &|f| f.memory_beyond_payload_bytes.map(|b| format!("{b:.0} B")).unwrap_or_default(),
            String::new(),
        );
        // MemoryQueue has no cluster: not measured.
        let cluster = |f: &Figures, get: &dyn Fn(&crate::partitions::PartitionFigures) -> String| {
            f.partitions.as_ref().map_or_else(|| "-".into(), get)
        };
        row(
            "partitions",
            "end to end on a 3-master cluster, queue in 1 partition",
            &|f| cluster(f, &|p| p.unpartitioned.summary()),
            String::new(),
        );
        row(
            "partitions",
            "end to end on a 3-master cluster, queue partitioned over every master",
            &|f| {
                cluster(f, &|p| {
                    format!("{} partitions on {} masters: {}", p.partitions, p.masters_used, p.partitioned.summary())
                })
            },
            String::new(),
        );

        let mut out = String::new();
        let _ = writeln!(out, "| figure | RedisQueue | of ceiling | MemoryQueue |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
        for r in rows {
            let _ = writeln!(out, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
        }
        if let Some(c) = &self.ceiling {
            let _ = writeln!(
                out,
                "\nCeiling (`redis-benchmark`, same server): round trip p50 {:.3} ms / p99 {:.3} ms ({:.0}/s one at a time; \
                 through the Rust driver p50 {:.3} ms, {:.0}/s); {:.0} round trips/s with 50 clients; {:.0} LPUSH/s and \
                 {:.0} LPOP/s pipelined (4 clients, 64 per round trip). Rates are shown as a fraction of the ceiling that \
                 bounds them (single enqueues: one round trip; many in flight: concurrent round trips; batches and end to \
                 end: pipelined LPUSH), latencies as the round trip's share of them.",
                c.round_trip.p50_ms,
                c.round_trip.p99_ms,
                c.round_trip.rps,
                c.driver_round_trip.p50_ms,
                c.driver_round_trip.rps,
                c.round_trips_concurrent.rps,
                c.lpush_pipelined.rps,
                c.lpop_pipelined.rps
            );
        }
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\nMachine: {} cores ({}), Linux {}, Redis {}; load average {:?} before, {:?} after.",
            m.cores,
            m.cpu,
            m.kernel,
            m.redis_version.as_deref().unwrap_or("-"),
            m.load_before,
            m.load_after
        );
        out
    }
}

/// A cost over the events rounds: the median of `each` round's, the
/// number of rounds and the spread ("-" without rounds).
fn round_costs(f: &Figures, each: impl Fn(&crate::scenario::EventRound) -> f64) -> String {
    if f.events_rounds.is_empty() {
        return "-".into();
    }
    let sp = crate::peers::Spread::of(f.events_rounds.iter().map(each).collect(), None);
    format!("{:.1} % (median of {}; {:.1} to {:.1})", sp.median, f.events_rounds.len(), sp.min, sp.max)
}
