//! The operators' calls: look up, cancel, count, dead-letter set, pause,
//! limits.

use std::collections::HashMap;

use jobs_core::{
    validate_queue_name, BreakerAction, BreakerInfo, BreakerState, CancelResult, Counts, Error, GroupBreakerInfo,
    GroupInfo, JobId, JobInfo, Priority, QueueCounts, QueuePolicy, QueueStats, GROUP_BREAKERS_LISTED,
};
use redis::Value;

use crate::decode::{breaker_field, from_ms, group_breaker_field, job_id, rate_field, text};
use crate::error::RedisQueueError;
use crate::hot::BATCH;
use crate::keys::{queues_key, QueueKeys};
use crate::partitions::at_once;
use crate::queue::RedisQueue;
use crate::scripts::cancel::Cancel;
use crate::scripts::groups_top::GroupsTop;
use crate::scripts::purge_dead::PurgeDead;
use crate::scripts::retry_dead::{DeadRetry, RetryDead};
use crate::scripts::set_breaker::SetBreaker;
use crate::scripts::set_paused::SetPaused;
use crate::scripts::set_policy::SetPolicy;

type Hash = HashMap<String, Vec<u8>>;

impl RedisQueue {
    /// A job by its id; `None` when it does not exist (any more).
    pub(crate) async fn job(&self, id: &JobId) -> Result<Option<JobInfo>, Error> {
        if validate_queue_name(id.queue()).is_err() {
            return Ok(None);
        }
        let ulid = id.ulid().to_string().into_bytes();
        Ok(self.infos(&self.keys_of(id), &[ulid]).await?.pop())
    }

    /// Cancels a job: at once when it waits, through its worker when it runs.
    pub(crate) async fn cancel(&self, id: &JobId) -> Result<CancelResult, Error> {
        if validate_queue_name(id.queue()).is_err() {
            return Err(Error::NotFound(id.clone()));
        }
        let keys = self.keys_of(id);
        self.invoke(Cancel { keys: &keys, id }).await?.ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Counts of every queue in `<prefix>:queues`, in one pipelined round
    /// trip: the ready lists' lengths and the grouped pending gauge
    /// (pending), and the `stats` hash (the other gauges and the counters)
    /// of each, and of each partition of a partitioned queue, added up.
    pub(crate) async fn stats(&self) -> Result<QueueStats, Error> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(queues_key(&self.inner.prefix))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error("stats", &e))?;
        names.retain(|q| validate_queue_name(q).is_ok());
        names.sort();
        let mut stats = QueueStats::default();
        if names.is_empty() {
            return Ok(stats);
        }
        let counts = self.partition_counts();
        let parts: Vec<(String, QueueKeys)> = names
            .iter()
            .flat_map(|q| self.partitions_in(q, &counts).into_iter().map(move |k| (q.clone(), k)))
            .collect();
        let mut pipe = redis::pipe();
        for (_, k) in &parts {
            for rank in 0..4 {
                pipe.cmd("LLEN").arg(k.ready(rank));
            }
            pipe.cmd("HGETALL").arg(k.stats());
            pipe.cmd("HMGET").arg(k.meta()).arg("paused").arg("bstate").arg("bopened").arg("gbopened");
            pipe.cmd("HLEN").arg(k.group_breakers());
        }
        let replies: Vec<Value> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| self.command_error("stats", &e))?;
        if replies.len() != parts.len() * 7 {
            return Err(RedisQueueError::reply("stats", format!("{} replies", replies.len())).into());
        }
        for ((q, _), r) in parts.into_iter().zip(replies.chunks_exact(7)) {
            let gauges: Hash = redis::from_redis_value_ref(&r[4])
                .map_err(|e| RedisQueueError::reply("stats", format!("stats hash of `{q}`: {e}")))?;
            let get = |field: &str| gauges.get(field).and_then(|v| text(v).parse::<i64>().ok()).unwrap_or(0);
            // A gauge is never negative unless the data was edited by hand.
            let gauge = |field: String| u64::try_from(get(&field)).unwrap_or(0);
            type Meta = (Option<String>, Option<String>, Option<String>, Option<String>);
            let (paused, breaker, opened, groups_opened): Meta = redis::from_redis_value_ref(&r[5]).unwrap_or_default();
            let mut qc = QueueCounts {
                paused: paused.as_deref() == Some("1"),
                breaker_open: matches!(breaker.as_deref(), Some("open" | "probe")),
                breaker_opened: opened.and_then(|o| o.parse().ok()).unwrap_or(0),
                group_breakers_open: redis::from_redis_value_ref(&r[6]).unwrap_or(0),
                group_breakers_opened: groups_opened.and_then(|o| o.parse().ok()).unwrap_or(0),
                limited: gauge("limited".to_owned()),
                throttled: gauge("throttled".to_owned()),
                handed: gauge("handed".to_owned()),
                partitions: crate::partitions::count_in(&counts, &q),
                ..Default::default()
            };
            for p in Priority::ALL {
                let rank = p.rank();
                let pending: i64 = redis::from_redis_value_ref(&r[rank]).unwrap_or(0);
                qc.by_priority.insert(
                    p,
                    Counts {
                        // The ungrouped ones (the list), and the grouped ones
                        // in their groups' lists (a gauge).
                        pending: u64::try_from(pending).unwrap_or(0) + gauge(format!("gpending:{rank}")),
                        scheduled: gauge(format!("scheduled:{rank}")),
                        running: gauge(format!("running:{rank}")),
                        retrying: gauge(format!("retrying:{rank}")),
                        dead: gauge(format!("dead:{rank}")),
                        processed: gauge(format!("processed:{rank}")),
                        failed: gauge(format!("failed:{rank}")),
                        expired: gauge(format!("expired:{rank}")),
                    },
                );
            }
            stats.queues.entry(q).or_default().merge(qc);
        }
        Ok(stats)
    }

    /// One `groups_top.lua` call per partition: the busiest groups with
    /// their counts and bounds, and the queue's overrides. (A group lives
    /// in one partition: the busiest of all partitions are among the
    /// busiest of each.)
    pub(crate) async fn groups(&self, queue: &str, limit: usize) -> Result<Vec<GroupInfo>, Error> {
        if limit == 0 || validate_queue_name(queue).is_err() {
            return Ok(Vec::new());
        }
        let parts = self.all_partitions(queue);
        let tops = at_once(&parts, |k| self.partition_groups(k, limit)).await?;
        let mut all: Vec<GroupInfo> = tops.into_iter().flatten().collect();
        // The order groups_top.lua lists them in: by backlog, ties by the
        // greater key.
        all.sort_by(|a, b| b.pending.cmp(&a.pending).then_with(|| b.key.cmp(&a.key)));
        all.truncate(limit);
        Ok(all)
    }

    async fn partition_groups(&self, keys: &QueueKeys, limit: usize) -> Result<Vec<GroupInfo>, Error> {
        let top = self.invoke(GroupsTop { keys, limit }).await?;
        // The queue's own bounds, when set, override every group's.
        let over_rate = rate_field(&top.over_rate);
        let over_limit = top.over_limit.parse::<u32>().ok();
        Ok(top
            .groups
            .into_iter()
            .map(|g| {
                // `<concurrency>/<rate>/<rank>` (see groups.lua).
                let mut parts = g.bounds.split('/');
                let limit = parts.next().and_then(|l| l.parse::<u32>().ok());
                let rate = parts.next().and_then(rate_field);
                GroupInfo {
                    key: g.key,
                    rate: over_rate.or(rate),
                    pending: g.pending,
                    running: g.running,
                    concurrency: over_limit.or(limit),
                }
            })
            .collect())
    }

    /// Newest first: `ZREVRANGE` of the dead set, then the jobs in one
    /// `read.lua` call (per partition of a partitioned queue, the newest of
    /// all kept).
    pub(crate) async fn dead_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>, Error> {
        if limit == 0 || validate_queue_name(queue).is_err() {
            return Ok(Vec::new());
        }
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        let parts = self.all_partitions(queue);
        let newest = at_once(&parts, |keys| async move {
            let ulids: Vec<Vec<u8>> = redis::cmd("ZREVRANGE")
                .arg(keys.dead())
                .arg(0)
                .arg(stop)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("dead_jobs", &e))?;
            self.infos(keys, &ulids).await
        })
        .await?;
        let mut all: Vec<JobInfo> = newest.into_iter().flatten().collect();
        if parts.len() > 1 {
            // The dead set's order: when each died, the newest first.
            all.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then_with(|| b.id.cmp(&a.id)));
            all.truncate(limit);
        }
        Ok(all)
    }

    /// Puts a dead job back to pending.
    pub(crate) async fn retry_dead(&self, id: &JobId) -> Result<(), Error> {
        if validate_queue_name(id.queue()).is_err() {
            return Err(Error::NotFound(id.clone()));
        }
        let keys = self.keys_of(id);
        match self.invoke(RetryDead { keys: &keys, id }).await? {
            DeadRetry::Pending => Ok(()),
            DeadRetry::NotFound => Err(Error::NotFound(id.clone())),
            DeadRetry::NotDead(status) => {
                Err(Error::InvalidState { id: id.clone(), status, action: "retry a job that is not dead" })
            }
        }
    }

    /// Deletes a queue's dead jobs: bounded script calls until the dead set
    /// is empty.
    pub(crate) async fn purge_dead(&self, queue: &str) -> Result<u64, Error> {
        if validate_queue_name(queue).is_err() {
            return Ok(0);
        }
        let parts = self.all_partitions(queue);
        let each = at_once(&parts, |keys| async move {
            let mut total = 0u64;
            loop {
                let n = self.invoke(PurgeDead { keys, limit: BATCH }).await?;
                total += n;
                if n < BATCH as u64 {
                    return Ok(total);
                }
            }
        })
        .await?;
        Ok(each.into_iter().sum())
    }

    /// Stops fetches taking jobs of `queue`.
    pub(crate) async fn pause(&self, queue: &str) -> Result<(), Error> {
        self.set_paused(queue, true).await
    }

    /// Lets fetches take jobs of `queue` again.
    pub(crate) async fn resume(&self, queue: &str) -> Result<(), Error> {
        self.set_paused(queue, false).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), Error> {
        validate_queue_name(queue)?;
        let parts = self.all_partitions(queue);
        at_once(&parts, |keys| self.invoke(SetPaused { keys, paused })).await?;
        self.register(queue).await
    }

    /// One `set_policy.lua` call: the limits, then a wake-up for pools
    /// waiting on a bound that may have been raised.
    pub(crate) async fn set_policy(&self, queue: &str, policy: QueuePolicy) -> Result<(), Error> {
        validate_queue_name(queue)?;
        policy.check()?;
        let n = crate::partitions::count_in(&self.partition_counts(), queue);
        crate::partitions::check_policy(queue, n, &policy)?;
        // Each partition applies the policy to its own jobs.
        let parts = self.all_partitions(queue);
        at_once(&parts, |keys| self.invoke(SetPolicy { keys, policy: &policy })).await?;
        self.register(queue).await
    }

    /// The policy as [`set_policy`](Self::set_policy) stored it.
    pub(crate) async fn policy(&self, queue: &str) -> Result<QueuePolicy, Error> {
        validate_queue_name(queue)?;
        const FIELDS: [&str; 13] = [
            "max_jobs",
            "priority_levels",
            "max_running",
            "rate",
            "group_concurrency",
            "group_rate",
            "breaker",
            "r_done_ms",
            "r_done_max",
            "r_dead_ms",
            "r_dead_max",
            "archive",
            "group_breaker",
        ];
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys(queue).meta())
            .arg(&FIELDS[..])
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error("policy", &e))?;
        // HMGET answers one value per field asked.
        let field = |i: usize| values.get(i).cloned().flatten().filter(|s| !s.is_empty());
        let number = |i: usize| field(i).and_then(|s| s.parse::<u64>().ok());
        let count = |i: usize| number(i).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let priority_levels =
            field(1).unwrap_or_default().bytes().filter_map(|b| crate::decode::priority_of(&[b])).collect();
        Ok(QueuePolicy {
            max_jobs: number(0),
            priority_levels,
            max_running: number(2),
            rate: field(3).as_deref().and_then(rate_field),
            group_concurrency: field(4).and_then(|s| s.parse::<u32>().ok()),
            group_rate: field(5).as_deref().and_then(rate_field),
            breaker: field(6).as_deref().and_then(breaker_field),
            retention: jobs_core::QueueRetention {
                succeeded: number(7).map(std::time::Duration::from_millis),
                succeeded_max: count(8),
                dead_age: number(9).map(std::time::Duration::from_millis),
                dead_max: count(10),
            },
            archive: field(11).as_deref() == Some("1"),
            group_breaker: field(12).as_deref().and_then(breaker_field),
        })
    }

    /// The queue's breaker and its groups': per partition, added up (the
    /// state is the first partition's that is not closed; the groups'
    /// listing stays one page).
    pub(crate) async fn breaker(&self, queue: &str) -> Result<BreakerInfo, Error> {
        validate_queue_name(queue)?;
        // Added up in partition order.
        let parts = self.all_partitions(queue);
        let each = at_once(&parts, |keys| self.partition_breaker(keys)).await?;
        let mut all: Option<BreakerInfo> = None;
        for b in each {
            let Some(a) = all.as_mut() else {
                all = Some(b);
                continue;
            };
            if a.state == BreakerState::Closed {
                a.state = b.state;
            }
            a.recent_failures = a.recent_failures.saturating_add(b.recent_failures);
            // Opened by hand in every partition at once (a partitioned
            // queue has no breaker policy to open one by itself).
            a.opened = a.opened.max(b.opened);
            a.groups_open += b.groups_open;
            a.groups_opened += b.groups_opened;
            a.groups.extend(b.groups);
            a.groups.truncate(GROUP_BREAKERS_LISTED);
        }
        // all_partitions names one partition at least.
        all.ok_or_else(|| RedisQueueError::reply("breaker", "no partition").into())
    }

    /// The state fields of the meta hash, the failures logged, the groups'
    /// breakers (one page of `gbrk`) and the server's clock, in one
    /// pipelined round trip.
    async fn partition_breaker(&self, keys: &QueueKeys) -> Result<BreakerInfo, Error> {
        type Meta = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
        type Fields = ((u64, u64), Meta, Vec<(String, f64)>, u64, (String, Vec<(String, String)>));
        let ((secs, micros), (state, until, probe, opened, config, groups_opened), failures, groups_open, (_, page)): Fields =
            redis::pipe()
                .cmd("TIME")
                .cmd("HMGET")
                .arg(keys.meta())
                .arg("bstate")
                .arg("buntil")
                .arg("bprobe")
                .arg("bopened")
                .arg("breaker")
                .arg("gbopened")
                .cmd("ZRANGE")
                .arg(keys.breaker_failures())
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .cmd("HLEN")
                .arg(keys.group_breakers())
                // One page: the listing is bounded, not complete.
                .cmd("HSCAN")
                .arg(keys.group_breakers())
                .arg(0)
                .arg("COUNT")
                .arg(GROUP_BREAKERS_LISTED)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("breaker", &e))?;
        let now_ms = secs * 1000 + micros / 1000;
        let until = from_ms(until.and_then(|u| u.parse().ok()).unwrap_or(0));
        let state = match (state.as_deref(), probe.filter(|p| !p.is_empty())) {
            (Some("open"), _) => BreakerState::Open { until },
            (Some("probe"), Some(p)) => match job_id("breaker", keys, p.as_bytes()) {
                Ok(job) => BreakerState::Probing { job, until },
                Err(_) => BreakerState::Open { until },
            },
            _ => BreakerState::Closed,
        };
        let recent = match config.as_deref().and_then(breaker_field) {
            // Scores are milliseconds: whole numbers far below 2^53.
            Some(b) => {
                let within = u64::try_from(b.within.as_millis()).unwrap_or(u64::MAX);
                failures.iter().filter(|(_, t)| (*t as u64).saturating_add(within) > now_ms).count()
            }
            None => 0,
        };
        let groups = page
            .into_iter()
            .take(GROUP_BREAKERS_LISTED)
            .filter_map(|(group, v)| {
                let state = group_breaker_field(keys, &v)?;
                Some(GroupBreakerInfo { group, state })
            })
            .collect();
        Ok(BreakerInfo {
            state,
            recent_failures: u32::try_from(recent).unwrap_or(u32::MAX),
            opened: opened.and_then(|o| o.parse().ok()).unwrap_or(0),
            groups_open,
            groups_opened: groups_opened.and_then(|o| o.parse().ok()).unwrap_or(0),
            groups,
        })
    }

    /// One `set_breaker.lua` call, for the queue's breaker or (`group`) one
    /// group's.
    pub(crate) async fn set_breaker(
        &self,
        queue: &str,
        group: Option<&str>,
        action: BreakerAction,
    ) -> Result<(), Error> {
        validate_queue_name(queue)?;
        if let Some(g) = group {
            jobs_core::validate_group_key(g)?;
        }
        // A group's breaker is in its group's partition; the queue's in
        // every one.
        let counts = self.partition_counts();
        let parts = match group {
            Some(g) => vec![self.group_partition(queue, g, &counts)],
            None => self.partitions_in(queue, &counts),
        };
        at_once(&parts, |keys| self.invoke(SetBreaker { keys, action, group })).await?;
        self.register(queue).await
    }
}
