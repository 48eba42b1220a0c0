//! Job events of a [`RedisQueue`]: a capped stream per queue (`events`),
//! written by the scripts that change jobs while a listener keeps
//! `events:on` alive, read a page at a time with `XRANGE` ([`read`]), and
//! announced on the queue's `events:wake` channel, which readers wait on
//! with the same pub/sub waiter idle fetchers use (no polling, and on
//! Cluster the stream lives in the queue's slot like every other key).
//!
//! One stream entry holds every event of one script call (a batch of 100
//! finishes is one entry), so a cursor names an entry and a position in it
//! ([`Position`]). The events of a finish carry no job name (a death's
//! excepted): the reader fills them in ([`NameCache`]).

mod cursor;
mod entry;
mod names;
mod read;

use std::collections::HashMap;
use std::time::Duration;

use jobs_core::backend::{BoxFuture, EventHub, Waiter};
use jobs_core::{validate_queue_name, Error, EventCursor, EventPage, JobEvent, JobId, Listening, QueueEvents};

use crate::decode::Record;
use crate::keys::QueueKeys;
use crate::partitions::at_once;
use crate::queue::RedisQueue;
use crate::scripts::listen::Listen;

pub(crate) use cursor::Position;
pub(crate) use names::NameCache;

impl RedisQueue {
    /// Turns recording on in every partition of `queue`. A partitioned
    /// queue's cursor names a position in each partition (see
    /// [`read_events`](Self::read_events)).
    async fn listen(&self, queue: &str, ttl: Duration) -> Result<Listening, Error> {
        validate_queue_name(queue)?;
        let parts = self.all_partitions(queue);
        let each = at_once(&parts, |keys| self.invoke(Listen { keys, history: self.inner.event_history, ttl })).await?;
        let was_on = each.iter().all(|l| l.was_on);
        let cursors: Vec<_> = each.into_iter().map(|l| l.cursor).collect();
        if let [cursor] = &cursors[..] {
            return Ok(Listening { cursor: cursor.clone(), was_on });
        }
        Ok(Listening { cursor: joined(&cursors), was_on })
    }

    /// Up to `max` events of `queue` after `after`. The events of a
    /// partitioned queue are merged from its partitions by time, and its
    /// cursors name a position in each partition, `|`-separated (a
    /// partition with no position, one added since, is read from its
    /// start).
    async fn read_events(&self, queue: &str, after: &EventCursor, max: usize) -> Result<EventPage, Error> {
        validate_queue_name(queue)?;
        let parts = self.all_partitions(queue);
        if let [keys] = &parts[..] {
            return self.read_partition_events(keys, &Position::parse(after)?, max).await;
        }
        let mut at: Vec<EventCursor> = vec![EventCursor::start(); parts.len()];
        if after.as_str() != "0" {
            for (i, text) in after.as_str().split('|').enumerate() {
                let Some(slot) = at.get_mut(i) else {
                    return Err(Error::InvalidArgument(format!(
                        "invalid event cursor `{after}`: it names more partitions than queue {queue} has"
                    )));
                };
                *slot = EventCursor::from_backend(text);
            }
        }
        let positions = at.iter().map(Position::parse).collect::<Result<Vec<_>, _>>()?;
        let read =
            at_once(parts.iter().zip(&positions), |(keys, position)| self.read_partition_events(keys, position, max))
                .await?;
        let mut out = EventPage::default();
        let mut pages = Vec::with_capacity(parts.len());
        for page in read {
            out.missed |= page.missed;
            pages.push(page.events.into_iter());
        }
        let mut heads: Vec<Option<JobEvent>> = pages.iter_mut().map(Iterator::next).collect();
        while out.events.len() < max {
            // The oldest next event of any partition.
            let Some(p) = (0..heads.len())
                .filter(|&i| heads[i].is_some())
                .min_by_key(|&i| heads[i].as_ref().map(|e| (e.at, e.job.ulid())))
            else {
                break;
            };
            let Some(mut e) = std::mem::replace(&mut heads[p], pages[p].next()) else { break };
            at[p] = std::mem::replace(&mut e.cursor, EventCursor::start());
            e.cursor = joined(&at);
            out.events.push(e);
        }
        Ok(out)
    }

    async fn read_partition_events(&self, keys: &QueueKeys, after: &Position, max: usize) -> Result<EventPage, Error> {
        let queue = keys.queue();
        let mut page = self.read_page(keys, after, max).await?;
        let missing = self.inner.event_names.fill(queue, &mut page.events);
        if !missing.is_empty() {
            let mut jobs: Vec<JobId> = missing.iter().map(|&i| page.events[i].job.clone()).collect();
            jobs.sort_unstable();
            jobs.dedup();
            let names = self.names_from_records(keys, &jobs).await?;
            let found: HashMap<&JobId, &str> = jobs.iter().zip(names.iter().map(String::as_str)).collect();
            for &i in &missing {
                if let Some(name) = found.get(&page.events[i].job) {
                    page.events[i].name = (*name).to_owned();
                }
            }
            let known: Vec<(u128, &str)> =
                found.into_iter().filter(|(_, n)| !n.is_empty()).map(|(j, n)| (u128::from(j.ulid()), n)).collect();
            self.inner.event_names.note(queue, &known);
        }
        Ok(page)
    }

    /// The names of `jobs` of the queue of `keys`, from their records (one
    /// `HMGET`, parsed here rather than in Redis); empty for a job no
    /// longer stored.
    async fn names_from_records(&self, keys: &QueueKeys, jobs: &[JobId]) -> Result<Vec<String>, Error> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(keys.jobs());
        for job in jobs {
            let mut ulid = [0u8; ulid::ULID_LEN];
            cmd.arg(&*job.ulid().array_to_str(&mut ulid));
        }
        let records: Vec<Option<Vec<u8>>> =
            cmd.query_async(&mut self.conn()).await.map_err(|e| self.command_error("read_events", &e))?;
        Ok(records
            .iter()
            .map(|r| {
                let name = r.as_deref().and_then(|rec| Some(Record::parse(rec)?.name(rec)));
                String::from_utf8_lossy(name.unwrap_or_default()).into_owned()
            })
            .collect())
    }
}

/// A partitioned queue's cursor: each partition's position, in order.
fn joined(cursors: &[EventCursor]) -> EventCursor {
    let texts: Vec<&str> = cursors.iter().map(EventCursor::as_str).collect();
    EventCursor::from_backend(texts.join("|"))
}

impl QueueEvents for RedisQueue {
    fn listen<'a>(&'a self, queue: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Listening, Error>> {
        Box::pin(self.listen(queue, ttl))
    }

    fn read_events<'a>(
        &'a self,
        queue: &'a str,
        after: &'a EventCursor,
        max: usize,
    ) -> BoxFuture<'a, Result<EventPage, Error>> {
        Box::pin(self.read_events(queue, after, max))
    }

    /// One channel, which every partition of `queue` wakes.
    fn event_waiter(&self, queue: &str) -> Result<Box<dyn Waiter>, Error> {
        validate_queue_name(queue)?;
        Ok(Box::new(crate::waiter::RedisWaiter::start(self, vec![self.keys(queue).events_wake()])?))
    }

    fn event_hub(&self) -> &EventHub {
        &self.inner.hub
    }
}
