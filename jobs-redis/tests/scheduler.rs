//! Recurring jobs on Redis: three schedulers, each on its own connection,
//! over more than 20 ticks of a one-second schedule. Each job a tick
//! enqueues carries that tick (stamped by the scheduler's queue handle), so
//! the test checks the exact set of ticks: every tick from the schedule's
//! creation to its last handled one, each exactly once. The lateness of each
//! tick (enqueue time minus the tick's time) is measured and printed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jobs_core::backend::{
    BoxFuture, FetchRequest, Fetched, Finish, FinishResult, LeaseState, ProgressUpdate, ProgressWrite, Waiter,
};
use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::{
    CatchUp, CronSchedule, Error, JobId, JobQueue, JobStatus, NewJob, PoolPresence, QueueInspect, ScheduleDef,
    ScheduleOptions, ScheduleState, ScheduleStore, Scheduler,
};
use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

const TICKS: u64 = 22;
/// The header a fired job carries its tick in (Unix ms).
const TICK: &str = "test-tick-ms";

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A tick one scheduler claimed: which scheduler, the tick (Unix ms), the job.
type Fired = (usize, u64, JobId);

/// One scheduler's queue handle: each job it fires carries its tick in the
/// header [`TICK`], and each tick it claimed is recorded.
struct Stamping {
    inner: RedisQueue,
    scheduler: usize,
    fired: Arc<Mutex<Vec<Fired>>>,
}

impl JobQueue for Stamping {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        self.inner.enqueue_many(jobs)
    }
    fn fetch<'a>(&'a self, req: &'a FetchRequest) -> BoxFuture<'a, Result<Fetched, Error>> {
        self.inner.fetch(req)
    }
    fn finish(&self, batch: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishResult>, Error>> {
        self.inner.finish(batch)
    }
    fn extend_leases<'a>(
        &'a self,
        leases: &'a [(JobId, u64)],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeaseState>, Error>> {
        self.inner.extend_leases(leases, lease)
    }
    fn report_progress<'a>(&'a self, update: &'a ProgressUpdate) -> BoxFuture<'a, Result<ProgressWrite, Error>> {
        self.inner.report_progress(update)
    }
    fn waiter(&self, queues: &[String]) -> Result<Box<dyn Waiter>, Error> {
        self.inner.waiter(queues)
    }
    fn now(&self) -> BoxFuture<'_, Result<SystemTime, Error>> {
        self.inner.now()
    }
    fn payload_format(&self) -> jobs_core::backend::PayloadFormat {
        self.inner.payload_format()
    }
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        None
    }
    fn presence(&self) -> Option<Arc<dyn PoolPresence>> {
        self.inner.presence()
    }
}

impl ScheduleStore for Stamping {
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        self.inner.put_schedule(def)
    }
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        self.inner.schedules()
    }
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        self.inner.remove_schedule(name)
    }
    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.set_schedule_paused(name, paused)
    }
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(async move {
            let job = job.map(|mut j| {
                j.headers.insert(TICK.to_owned(), ms(tick).to_string());
                j
            });
            let got = self.inner.fire_schedule(name, tick, job).await?;
            if let Some(id) = &got {
                self.fired.lock().unwrap().push((self.scheduler, ms(tick), id.clone()));
            }
            Ok(got)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_enqueue_each_tick_once() {
    let prefix = jobs_core::testing::unique_queue("sched");
    let config = RedisConfig { prefix, ..RedisConfig::new(shared_server_url()) };
    let queues = [
        RedisQueue::from_config(&config).await.unwrap(),
        RedisQueue::from_config(&config).await.unwrap(),
        RedisQueue::from_config(&config).await.unwrap(),
    ];
    let fired: Arc<Mutex<Vec<Fired>>> = Arc::default();
    let queue = "ticks";
    let payload = ProbeJob { key: "ticks".into(), seq: 0, act: Act::Succeed };
    let options = ScheduleOptions::new().catch_up(CatchUp::One).queue(queue);
    Scheduler::new(queues[0].clone()).add_with("every-second", "* * * * * *", "UTC", payload, options).await.unwrap();
    let runners: Vec<_> = queues
        .iter()
        .enumerate()
        .map(|(i, q)| Scheduler::new(Stamping { inner: q.clone(), scheduler: i, fired: fired.clone() }).start())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(TICKS + 30);
    while queues[0].stats().await.unwrap().queue(queue).pending < TICKS {
        assert!(Instant::now() < deadline, "{TICKS} ticks were not enqueued in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in runners {
        r.stop().await;
    }

    let state = queues[0].schedules().await.unwrap().into_iter().find(|s| s.def.name == "every-second").unwrap();
    let cron = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let expected: Vec<u64> =
        cron.ticks_between(state.def.created_at, state.last_tick.unwrap(), 10_000).into_iter().map(ms).collect();
    let jobs = queues[0].list_jobs(queue, JobStatus::Pending, 0, 10_000).await.unwrap();

    // Each stored job's tick, from the job itself.
    let mut by_tick: BTreeMap<u64, Vec<&jobs_core::JobInfo>> = BTreeMap::new();
    for j in &jobs {
        let tick = j.headers.get(TICK).unwrap_or_else(|| panic!("a job without its tick: {j:?}"));
        by_tick.entry(tick.parse().unwrap()).or_default().push(j);
    }
    let repeated: Vec<(u64, usize)> =
        by_tick.iter().filter(|(_, js)| js.len() > 1).map(|(t, js)| (*t, js.len())).collect();
    let missing: Vec<u64> = expected.iter().copied().filter(|t| !by_tick.contains_key(t)).collect();
    let unexpected: Vec<u64> = by_tick.keys().copied().filter(|t| !expected.contains(t)).collect();
    let fired = fired.lock().unwrap().clone();
    assert!(
        repeated.is_empty() && missing.is_empty() && unexpected.is_empty(),
        "each tick exactly once: repeated (tick, jobs) {repeated:?}, missing {missing:?}, not a due tick \
         {unexpected:?}; fired (scheduler, tick, job) {fired:?}"
    );
    assert!(expected.len() as u64 >= TICKS, "{} ticks", expected.len());
    assert_eq!(jobs.len(), expected.len());

    // What the schedulers claimed is what is stored: the same jobs, for the
    // same ticks.
    let mut claimed: Vec<(u64, String)> = fired.iter().map(|(_, t, id)| (*t, id.to_string())).collect();
    let mut stored: Vec<(u64, String)> =
        jobs.iter().map(|j| (j.headers[TICK].parse().unwrap(), j.id.to_string())).collect();
    claimed.sort();
    stored.sort();
    assert_eq!(claimed, stored, "the ticks the schedulers claimed are the stored jobs");
    let mut per_scheduler = [0usize; 3];
    for (s, _, _) in &fired {
        per_scheduler[*s] += 1;
    }

    // Each job was enqueued after its tick, before the next one.
    let mut lateness: Vec<Duration> = jobs
        .iter()
        .map(|j| {
            let tick = UNIX_EPOCH + Duration::from_millis(j.headers[TICK].parse().unwrap());
            j.enqueued_at.duration_since(tick).unwrap_or_else(|_| panic!("enqueued before its tick: {j:?}"))
        })
        .collect();
    lateness.sort();
    let pct = |p: f64| lateness[((lateness.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "tick lateness over {} ticks (fired per scheduler {per_scheduler:?}): p50 {:?}, p99 {:?}, max {:?}",
        lateness.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    assert!(pct(1.0) < Duration::from_secs(1), "a tick was handled after the next one was due");
}
