//! Schedules and pool presence over a router.
//!
//! A schedule lives on the backend of the queue it enqueues into, so that
//! handling a tick (recording it and enqueueing its job) stays one atomic
//! step on one backend. Calls by schedule name alone ask each backend in
//! turn. A pool's heartbeat is recorded on every backend, so a tool that
//! opens any one of them sees every pool.

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::queue::{BoxFuture, NewJob, PoolInfo, PoolPresence, ScheduleDef, ScheduleState, ScheduleStore};
use crate::vocab::JobId;

use super::join::join_all;
use super::QueueRouter;

impl<B: ScheduleStore> ScheduleStore for QueueRouter<B> {
    /// Stores the schedule on its queue's backend, and removes one of the
    /// same name from the others: a schedule whose queue moved to another
    /// backend moves with it (its last tick and pause stay behind).
    fn put_schedule(&self, def: ScheduleDef) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let home = self.index(&def.queue)?;
            let name = def.name.clone();
            self.at(home).put_schedule(def).await?;
            for (i, (_, b)) in self.inner.backends.iter().enumerate() {
                if i != home {
                    b.remove_schedule(&name).await?;
                }
            }
            Ok(())
        })
    }

    /// Every backend's schedules, by name.
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>, Error>> {
        Box::pin(async move {
            let answers = join_all(self.inner.backends.iter().map(|(_, b)| b.schedules()).collect()).await;
            let mut all = Vec::new();
            for a in answers {
                all.extend(a?);
            }
            all.sort_by(|a, b| a.def.name.cmp(&b.def.name));
            Ok(all)
        })
    }

    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut removed = false;
            for (_, b) in &self.inner.backends {
                removed |= b.remove_schedule(name).await?;
            }
            Ok(removed)
        })
    }

    fn set_schedule_paused<'a>(&'a self, name: &'a str, paused: bool) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for (_, b) in &self.inner.backends {
                match b.set_schedule_paused(name, paused).await {
                    Err(Error::ScheduleNotFound(_)) => continue,
                    done => return done,
                }
            }
            Err(Error::ScheduleNotFound(name.to_owned()))
        })
    }

    /// A tick with a job goes to the job's queue's backend, where the
    /// schedule lives; a skipped tick to whichever backend holds it.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(async move {
            if let Some(job) = job {
                let home = self.index(job.queue())?;
                return self.at(home).fire_schedule(name, tick, Some(job)).await;
            }
            for (_, b) in &self.inner.backends {
                match b.fire_schedule(name, tick, None).await {
                    Err(Error::ScheduleNotFound(_)) => continue,
                    done => return done,
                }
            }
            Err(Error::ScheduleNotFound(name.to_owned()))
        })
    }
}

impl<B: PoolPresence> PoolPresence for QueueRouter<B> {
    fn report_pool(&self, info: PoolInfo, ttl: Duration) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let calls = self.inner.backends.iter().map(|(_, b)| b.report_pool(info.clone(), ttl)).collect();
            join_all(calls).await.into_iter().collect()
        })
    }

    fn remove_pool<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let calls = self.inner.backends.iter().map(|(_, b)| b.remove_pool(id)).collect();
            join_all(calls).await.into_iter().collect()
        })
    }

    /// Every backend's pools, each once (the most recent heartbeat).
    fn pools(&self) -> BoxFuture<'_, Result<Vec<PoolInfo>, Error>> {
        Box::pin(async move {
            let answers = join_all(self.inner.backends.iter().map(|(_, b)| b.pools()).collect()).await;
            let mut all: Vec<PoolInfo> = Vec::new();
            for pools in answers {
                for p in pools? {
                    match all.iter_mut().find(|q| q.id == p.id) {
                        Some(q) if q.last_seen < p.last_seen => *q = p,
                        Some(_) => {}
                        None => all.push(p),
                    }
                }
            }
            Ok(all)
        })
    }
}
