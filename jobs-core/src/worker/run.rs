//! The fetch loop and the acknowledgement batcher.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ahead::Waiting;
use super::failing::FailingQueues;
use super::shared::{Ack, Core};
use crate::queue::{Finish, FinishResult, Outcome};
use crate::vocab::{JobId, JobStatus};

/// Fetches in flight at once, at most: while one is on its way (a round
/// trip and the backend's work), the next batch of free slots is already
/// being filled.
const MAX_FETCHES: usize = 2;

/// What a fetch hands back: its result, the worker slots it held, and the
/// queues it asked.
type FetchDone = (Result<crate::queue::Fetched, crate::error::Error>, OwnedSemaphorePermit, Vec<String>);

/// A fetch on its way, polled by the fetch loop itself (a task of its own
/// would add a task switch to every fetch, and to the latency of each job).
type Fetching = Pin<Box<dyn Future<Output = FetchDone> + Send>>;

/// The first fetch of `fetches` to finish (pending while none has).
fn next_done(fetches: &mut Vec<Fetching>, cx: &mut Context<'_>) -> Poll<FetchDone> {
    for i in 0..fetches.len() {
        if let Poll::Ready(done) = fetches[i].as_mut().poll(cx) {
            drop(fetches.swap_remove(i));
            return Poll::Ready(done);
        }
    }
    Poll::Pending
}

/// Free places of `sem` (worker slots, or with jobs taken ahead the pool's
/// room): at least `min` (waiting for them), and as many more as are free,
/// up to `max`.
async fn take_slots(sem: &Arc<Semaphore>, min: usize, max: usize) -> Option<OwnedSemaphorePermit> {
    let min = u32::try_from(min).unwrap_or(u32::MAX);
    let mut slots = sem.clone().acquire_many_owned(min).await.ok()?;
    let more = sem.available_permits().min(max.saturating_sub(slots.num_permits()));
    if let Ok(extra) = sem.clone().try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX)) {
        slots.merge(extra);
    }
    Some(slots)
}

/// Reports the jobs a fetch found dead in expired leases: no other pool
/// learns of those deaths.
fn report_dead(core: &Core, dead: &[crate::queue::DeadJob]) {
    wake_relay(core, !dead.is_empty());
    for d in dead {
        tracing::error!(job = %d.id, name = %d.name, attempts = d.attempts, error = %d.error, "job died with its worker; moved to the dead-letter set");
        core.hooks.dead(d);
    }
}

/// Starts the fetched jobs, one slot each (or, taken ahead, hands them to
/// the dispatcher, one place each). A fetch is never abandoned half way:
/// the jobs it leased run (or are handed back) rather than waiting out
/// their lease.
fn start_jobs(core: &Arc<Core>, start: &Start, jobs: Vec<crate::queue::LeasedJob>, mut slots: OwnedSemaphorePermit) {
    let fetched = tokio::time::Instant::now();
    for job in jobs {
        let Some(slot) = slots.split(1) else {
            tracing::error!(job = %job.id, "the backend returned more jobs than asked for; this one runs after its lease");
            continue;
        };
        match start {
            Start::Now(tracker) => {
                tracker.spawn(super::exec::execute(core.clone(), job, (slot, None)));
            }
            // The slot is a place in the pool's room: the job starts at
            // once when a worker is free and no job waits before it (the
            // dispatcher holds none: `ahead` counts them until they
            // start), else it waits there for a worker, in order. (A
            // stopping pool's dispatcher hands them back.)
            Start::Ahead { tx, workers, tracker, stop } => {
                if core.ahead.load(std::sync::atomic::Ordering::Relaxed) == 0
                    && !stop.is_cancelled()
                    && !core.killed.is_cancelled()
                {
                    if let Ok(worker) = workers.clone().try_acquire_owned() {
                        tracker.spawn(super::exec::execute(core.clone(), job, (worker, Some(slot))));
                        continue;
                    }
                }
                core.ahead.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(mpsc::error::SendError(w)) = tx.send(Waiting { job, place: slot, fetched }) {
                    core.ahead.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    super::exec::hand_back(core, &w.job, super::exec::SHUT_DOWN);
                }
            }
        }
    }
}

/// Where fetched jobs go: started at once, each in a worker slot its fetch
/// took, or (with `WorkerPoolBuilder::prefetch`) each with a place of the
/// pool's room: started at once in a free worker's slot when none waits
/// before it, else in order to the dispatcher, to wait for a worker.
enum Start {
    Now(TaskTracker),
    Ahead { tx: mpsc::UnboundedSender<Waiting>, workers: Arc<Semaphore>, tracker: TaskTracker, stop: CancellationToken },
}

/// Takes jobs as worker slots (or, with jobs taken ahead, places in the
/// pool's room) free up, up to [`MAX_FETCHES`] fetches at a time (a second
/// one only while there is a backlog, the last fetch having filled its
/// slots, and for at least half a batch of free slots, so that
/// fetches stay large); idles on the backend's wake-up or the next due time
/// when a fetch finds nothing. Fails when the backend cannot give it a
/// waiter: the pool then takes no more jobs ([`WorkerHandle::run_until`]
/// reports it).
///
/// [`WorkerHandle::run_until`]: super::WorkerHandle::run_until
pub(crate) async fn fetch_loop(
    core: Arc<Core>,
    workers: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> Result<(), crate::error::Error> {
    // With jobs taken ahead, fetches are sized by the pool's room (its
    // workers and the places ahead of them), and the dispatcher starts
    // each job when a worker is free.
    // An adaptive prefetch holds the places ahead its pace does not call for.
    let (sem, start, mut allowance) = if core.prefetch == 0 {
        (workers, Start::Now(tracker), None)
    } else {
        let room = Arc::new(Semaphore::new(core.identity.workers + core.prefetch));
        let allowance =
            core.adaptive.then(|| super::ahead::Allowance::new(&room, core.prefetch, tokio::time::Instant::now()));
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(super::ahead::dispatch(core.clone(), workers.clone(), tracker.clone(), stop.clone(), rx));
        (room, Start::Ahead { tx, workers, tracker, stop: stop.clone() }, allowance)
    };
    let mut waiter = match core.queue.waiter(&core.queues) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "worker pool cannot wait for jobs; it stops");
            return Err(e);
        }
    };
    let mut fetches: Vec<Fetching> = Vec::with_capacity(MAX_FETCHES);
    let mut state = LoopState {
        err_delay: Duration::from_millis(100),
        idle: None,
        pause: None,
        backlog: false,
        groups: false,
        failing: FailingQueues::default(),
    };
    let batch = core.fetch_batch.min(core.identity.workers + core.prefetch).max(1);
    // Whether a wait that may have had jobs handed to it was dropped (the
    // pool stopped): the waiter is settled before the loop returns.
    let mut unsettled = false;
    loop {
        if fetches.is_empty() {
            if let Some(wait) = state.idle.take() {
                // Idle: wait with free slots in hand, so that the backend can
                // hand jobs over as they come (`Waiter::wait_fetch`).
                let slots = tokio::select! {
                    _ = stop.cancelled() => break,
                    slots = take_slots(&sem, 1, batch) => slots,
                };
                let Some(slots) = slots else { break };
                let req = core.request(state.failing.filter(core.order(), tokio::time::Instant::now()), &slots);
                // Not before the jobs this pool handed back are back.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = core.returning.write() => {}
                }
                let waited = tokio::select! {
                    _ = stop.cancelled() => {
                        unsettled = true;
                        break;
                    }
                    r = waiter.wait_fetch(&req, wait) => r,
                };
                match waited {
                    Ok(None) => {}
                    Ok(Some(fetched)) => {
                        let handed = !fetched.jobs.is_empty();
                        state.done(&core, &start, (Ok(fetched), slots, req.queues));
                        if handed {
                            // The jobs' tasks run before this loop sends its
                            // next fetch: that send would otherwise wake the
                            // connection's task ahead of them, and an idle
                            // pool's job would start about 30 µs later.
                            tokio::task::yield_now().await;
                        }
                        if state.idle.is_some() {
                            // It fetched nothing more to do: wait again.
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "waiting for jobs failed");
                        state.pause = Some(tokio::time::Instant::now() + state.err_delay);
                    }
                }
            }
            if let Some(until) = state.pause.take() {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
        }
        if let Some(a) = allowance.as_mut() {
            if state.groups {
                a.narrow(core.identity.workers);
            }
            a.adjust(&sem, core.ends.load(std::sync::atomic::Ordering::Relaxed), tokio::time::Instant::now());
        }
        let running = fetches.len();
        let may_start =
            (running == 0 || (running < MAX_FETCHES && state.backlog)) && state.idle.is_none() && state.pause.is_none();
        let min = if running == 0 { 1 } else { (batch / 2).max(1) };
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            done = std::future::poll_fn(|cx| next_done(&mut fetches, cx)), if running > 0 => state.done(&core, &start, done),
            slots = take_slots(&sem, min, batch), if may_start => {
                let Some(slots) = slots else { break };
                let queues = state.failing.filter(core.order(), tokio::time::Instant::now());
                if queues.is_empty() {
                    // Every queue is failing: no fetch before the first may
                    // be tried again.
                    state.pause = state.failing.next_retry();
                    continue;
                }
                waiter.arm();
                let req = core.request(queues, &slots);
                let core = core.clone();
                fetches.push(Box::pin(async move {
                    // Not before the jobs this pool handed back are back.
                    drop(core.returning.write().await);
                    let fetched = core.queue.fetch(&req).await;
                    (fetched, slots, req.queues)
                }));
            }
        }
    }
    // Stopping: the fetches on their way still lease jobs, and so may a
    // wait that was cut short; run them.
    while !fetches.is_empty() {
        if let (Ok(fetched), slots, _) = std::future::poll_fn(|cx| next_done(&mut fetches, cx)).await {
            expired(&core, &fetched.expired);
            report_dead(&core, &fetched.dead);
            start_jobs(&core, &start, fetched.jobs, slots);
        }
    }
    if unsettled {
        match waiter.settle().await {
            Ok(fetched) => {
                expired(&core, &fetched.expired);
                report_dead(&core, &fetched.dead);
                if !fetched.jobs.is_empty() {
                    let n = u32::try_from(fetched.jobs.len()).unwrap_or(u32::MAX);
                    if let Ok(slots) = sem.clone().acquire_many_owned(n).await {
                        start_jobs(&core, &start, fetched.jobs, slots);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "jobs handed to the stopping pool wait for their lease to end"),
        }
    }
    Ok(())
}

/// The fetch loop's state between fetches.
struct LoopState {
    /// The pause after the next failed fetch.
    err_delay: Duration,
    /// Set when a fetch found nothing: how long to wait for a wake-up.
    idle: Option<Duration>,
    /// Set when a fetch failed: no new fetch before then.
    pause: Option<tokio::time::Instant>,
    /// Whether the last fetch took all it asked for (there is a backlog):
    /// only then does a second fetch start beside one on its way.
    backlog: bool,
    /// Whether a fetch reported a queue that serves groups in turn.
    groups: bool,
    failing: FailingQueues,
}

impl LoopState {
    /// A fetch (or a wait that fetched) returned: its jobs start in the
    /// slots it held, and the loop's next step is set.
    fn done(&mut self, core: &Arc<Core>, start: &Start, done: FetchDone) {
        match done {
            (Ok(fetched), slots, asked) => {
                self.err_delay = Duration::from_millis(100);
                self.groups |= fetched.groups;
                expired(core, &fetched.expired);
                if let (Some(wake), false) = (&core.archive_wake, fetched.archived.is_empty()) {
                    wake.notify_one();
                }
                self.failing.served(&asked, &fetched.failed);
                self.failing.failed(&fetched.failed, tokio::time::Instant::now());
                self.backlog = fetched.jobs.len() >= slots.num_permits();
                if self.backlog {
                    self.idle = None;
                } else {
                    // It took all there was: look again on a wake-up (work
                    // that arrived since this fetch was armed wakes at once)
                    // or at the next due time, not right away. (`next_due` is
                    // a duration on the backend's clock.)
                    let wait = fetched.next_due.unwrap_or(Duration::MAX).min(core.idle_cap());
                    // A failing queue is looked at again when its pause
                    // ends, whatever else wakes the pool.
                    let retry = self
                        .failing
                        .next_retry()
                        .map_or(wait, |t| t.saturating_duration_since(tokio::time::Instant::now()).min(wait));
                    self.idle = Some(self.idle.map_or(retry, |w| w.min(retry)));
                }
                report_dead(core, &fetched.dead);
                start_jobs(core, start, fetched.jobs, slots);
            }
            (Err(e), _, _) => {
                tracing::warn!(error = %e, retry_in = ?self.err_delay, "fetch failed");
                self.pause = Some(tokio::time::Instant::now() + self.err_delay);
                self.err_delay = (self.err_delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Logs and counts the jobs a fetch ended expired.
/// Wakes the pool's flow relay when `ended`: a fetch ended jobs (expired,
/// or dead with their worker) that may be workflow steps or batch jobs.
fn wake_relay(core: &Core, ended: bool) {
    if let (true, Some(wake)) = (ended, &core.flow_wake) {
        wake.notify_one();
    }
}

fn expired(core: &Core, jobs: &[crate::queue::ExpiredJob]) {
    wake_relay(core, !jobs.is_empty());
    for j in jobs {
        tracing::info!(job = %j.id, name = %j.name, "job expired before it started; it will not run");
    }
    #[cfg(feature = "metrics")]
    if let Some(m) = &core.metrics {
        m.expired(jobs);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = core;
}

/// Drops the start marks of jobs whose attempt ends in the same batch: the
/// end says more, and a short job then costs the backend nothing extra.
fn drop_superseded_marks(batch: &mut Vec<Ack>) {
    if !batch.iter().any(|a| a.finish.outcome == Outcome::Started) {
        return;
    }
    let ended: HashSet<(JobId, u64)> = batch
        .iter()
        .filter(|a| a.finish.outcome != Outcome::Started)
        .map(|a| (a.finish.id.clone(), a.finish.token))
        .collect();
    batch.retain(|a| a.finish.outcome != Outcome::Started || !ended.contains(&(a.finish.id.clone(), a.finish.token)));
}

/// Sends finished attempts to the backend in batches. A failed call is
/// retried with backoff: a result is given up only when the pool is killed
/// (the job then runs again after its lease: at least once). A death the
/// backend recorded goes to the pool's `on_dead` handlers.
pub(crate) async fn ack_loop(core: Arc<Core>, mut rx: mpsc::UnboundedReceiver<Ack>, closing: CancellationToken) {
    let (queue, killed) = (&core.queue, &core.killed);
    let mut buf = Vec::with_capacity(512);
    loop {
        let closed = tokio::select! {
            biased;
            _ = killed.cancelled() => return,
            n = rx.recv_many(&mut buf, 512) => n == 0,
            _ = closing.cancelled() => {
                while let Ok(f) = rx.try_recv() {
                    buf.push(f);
                }
                true
            }
        };
        if !buf.is_empty() {
            let mut acks = std::mem::take(&mut buf);
            drop_superseded_marks(&mut acks);
            let batch: Vec<Finish> = acks.iter().map(|a| a.finish.clone()).collect();
            let mut delay = Duration::from_millis(50);
            loop {
                match queue.finish(batch.clone()).await {
                    Ok(results) => {
                        let mut flow_ended = false;
                        for (a, r) in acks.iter_mut().zip(results) {
                            // Back in its queue: the pool may fetch again.
                            if let Some(landed) = a.landed.take() {
                                let _ = landed.send(());
                            }
                            flow_ended |= a.flow && matches!(r, FinishResult::Applied(s) if s.is_finished());
                            if r == FinishResult::Stale && a.finish.outcome != Outcome::Started {
                                tracing::warn!(job = %a.finish.id, "result refused: the lease expired and the job was taken again");
                            }
                            // Only a death the backend recorded is reported:
                            // a stale one was another attempt's to end.
                            if let (Some(dead), FinishResult::Applied(JobStatus::Dead)) = (&a.dead, r) {
                                core.hooks.dead(dead);
                            }
                        }
                        if let (true, Some(wake)) = (flow_ended, &core.flow_wake) {
                            wake.notify_one();
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, jobs = batch.len(), retry_in = ?delay, "could not record results");
                        tokio::select! {
                            _ = killed.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        if closed {
            return;
        }
    }
}
