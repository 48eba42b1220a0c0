//! Browsing: jobs of one state a page at a time, and the per-minute history
//! of ended attempts (for the dashboard and the command line).

use jobs_core::{validate_queue_name, Error, JobInfo, JobStatus, MinuteCounts};

use crate::decode::{from_ms, job_id, job_info, key_of_field, text, to_ms};
use crate::keys::QueueKeys;
use crate::partitions::at_once;
use crate::queue::RedisQueue;
use crate::scripts::progress::stored_progress;
use crate::scripts::read::{Read, StoredJob};

/// Ids read per round trip while filtering a sorted set shared by two
/// statuses.
const PAGE: usize = 500;

/// Where the ids of one status are kept, in listing order.
enum Source {
    /// The ready lists, most urgent first (the order workers take them).
    Ready,
    /// A sorted set, ascending or descending.
    Sorted { key: String, rev: bool },
    /// A list, from its head.
    List { key: String },
    /// Ids read beforehand (the jobs of every lease, by lease expiry).
    Fixed(Vec<Vec<u8>>),
}

impl RedisQueue {
    /// Jobs of `queue` with `status`, skipping `offset`: pending in the order
    /// workers take them, scheduled and retrying by due time, running by
    /// lease expiry, dead, succeeded and cancelled newest first (as
    /// `MemoryQueue` lists them).
    ///
    /// A partitioned queue's pages are each partition's first `offset +
    /// limit` jobs, merged in that order.
    pub(crate) async fn list_jobs(
        &self,
        queue: &str,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<JobInfo>, Error> {
        if limit == 0 || validate_queue_name(queue).is_err() {
            return Ok(Vec::new());
        }
        let parts = self.all_partitions(queue);
        if let [keys] = &parts[..] {
            return self.list_partition(keys, status, offset, limit).await;
        }
        // Each partition's first `offset + limit`.
        let pages = at_once(&parts, |keys| self.list_partition(keys, status, 0, offset.saturating_add(limit))).await?;
        let mut all: Vec<JobInfo> = pages.into_iter().flatten().collect();
        let never = std::time::SystemTime::UNIX_EPOCH;
        match status {
            JobStatus::Pending => all.sort_by_key(|j| (j.priority.rank(), j.id.ulid())),
            JobStatus::Scheduled | JobStatus::Retrying | JobStatus::Running => {
                all.sort_by_key(|j| (j.run_at.unwrap_or(never), j.id.ulid()));
            }
            _ => all.sort_by_key(|j| std::cmp::Reverse((j.finished_at.unwrap_or(never), j.id.ulid()))),
        }
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }

    /// [`list_jobs`](Self::list_jobs) of one partition.
    async fn list_partition(
        &self,
        keys: &QueueKeys,
        status: JobStatus,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<JobInfo>, Error> {
        let (source, shared) = match status {
            JobStatus::Pending => (Source::Ready, false),
            JobStatus::Scheduled | JobStatus::Retrying => (Source::Sorted { key: keys.scheduled(), rev: false }, true),
            // A lease lists the jobs it took, running or not any more.
            JobStatus::Running => (Source::Fixed(self.leased_ids(keys).await?), true),
            JobStatus::Dead => (Source::Sorted { key: keys.dead(), rev: true }, false),
            JobStatus::Succeeded | JobStatus::Cancelled | JobStatus::Expired => {
                (Source::List { key: keys.done() }, true)
            }
            // A status the port gained after this backend: none of its jobs has it.
            _ => return Ok(Vec::new()),
        };
        // A source holding one status only: jump straight to the offset.
        // A shared one is read from the start and filtered.
        let (mut pos, mut skip) = if shared { (0, offset) } else { (offset, 0) };
        let mut out = Vec::new();
        loop {
            let want = if shared { PAGE } else { limit - out.len() };
            let ulids = self.ids(keys, &source, pos, want).await?;
            if ulids.is_empty() {
                return Ok(out);
            }
            pos += ulids.len();
            for info in self.infos(keys, &ulids).await? {
                if info.status != status {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(info);
                if out.len() == limit {
                    return Ok(out);
                }
            }
            if ulids.len() < want {
                return Ok(out);
            }
        }
    }

    /// The jobs of every lease, leases by expiry (earliest first), each job
    /// once (a job may be listed by an old lease and run under a newer one).
    async fn leased_ids(&self, keys: &QueueKeys) -> Result<Vec<Vec<u8>>, Error> {
        let err = |e: redis::RedisError| self.command_error("list_jobs", &e);
        let tokens: Vec<u64> =
            redis::cmd("ZRANGE").arg(keys.leased()).arg(0).arg(-1).query_async(&mut self.conn()).await.map_err(err)?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in &tokens {
            pipe.cmd("LRANGE").arg(keys.lease(*t)).arg(0).arg(-1);
        }
        let lists: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut self.conn()).await.map_err(err)?;
        // Keep each job's last listing: the lease it runs under now.
        let all: Vec<Vec<u8>> = lists.into_iter().flatten().collect();
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<Vec<u8>> = all.into_iter().rev().filter(|id| seen.insert(id.clone())).collect();
        out.reverse();
        Ok(out)
    }

    /// Up to `n` ids from position `pos` of a source.
    async fn ids(&self, keys: &QueueKeys, source: &Source, pos: usize, n: usize) -> Result<Vec<Vec<u8>>, Error> {
        let stop = pos + n - 1;
        match source {
            Source::Fixed(all) => Ok(all.iter().skip(pos).take(n).cloned().collect()),
            Source::List { key } => redis::cmd("LRANGE")
                .arg(key)
                .arg(pos)
                .arg(stop)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("list_jobs", &e)),
            Source::Sorted { key, rev } => redis::cmd(if *rev { "ZREVRANGE" } else { "ZRANGE" })
                .arg(key)
                .arg(pos)
                .arg(stop)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error("list_jobs", &e)),
            Source::Ready => self.ready_ids(keys, pos, stop).await,
        }
    }

    /// Pending ids at positions `pos..=stop` of the queue's lines read as
    /// one: its ungrouped jobs by priority, then each group's (in the order
    /// of `gwait`, busiest first) by priority. Groups wholly before
    /// `pos` are skipped by their pending count, without reading their
    /// lists.
    async fn ready_ids(&self, keys: &QueueKeys, pos: usize, stop: usize) -> Result<Vec<Vec<u8>>, Error> {
        let err = |e: redis::RedisError| self.command_error("list_jobs", &e);
        let mut lines: Vec<String> = (0..4).map(|rank| keys.ready(rank)).collect();
        let mut start = 0;
        let mut out = self.read_lines(&lines, &mut start, pos, stop).await?;
        let mut page = 0;
        const GROUPS_PAGE: isize = 200;
        while start <= stop {
            let from = page * GROUPS_PAGE;
            let groups: Vec<String> = redis::cmd("ZREVRANGE")
                .arg(keys.group_waiting())
                .arg(from)
                .arg(from + GROUPS_PAGE - 1)
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            if groups.is_empty() {
                break;
            }
            // The scores are bounds (see groups.lua); `gpend` has the counts.
            let counts: Vec<Option<usize>> = redis::cmd("HMGET")
                .arg(keys.group_pending())
                .arg(&groups)
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            for (group, pending) in groups.iter().zip(counts) {
                let pending = pending.unwrap_or(0);
                if start + pending <= pos {
                    start += pending;
                    continue;
                }
                lines = (0..4).map(|rank| keys.group_ready(rank, group)).collect();
                out.extend(self.read_lines(&lines, &mut start, pos, stop).await?);
                if start > stop {
                    break;
                }
            }
            if groups.len() < GROUPS_PAGE as usize {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    /// The ids at positions `pos..=stop` of `lines` read as one list that
    /// starts at position `start` (moved past them).
    async fn read_lines(
        &self,
        lines: &[String],
        start: &mut usize,
        pos: usize,
        stop: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let err = |e: redis::RedisError| self.command_error("list_jobs", &e);
        let mut pipe = redis::pipe();
        for line in lines {
            pipe.cmd("LLEN").arg(line);
        }
        let lens: Vec<usize> = pipe.query_async(&mut self.conn()).await.map_err(err)?;
        let mut pipe = redis::pipe();
        let mut parts = 0;
        for (line, len) in lines.iter().zip(lens) {
            let (from, to) = (pos.max(*start), stop.min((*start + len).saturating_sub(1)));
            if len > 0 && from <= to {
                pipe.cmd("LRANGE").arg(line).arg(from - *start).arg(to - *start);
                parts += 1;
            }
            *start += len;
        }
        if parts == 0 {
            return Ok(Vec::new());
        }
        let parts: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut self.conn()).await.map_err(err)?;
        // A job with a state field is listed as `+<ulid>`.
        Ok(parts
            .into_iter()
            .flatten()
            .map(|mut id| {
                if id.first() == Some(&b'+') {
                    id.remove(0);
                }
                id
            })
            .collect())
    }

    /// The jobs of these ids that still exist, in order: one `read.lua`
    /// call, so each job is read at one instant (its record, state, log and
    /// result fields).
    pub(crate) async fn infos(&self, keys: &QueueKeys, ulids: &[Vec<u8>]) -> Result<Vec<JobInfo>, Error> {
        if ulids.is_empty() {
            return Ok(Vec::new());
        }
        let stored = self.invoke(Read { keys, ulids }).await?;
        let mut out = Vec::with_capacity(ulids.len());
        for (u, job) in ulids.iter().zip(stored) {
            // No record: deleted since its id was read (trimmed, purged).
            if let Some(info) = stored_info(keys, u, &job)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Ended attempts per minute, oldest first, the current minute last, from
    /// the `minute:<secs>` hashes the scripts keep for 25 hours.
    pub(crate) async fn throughput(&self, queue: &str, minutes: usize) -> Result<Vec<MinuteCounts>, Error> {
        // Minutes of the server's clock, which dates them (see common.lua).
        let now = to_ms(self.now().await?) / 60_000 * 60;
        let firsts: Vec<u64> = (0..minutes as u64).rev().map(|back| now.saturating_sub(back * 60)).collect();
        if firsts.is_empty() || validate_queue_name(queue).is_err() {
            return Ok(firsts.into_iter().map(|minute| MinuteCounts { minute, ..Default::default() }).collect());
        }
        let parts = self.all_partitions(queue);
        let mut pipe = redis::pipe();
        for keys in &parts {
            for &m in &firsts {
                pipe.cmd("HMGET").arg(keys.minute(m)).arg("processed").arg("failed");
            }
        }
        let counts: Vec<(Option<u64>, Option<u64>)> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| self.command_error("throughput", &e))?;
        let mut out: Vec<MinuteCounts> =
            firsts.iter().map(|&minute| MinuteCounts { minute, ..Default::default() }).collect();
        // Each partition's minutes in turn, added up.
        for (i, (p, f)) in counts.into_iter().enumerate() {
            let m = &mut out[i % firsts.len()];
            m.processed += p.unwrap_or(0);
            m.failed += f.unwrap_or(0);
        }
        Ok(out)
    }
}

/// A job stored under `keys` as its fields read (`None`: no record).
pub(crate) fn stored_info(keys: &QueueKeys, ulid: &[u8], job: &StoredJob) -> Result<Option<JobInfo>, Error> {
    const OP: &str = "job";
    let Some(rec) = &job.record else { return Ok(None) };
    let id = job_id(OP, keys, ulid)?;
    let mut info = job_info(&id, rec, job.state.as_deref(), job.log.as_deref(), job.result.as_deref())?;
    info.snoozes = job.snoozes.as_deref().and_then(|b| text(b).parse().ok()).unwrap_or(0);
    info.expires_at = job.expires.as_deref().and_then(|b| text(b).parse().ok()).map(from_ms);
    info.progress = job.progress.as_deref().and_then(stored_progress);
    info.handler_started = job.handler_started;
    info.caller_id = job.caller_id.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
    info.key = job.key.as_deref().and_then(key_of_field);
    info.group = job.group.as_deref().and_then(|f| {
        let colon = f.iter().position(|&b| b == b':')?;
        Some(String::from_utf8_lossy(&f[colon + 1..]).into_owned())
    });
    Ok(Some(info))
}
