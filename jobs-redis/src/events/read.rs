//! A page of a queue's events after a cursor, read with plain stream
//! commands: no script, so Redis copies the entries into the reply and
//! nothing more (a script would copy each into Lua and hash it, then copy
//! it back).
//!
//! The page starts with the cursor's own entry (`XRANGE` from it,
//! inclusive): when that entry is still held, nothing after it was
//! trimmed (the stream is only ever trimmed from its oldest end), so there
//! is no gap to look for. Only when it is gone does the reader ask how the
//! stream was trimmed, as the gap check needs.

use jobs_core::{Error, EventPage};
use redis::Value;

use super::entry::{decode_entry, Entry};
use super::Position;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;
use crate::queue::RedisQueue;

const OP: &str = "read_events";

/// Entries asked for per `XRANGE`: an entry holds up to 256 events, and a
/// reader that keeps up finds one or two new ones.
const ENTRIES_PER_READ: usize = 8;

impl RedisQueue {
    /// Up to `max` events of the queue of `keys` after `after`, oldest
    /// first, and whether events after it were dropped unread.
    pub(crate) async fn read_page(&self, keys: &QueueKeys, after: &Position, max: usize) -> Result<EventPage, Error> {
        let key = keys.events();
        let max = max.max(1);
        let from_start = after.entry == "0-0";
        let mut start = if from_start { "-".to_owned() } else { after.entry.clone() };
        let mut page = EventPage::default();
        let queue: std::sync::Arc<str> = keys.queue().into();
        let mut first = !from_start;
        loop {
            let count = ENTRIES_PER_READ + usize::from(first);
            let entries: Vec<Entry> = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error(OP, &e))?;
            let mut rest = &entries[..];
            if first {
                match rest.first() {
                    Some((id, _)) if *id == after.entry => {
                        // Held: no gap. What the reader saw of it is skipped
                        // (all of it when the cursor names the whole entry).
                        if after.seen > 0 {
                            decode_entry(&queue, &rest[0], after.seen, max, &mut page.events)?;
                        }
                        rest = &rest[1..];
                    }
                    _ => page.missed = self.trimmed_past(&key, after).await?,
                }
            }
            for entry in rest {
                decode_entry(&queue, entry, 0, max, &mut page.events)?;
            }
            if page.events.len() >= max || entries.len() < count {
                if keys.partition() > 0 {
                    for e in &mut page.events {
                        e.job = e.job.clone().in_partition(keys.partition());
                    }
                }
                return Ok(page);
            }
            // `entries` is not empty: it holds `count` entries.
            start = format!("({}", entries[entries.len() - 1].0);
            first = false;
        }
    }

    /// Whether entries after `after` (an entry no longer held, or one
    /// never written, like the `0-1` of an empty stream) were trimmed: the
    /// oldest entry held is newer and the stream was trimmed since it was
    /// created. This can err on the safe side (the trimmed entries may all
    /// have been at or before `after`), never the other way.
    async fn trimmed_past(&self, key: &str, after: &Position) -> Result<bool, Error> {
        let oldest: Vec<(String, Value)> = redis::cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error(OP, &e))?;
        let Some((oldest, _)) = oldest.first() else { return Ok(false) };
        if id_parts(oldest) <= id_parts(&after.entry) {
            return Ok(false);
        }
        let info: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.command_error(OP, &e))?;
        let (added, length) = (info_number(&info, "entries-added")?, info_number(&info, "length")?);
        Ok(added > length)
    }
}

/// A stream id's two numbers (an id that does not parse orders first).
fn id_parts(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// A number of `XINFO STREAM`'s reply (a map, or a flat list of names and
/// values).
fn info_number(info: &Value, name: &str) -> Result<u64, RedisQueueError> {
    let missing = || RedisQueueError::reply(OP, format!("XINFO STREAM without `{name}`"));
    let value = match info {
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is_name(k, name)).map(|(_, v)| v),
        Value::Array(items) => items.chunks(2).find(|kv| kv.len() == 2 && is_name(&kv[0], name)).map(|kv| &kv[1]),
        _ => None,
    };
    match value {
        Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| missing()),
        _ => Err(missing()),
    }
}

fn is_name(v: &Value, name: &str) -> bool {
    match v {
        Value::BulkString(b) => b == name.as_bytes(),
        Value::SimpleString(s) => s == name,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_by_both_numbers() {
        assert!(id_parts("5-1") < id_parts("5-2"));
        assert!(id_parts("5-9") < id_parts("6-0"));
        assert!(id_parts("0-1") < id_parts("1733320000000-0"));
    }

    #[test]
    fn xinfo_numbers_are_found_in_either_reply_shape() {
        let flat = Value::Array(vec![
            Value::BulkString(b"length".to_vec()),
            Value::Int(10),
            Value::BulkString(b"entries-added".to_vec()),
            Value::Int(500),
        ]);
        assert_eq!((info_number(&flat, "length").unwrap(), info_number(&flat, "entries-added").unwrap()), (10, 500));
        let map = Value::Map(vec![(Value::SimpleString("length".into()), Value::Int(3))]);
        assert_eq!(info_number(&map, "length").unwrap(), 3);
        assert!(info_number(&map, "entries-added").is_err());
    }
}
