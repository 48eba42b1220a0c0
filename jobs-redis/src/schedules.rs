//! Recurring schedules and the presence records of running pools.
//!
//! A schedule lives in the slot of the queue its jobs go to
//! (`<p>:{<queue>}:schedule:<name>`), so recording a tick and enqueueing its
//! job are one script. `<p>:{:schedules}` maps each name to its queue (the
//! `:` keeps the tag apart from every queue name). Pools' presence records
//! are `<p>:{:pools}:<id>` strings that expire by themselves, listed by the
//! `<p>:{:pools}:index` sorted set (by expiry).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use jobs_core::{validate_queue_name, Error, JobId, NewJob, PoolInfo, ScheduleDef, ScheduleState};

use crate::decode::{dur_ms, from_ms, job_id, opt_u64, text, to_ms};
use crate::error::RedisQueueError;
use crate::keys;
use crate::keys::QueueKeys;
use crate::queue::RedisQueue;
use crate::scripts::fire_schedule::{FireSchedule, Tick};
use crate::scripts::schedule_paused::SchedulePaused;

type Hash = HashMap<String, Vec<u8>>;

impl RedisQueue {
    fn schedule_index(&self) -> String {
        keys::schedule_index(&self.inner.prefix)
    }

    fn schedule_key(&self, queue: &str, name: &str) -> String {
        self.keys(queue).schedule(name)
    }

    fn pool_key(&self, id: &str) -> String {
        keys::pool_key(&self.inner.prefix, id)
    }

    fn pool_index(&self) -> String {
        keys::pool_index(&self.inner.prefix)
    }

    fn err(&self, op: &'static str) -> impl Fn(redis::RedisError) -> Error + '_ {
        move |e| self.command_error(op, &e)
    }

    /// The queue a schedule's record lives under, if it is stored.
    async fn schedule_queue(&self, name: &str) -> Result<Option<String>, Error> {
        redis::cmd("HGET")
            .arg(self.schedule_index())
            .arg(name)
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("schedules"))
    }

    /// Stores the definition; `created` is written only once, so a definition
    /// replaced later keeps its creation time and state. A definition that
    /// moved to another queue has its record moved along: the old record is
    /// fenced first (`moved`, which makes fire_schedule.lua refuse it), then
    /// read and copied, so no tick fired on the old queue during the move is
    /// missing from the copy and fired again on the new one. A move cut
    /// short leaves the fence; the next store of the definition finishes it.
    pub(crate) async fn put_schedule(&self, def: ScheduleDef) -> Result<(), Error> {
        validate_queue_name(&def.queue)?;
        let key = self.schedule_key(&def.queue, &def.name);
        if let Some(old) = self.schedule_queue(&def.name).await? {
            if old != def.queue && validate_queue_name(&old).is_ok() {
                let old_key = self.schedule_key(&old, &def.name);
                let (mut h,): (Hash,) = redis::pipe()
                    .cmd("HSET")
                    .arg(&old_key)
                    .arg("moved")
                    .arg("1")
                    .ignore()
                    .cmd("HGETALL")
                    .arg(&old_key)
                    .query_async(&mut self.conn())
                    .await
                    .map_err(self.err("put_schedule"))?;
                h.remove("moved");
                let mut pipe = redis::pipe();
                // Only the fence itself when the old record was already gone.
                if h.contains_key("def") {
                    pipe.cmd("HSET").arg(&key);
                    for (k, v) in &h {
                        pipe.arg(k).arg(&v[..]);
                    }
                }
                pipe.cmd("DEL").arg(&old_key);
                pipe.query_async::<()>(&mut self.conn()).await.map_err(self.err("put_schedule"))?;
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HSETNX").arg(&key).arg("created").arg(to_json(&def.created_at)?);
        // Beside the definition, where fire_schedule.lua reads it.
        pipe.cmd("HSET").arg(&key).arg("def").arg(to_json(&def)?).arg("overlap").arg(def.overlap.as_str());
        pipe.cmd("HSET").arg(self.schedule_index()).arg(&def.name).arg(&def.queue);
        pipe.query_async::<()>(&mut self.conn()).await.map_err(self.err("put_schedule"))
    }

    /// Every stored schedule, by name.
    pub(crate) async fn schedules(&self) -> Result<Vec<ScheduleState>, Error> {
        let index: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.schedule_index())
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("schedules"))?;
        let mut index: Vec<_> = index.into_iter().filter(|(_, q)| validate_queue_name(q).is_ok()).collect();
        index.sort();
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (name, queue) in &index {
            pipe.cmd("HGETALL").arg(self.schedule_key(queue, name));
        }
        let hashes: Vec<Hash> = pipe.query_async(&mut self.conn()).await.map_err(self.err("schedules"))?;
        let mut out = Vec::with_capacity(hashes.len());
        for ((_, queue), h) in index.iter().zip(hashes) {
            if !h.is_empty() {
                out.push(schedule_state(&self.keys(queue), h)?);
            }
        }
        Ok(out)
    }

    /// Deletes a schedule; `false` when none is stored under `name`.
    pub(crate) async fn remove_schedule(&self, name: &str) -> Result<bool, Error> {
        let Some(queue) = self.schedule_queue(name).await? else { return Ok(false) };
        let mut pipe = redis::pipe();
        if validate_queue_name(&queue).is_ok() {
            pipe.cmd("DEL").arg(self.schedule_key(&queue, name));
        }
        pipe.cmd("HDEL").arg(self.schedule_index()).arg(name);
        pipe.query_async::<()>(&mut self.conn()).await.map_err(self.err("remove_schedule"))?;
        Ok(true)
    }

    /// Pauses or resumes a schedule.
    pub(crate) async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<(), Error> {
        let not_found = || Error::ScheduleNotFound(name.to_owned());
        let queue =
            self.schedule_queue(name).await?.filter(|q| validate_queue_name(q).is_ok()).ok_or_else(not_found)?;
        let keys = self.keys(&queue);
        if self.invoke(SchedulePaused { keys: &keys, name, paused }).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Records tick `tick` of a schedule and enqueues its job (none: the
    /// tick is skipped), once across processes: `None` when this tick was
    /// handled already.
    pub(crate) async fn fire_schedule(
        &self,
        name: &str,
        tick: SystemTime,
        job: Option<NewJob>,
    ) -> Result<Option<JobId>, Error> {
        let not_found = || Error::ScheduleNotFound(name.to_owned());
        let queue =
            self.schedule_queue(name).await?.filter(|q| validate_queue_name(q).is_ok()).ok_or_else(not_found)?;
        if let Some(j) = &job {
            if j.queue() != queue {
                return Err(Error::InvalidArgument(format!(
                    "schedule `{name}` enqueues on `{queue}`, not on `{}`: one script cannot span queues",
                    j.queue()
                )));
            }
            jobs_core::backend::check_times(std::slice::from_ref(j))?;
            // Listed before the job is stored: once the script has stored it,
            // nothing may fail the call (the tick would be fired again).
            self.register(&queue).await?;
        }
        let keys = self.keys(&queue);
        match self.invoke(FireSchedule { keys: &keys, name, tick, job: job.as_ref() }).await? {
            Tick::NotFound => Err(not_found()),
            Tick::Done | Tick::Waits => Ok(None),
            Tick::Recorded(id) => Ok(id),
            Tick::Refused(why) => Err(why.into_error(&queue)),
        }
    }

    /// `last_seen` and the index's expiry are the server's clock, so pools
    /// on hosts whose clocks disagree neither expire each other early nor
    /// linger.
    pub(crate) async fn report_pool(&self, info: PoolInfo, ttl: Duration) -> Result<(), Error> {
        let now = self.now().await?;
        let info = PoolInfo { last_seen: now, ..info };
        let json = serde_json::to_vec(&info).map_err(|e| Error::Serialize(e.to_string()))?;
        let until = to_ms(now + ttl);
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(self.pool_key(&info.id)).arg(json).arg("PX").arg(dur_ms(ttl).max(1));
        pipe.cmd("ZADD").arg(self.pool_index()).arg(until).arg(&info.id);
        // Every heartbeat drops the index entries of pools that died without
        // removing themselves, so the index stays as small as the live
        // pools whether or not anyone lists them.
        pipe.cmd("ZREMRANGEBYSCORE").arg(self.pool_index()).arg("-inf").arg(to_ms(now));
        pipe.query_async::<()>(&mut self.conn()).await.map_err(self.err("report_pool"))
    }

    /// Deletes a pool's presence record (a clean shutdown).
    pub(crate) async fn remove_pool(&self, id: &str) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.pool_key(id));
        pipe.cmd("ZREM").arg(self.pool_index()).arg(id);
        pipe.query_async::<()>(&mut self.conn()).await.map_err(self.err("remove_pool"))
    }

    /// Live pools: index entries expired by the server's clock are dropped
    /// first, then the records that are still there are read (a record
    /// expires by itself).
    pub(crate) async fn pools(&self) -> Result<Vec<PoolInfo>, Error> {
        let index = self.pool_index();
        let now = self.now().await?;
        let (ids,): (Vec<String>,) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(to_ms(now))
            .ignore()
            .cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("pools"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.pool_key(id)).collect();
        let records: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut self.conn()).await.map_err(self.err("pools"))?;
        let mut out: Vec<PoolInfo> =
            records.into_iter().flatten().filter_map(|b| serde_json::from_slice(&b).ok()).collect();
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }
}

/// A schedule's hash as a [`ScheduleState`].
fn schedule_state(keys: &QueueKeys, mut h: Hash) -> Result<ScheduleState, Error> {
    const OP: &str = "schedules";
    let mut field = |k: &str| h.remove(k).unwrap_or_default();
    let bad = |what: &str, e: serde_json::Error| RedisQueueError::reply(OP, format!("schedule {what}: {e}"));
    let mut def: ScheduleDef = serde_json::from_slice(&field("def")).map_err(|e| bad("definition", e))?;
    let created = field("created");
    if !created.is_empty() {
        def.created_at = serde_json::from_slice(&created).map_err(|e| bad("creation time", e))?;
    }
    let last_job = field("last_job");
    Ok(ScheduleState {
        def,
        paused: text(&field("paused")) == "1",
        last_tick: opt_u64(OP, &field("last_tick_ms"))?.map(from_ms),
        last_run: opt_u64(OP, &field("last_run_ms"))?.map(from_ms),
        last_job: if last_job.is_empty() { None } else { Some(job_id(OP, keys, &last_job)?) },
        held_tick: opt_u64(OP, &field("held_tick_ms"))?.map(from_ms),
        skipped: opt_u64(OP, &field("skipped"))?.unwrap_or(0),
        last_skipped: opt_u64(OP, &field("last_skipped_ms"))?.map(from_ms),
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Serialize(e.to_string()))
}
