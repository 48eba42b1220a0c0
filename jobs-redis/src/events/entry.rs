//! One entry of a queue's `events` stream, decoded: the events of one
//! script call (see "Job events" in `common.lua`).

use std::time::{Duration, SystemTime};

use jobs_core::{EventKind, JobEvent};

use super::Position;
use crate::decode::job_id;
use crate::error::RedisQueueError;
use crate::scripts::progress::event_detail;

const OP: &str = "read_events";

/// One stream entry as XRANGE returns it: its id and its fields.
pub(crate) type Entry = (String, Vec<(String, Vec<u8>)>);

/// The events of `entry`, of the queue `queue`, from the `skip`th on (each
/// with its cursor), appended to `out` until it holds `max`. An event whose
/// kind this version does not know (written by a newer one) is skipped; one
/// the entry names no job name for has an empty one.
pub(crate) fn decode_entry(
    queue: &str,
    entry: &Entry,
    skip: usize,
    max: usize,
    out: &mut Vec<JobEvent>,
) -> Result<(), RedisQueueError> {
    let (id, fields) = entry;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice());
    let ms: u64 = id.split('-').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let raw = match field("e") {
        Some(packed) => unpack(packed, field("n").unwrap_or_default())
            .map_err(|what| RedisQueueError::reply(OP, format!("event entry {id}: {what}")))?,
        None => vec![single(&field)],
    };
    let count = raw.len();
    for (index, r) in raw.into_iter().enumerate().skip(skip) {
        if out.len() >= max {
            break;
        }
        let Some(kind) = r.kind.and_then(|k| k.parse::<EventKind>().ok()) else { continue };
        let ulid = r.ulid.ok_or_else(|| RedisQueueError::reply(OP, "an event without a job"))?;
        // A progress event carries its fraction in its detail.
        let (detail, progress) = match r.progress {
            Some(p) => (r.detail, Some(p)),
            None => event_detail(kind, r.detail),
        };
        out.push(JobEvent {
            kind,
            job: job_id(OP, queue, ulid)?,
            name: r.name,
            attempt: r.attempt,
            at,
            detail,
            progress,
            cursor: Position::cursor_of(id, index, count),
        });
    }
    Ok(())
}

/// One event of an entry, before its kind and job are checked.
#[derive(Debug, Default, PartialEq)]
struct Raw<'a> {
    kind: Option<&'a str>,
    ulid: Option<&'a [u8]>,
    name: String,
    attempt: u32,
    detail: Option<String>,
    progress: Option<f32>,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// An entry of the one-event layout (fields `k`, `j`, `n`, `a`, `d`, `p`).
fn single<'a>(field: &impl Fn(&str) -> Option<&'a [u8]>) -> Raw<'a> {
    Raw {
        kind: field("k").and_then(|k| std::str::from_utf8(k).ok()),
        ulid: field("j"),
        name: field("n").map(text).unwrap_or_default(),
        attempt: field("a").and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()).unwrap_or(0),
        detail: field("d").map(text),
        progress: field("p").and_then(|p| std::str::from_utf8(p).ok()?.parse().ok()),
    }
}

/// The events of an entry's `e` field, their names from its `n` field (see
/// "Job events" in `common.lua`): runs of events of one kind, name and
/// detail.
fn unpack<'a>(packed: &'a [u8], names: &'a [u8]) -> Result<Vec<Raw<'a>>, &'static str> {
    let names = unpack_names(names)?;
    let mut out = Vec::new();
    let mut rest = packed;
    while !rest.is_empty() {
        let mut head = [&[][..]; 6];
        for part in &mut head {
            let bar = rest.iter().position(|&b| b == b'|').ok_or("a run is cut short")?;
            *part = &rest[..bar];
            rest = &rest[bar + 1..];
        }
        let [kind, name_no, count, ulids, attempts, detail_len] = head;
        let detail = if detail_len.is_empty() {
            None
        } else {
            let len = number(detail_len).ok_or("a detail length is not a number")?;
            let d = rest.get(..len).ok_or("a detail is cut short")?;
            rest = &rest[len..];
            Some(text(d))
        };
        let name = if name_no.is_empty() {
            String::new()
        } else {
            let no = number(name_no).ok_or("a name number is not a number")?;
            text(names.get(no.wrapping_sub(1)).ok_or("a name number names no name")?)
        };
        let count = number(count).ok_or("a run's count is not a number")?;
        let kind = std::str::from_utf8(kind).ok();
        let attempt_of = |a: &[u8]| number(a).and_then(|a| u32::try_from(a).ok()).unwrap_or(0);
        // `*<attempt>`: every event of the run has that attempt.
        let shared = attempts.strip_prefix(b"*").map(attempt_of);
        let mut each = attempts.split(|&b| b == b',');
        let before = out.len();
        for ulid in ulids.split(|&b| b == b',') {
            let attempt = match shared {
                Some(a) => a,
                None => attempt_of(each.next().ok_or("a run holds fewer attempts than events")?),
            };
            out.push(Raw {
                kind,
                ulid: Some(ulid),
                name: name.clone(),
                attempt,
                detail: detail.clone(),
                progress: None,
            });
        }
        if out.len() - before != count {
            return Err("a run holds another number of events than it says");
        }
    }
    Ok(out)
}

/// The names of an `n` field: `<len>:<name>` each.
fn unpack_names(mut rest: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let colon = rest.iter().position(|&b| b == b':').ok_or("a name is cut short")?;
        let len = number(&rest[..colon]).ok_or("a name length is not a number")?;
        rest = &rest[colon + 1..];
        out.push(rest.get(..len).ok_or("a name is cut short")?);
        rest = &rest[len..];
    }
    Ok(out)
}

fn number(v: &[u8]) -> Option<usize> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_holds_its_events_in_order_with_names_and_details() {
        let names = b"4:send5:a|b:c";
        let packed = b"started|1|2|01ARZ3NDEKTSV4RRFFQ69G5FAV,01ARZ3NDEKTSV4RRFFQ69G5FAW|1,2||\
dead|2|1|01ARZ3NDEKTSV4RRFFQ69G5FAW|3|5|x|y|z\
succeeded||1|01ARZ3NDEKTSV4RRFFQ69G5FAX|2||\
enqueued|1|2|01ARZ3NDEKTSV4RRFFQ69G5FAY,01ARZ3NDEKTSV4RRFFQ69G5FAZ|*0||";
        let got = unpack(packed, names).unwrap();
        assert_eq!(got.len(), 6);
        let seen: Vec<_> =
            got.iter().map(|r| (r.kind.unwrap(), r.name.as_str(), r.attempt, r.detail.as_deref())).collect();
        assert_eq!(
            seen,
            vec![
                ("started", "send", 1, None),
                ("started", "send", 2, None),
                ("dead", "a|b:c", 3, Some("x|y|z")),
                ("succeeded", "", 2, None),
                ("enqueued", "send", 0, None),
                ("enqueued", "send", 0, None)
            ]
        );
        assert_eq!(got[1].ulid, Some(&b"01ARZ3NDEKTSV4RRFFQ69G5FAW"[..]));
        assert_eq!(got[3].ulid, Some(&b"01ARZ3NDEKTSV4RRFFQ69G5FAX"[..]));
        assert_eq!(got[5].ulid, Some(&b"01ARZ3NDEKTSV4RRFFQ69G5FAZ"[..]));
    }

    #[test]
    fn a_damaged_entry_is_an_error_not_a_panic() {
        for bad in [&b"started|1|X"[..], b"dead||1|X|1|9|short", b"dead|7|1|X|1||", b"ok||2|X|1||", b"ok||2|X,Y|1||"] {
            assert!(unpack(bad, b"").is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(unpack_names(b"9:abc").is_err());
    }
}
