//! Jobs taken ahead of free workers (`WorkerPoolBuilder::prefetch`): they
//! wait here, in the order fetched, and start as workers free up.
//!
//! The fetch loop sizes its fetches by the pool's room (its workers plus
//! the places ahead), each job holding a place of that room until it ends;
//! a job waits here for a worker. One that finds none within half the
//! lease is handed back (not an attempt) for another pool, so that no job
//! is held past its lease by a pool that cannot start it (its lease is
//! extended only once it runs). The jobs behind it go back with it, to the
//! front of their queues in the order fetched, and the pool fetches nothing
//! until they are back, so that jobs of one priority still start in the
//! order they were enqueued. Their places stay taken until a worker is free
//! (so that the pool does not take them, or others, ahead again only to
//! hand them back); those still waiting when the pool stops are handed
//! back at once.
//!
//! By default the places ahead follow the pool's pace ([`Allowance`]): as
//! many as its recent rate of job ends would start within
//! [`AHEAD_HORIZON`], at most [`ADAPTIVE_AHEAD`] or its number of workers,
//! whichever is more. An idle pool or one running long jobs takes none
//! ahead; a pool running short jobs fetches while its workers run the last
//! fetch's jobs. Once a fetch reports a queue that serves groups in turn
//! ([`Fetched::groups`](crate::queue::Fetched::groups)), the pool takes at
//! most one job per worker ahead: a group whose jobs arrive later then
//! waits behind at most about twice the pool's workers of other groups'
//! jobs, however fast the jobs run.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::exec::{execute, hand_back, hand_back_landed, SHUT_DOWN};
use super::shared::Core;
use crate::queue::LeasedJob;

/// A fetched job waiting for a worker: its place in the pool's room and
/// when it was fetched.
pub(crate) struct Waiting {
    pub(crate) job: LeasedJob,
    pub(crate) place: OwnedSemaphorePermit,
    pub(crate) fetched: Instant,
}

/// How long a job taken ahead may wait for a worker: half the lease, so
/// that one started at the last moment still has its lease extended by
/// the next heartbeat (every third of the lease) before it expires.
pub(crate) fn longest_wait(lease: Duration) -> Duration {
    lease / 2
}

/// Why a job taken ahead went back: it waited its longest.
const NO_WORKER: &str = "no worker of the pool was free in time";

/// Starts the jobs of `rx` in order, each once a worker slot of `workers`
/// is free, until the fetch loop drops its sender; hands back those that
/// wait too long or find the pool stopping.
pub(crate) async fn dispatch(
    core: Arc<Core>,
    workers: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
    mut rx: mpsc::UnboundedReceiver<Waiting>,
) {
    let most = longest_wait(core.lease);
    while let Some(w) = rx.recv().await {
        let slot = tokio::select! {
            biased;
            _ = core.killed.cancelled() => return,
            _ = stop.cancelled() => Err(SHUT_DOWN),
            slot = workers.clone().acquire_owned() => slot.map_err(|_| SHUT_DOWN),
            _ = tokio::time::sleep_until(w.fetched + most) => Err(NO_WORKER),
        };
        // Started or handed back below: no longer waiting ahead.
        core.ahead.fetch_sub(1, Ordering::Relaxed);
        match slot {
            Ok(slot) => {
                tracker.spawn(execute(core.clone(), w.job, (slot, Some(w.place))));
            }
            Err(why) if why == NO_WORKER => {
                // The pool fetches nothing until they are all back.
                let returning = core.returning.clone().read_owned().await;
                // The jobs behind it wait for the same busy workers: they go
                // back with it.
                let mut back = vec![w];
                while let Ok(next) = rx.try_recv() {
                    back.push(next);
                }
                core.ahead.fetch_sub(back.len() - 1, Ordering::Relaxed);
                // One at a time, the last fetched first, each once the one
                // before is back: each goes to the front of its queue, so
                // they end there in the order fetched. (A stopping pool
                // sends the rest at once.)
                let mut places = Vec::with_capacity(back.len());
                for w in back.into_iter().rev() {
                    let landed = hand_back_landed(&core, &w.job, NO_WORKER);
                    places.push(w.place);
                    tokio::select! {
                        biased;
                        _ = core.killed.cancelled() => return,
                        _ = stop.cancelled() => {}
                        _ = landed => {}
                    }
                }
                drop(returning);
                // Their places stay taken until a worker is free: a job
                // taken ahead before then (one of these again, most likely,
                // before another pool could take it) would only wait and be
                // handed back too.
                let (workers, stop) = (workers.clone(), stop.clone());
                tracker.spawn(async move {
                    tokio::select! {
                        _ = workers.acquire() => {}
                        _ = stop.cancelled() => {}
                    }
                    drop(places);
                });
            }
            Err(why) => hand_back(&core, &w.job, why),
        }
    }
}

/// How far ahead an adaptive pool takes jobs: as many as its recent rate
/// of job ends would start within this long, so that a job taken ahead
/// waits about this long for a worker.
pub(crate) const AHEAD_HORIZON: Duration = Duration::from_millis(10);

/// The places ahead an adaptive pool has, when it has fewer workers: a
/// small pool of short jobs fetches in batches up to this large, not one
/// per worker, so that each fetch call is shared by more jobs.
pub(crate) const ADAPTIVE_AHEAD: usize = 256;

/// How often the rate of job ends is measured: often enough that a pool
/// meeting a burst after a pause takes jobs ahead within a few
/// milliseconds (it starts from none), the rate smoothed over the samples.
const SAMPLE: Duration = Duration::from_millis(5);

/// The places ahead an adaptive pool may use (the default prefetch): of
/// the room's `cap` places ahead, it holds those that the pool's recent
/// rate of job ends does not call for, out of the fetches' reach.
pub(crate) struct Allowance {
    cap: usize,
    /// The most places ahead the rate may call for (at most `cap`; fewer
    /// once the pool serves groups: [`Allowance::narrow`]).
    most: usize,
    held: Option<OwnedSemaphorePermit>,
    seen: u64,
    since: Instant,
    /// Job ends per second, smoothed over the last samples.
    rate: f64,
}

impl Allowance {
    /// Holds all `cap` places ahead of `room`, a room just made with them.
    pub(crate) fn new(room: &Arc<Semaphore>, cap: usize, now: Instant) -> Self {
        let held = room.clone().try_acquire_many_owned(u32::try_from(cap).unwrap_or(u32::MAX)).ok();
        Allowance { cap, most: cap, held, seen: 0, since: now, rate: 0.0 }
    }

    /// Allows at most `most` places ahead from now on, whatever the rate
    /// (places in use stay in use until their jobs start).
    pub(crate) fn narrow(&mut self, most: usize) {
        self.most = self.most.min(most);
    }

    /// The places ahead that a rate of `rate` job ends a second calls for,
    /// at most `cap`.
    pub(crate) fn allowed(rate: f64, cap: usize) -> usize {
        // A float to a count: truncation toward zero is the intent, and a
        // NaN or negative rate (none here) would give 0.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (rate * AHEAD_HORIZON.as_secs_f64()) as usize;
        n.min(cap)
    }

    /// The places ahead in use or free to use now.
    pub(crate) fn ahead(&self) -> usize {
        self.cap - self.held.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Takes in `ends`, the pool's job ends so far, at `now`; gives back
    /// the held places the rate calls for, or holds again those it no
    /// longer does (as they come free: a place in use stays in use).
    pub(crate) fn adjust(&mut self, room: &Arc<Semaphore>, ends: u64, now: Instant) {
        let dt = now.saturating_duration_since(self.since);
        if dt >= SAMPLE {
            // A count of job ends as a rate: exact far past any pool's pace.
            #[allow(clippy::cast_precision_loss)]
            let r = ends.saturating_sub(self.seen) as f64 / dt.as_secs_f64();
            // Smoothed over the last samples; after a long pause (the pool
            // idle, or all its workers on long jobs) the pause's rate alone,
            // so that a pool fast an hour ago does not take a burst ahead.
            self.rate = if dt > SAMPLE * 4 { r } else { (self.rate + r) / 2.0 };
            self.seen = ends;
            self.since = now;
        }
        let want = self.cap - Self::allowed(self.rate, self.most);
        let held = self.cap - self.ahead();
        if held > want {
            if let Some(p) = self.held.as_mut() {
                drop(p.split(held - want));
            }
        } else if held < want {
            let more = (want - held).min(room.available_permits());
            if let Ok(extra) = room.clone().try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX)) {
                match self.held.as_mut() {
                    Some(p) => p.merge(extra),
                    None => self.held = Some(extra),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_places_ahead_follow_the_rate_of_job_ends() {
        assert_eq!(Allowance::allowed(0.0, 64), 0);
        assert_eq!(Allowance::allowed(99.0, 64), 0, "under one job per horizon: none ahead");
        assert_eq!(Allowance::allowed(1_000.0, 64), 10);
        assert_eq!(Allowance::allowed(1_000_000.0, 64), 64, "never past the cap");
    }

    const WORKERS: usize = 8;

    /// A pool of 8 workers with up to 8 places ahead, after four samples
    /// of 16,000 ends a second (160 per 10 ms: every place ahead), and its
    /// ends so far.
    fn at_full_pace() -> (Arc<Semaphore>, Allowance, Instant, u64) {
        let room = Arc::new(Semaphore::new(WORKERS * 2));
        let start = Instant::now();
        let mut a = Allowance::new(&room, WORKERS, start);
        assert_eq!((a.ahead(), room.available_permits()), (0, WORKERS), "an idle pool takes none ahead");
        let mut ends = 0;
        for i in 1..=4 {
            ends += 80;
            a.adjust(&room, ends, start + SAMPLE * i);
        }
        assert_eq!((a.ahead(), room.available_permits()), (WORKERS, WORKERS * 2));
        (room, a, start, ends)
    }

    #[test]
    fn an_allowance_gives_places_as_jobs_end_and_takes_them_back_when_they_stop() {
        let (room, mut a, start, ends) = at_full_pace();
        // Places in use stay in use: the allowance takes back only free ones.
        let used = room.clone().try_acquire_many_owned(12).unwrap();
        for i in 5..=12 {
            a.adjust(&room, ends, start + SAMPLE * i);
        }
        assert_eq!(room.available_permits(), 0, "4 places were free and held again");
        assert_eq!(a.ahead(), WORKERS - 4);
        drop(used);
        a.adjust(&room, ends, start + SAMPLE * 13);
        assert_eq!((a.ahead(), room.available_permits()), (0, WORKERS), "no ends: none ahead");
    }

    #[test]
    fn a_narrowed_allowance_holds_the_places_past_its_bound() {
        let (room, mut a, start, ends) = at_full_pace();
        a.narrow(3);
        a.adjust(&room, ends + 80, start + SAMPLE * 5);
        assert_eq!((a.ahead(), room.available_permits()), (3, WORKERS + 3), "full pace, but 3 ahead at most");
        a.narrow(WORKERS);
        a.adjust(&room, ends + 160, start + SAMPLE * 6);
        assert_eq!(a.ahead(), 3, "a narrowed allowance never widens again");
    }

    #[test]
    fn a_long_pause_forgets_the_pace_before_it() {
        let (room, mut a, start, ends) = at_full_pace();
        // An hour later, one job has ended since.
        a.adjust(&room, ends + 1, start + Duration::from_secs(3600));
        assert_eq!(a.ahead(), 0, "the pace of an hour ago is forgotten at once");
    }
}
