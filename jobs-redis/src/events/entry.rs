//! One entry of a queue's `events` stream, decoded: the events of one
//! script call (see "Job events" in `common.lua`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jobs_core::{EventKind, JobEvent, JobId};

use super::Position;
use crate::decode::ulid_of;
use crate::error::RedisQueueError;
use crate::scripts::progress::event_detail;

const OP: &str = "read_events";

/// One stream entry as XRANGE returns it: its id and its fields.
pub(crate) type Entry = (String, Vec<(String, Vec<u8>)>);

/// The events of `entry`, of the queue `queue` (shared by their ids), from
/// the `skip`th on (each with its cursor), appended to `out` until it holds
/// `max`. An event whose kind this version does not know (written by a
/// newer one) is skipped; one the entry names no job name for has an empty
/// one.
pub(crate) fn decode_entry(
    queue: &Arc<str>,
    entry: &Entry,
    skip: usize,
    max: usize,
    out: &mut Vec<JobEvent>,
) -> Result<(), RedisQueueError> {
    let (id, fields) = entry;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice());
    let ms: u64 = id.split('-').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let names = field("n").unwrap_or_default();
    let raw = match (field("h"), field("e")) {
        (Some(runs), _) => {
            let ulids = split_ulids(field("i").unwrap_or_default());
            unpack(runs, names, Some(&ulids))
        }
        (None, Some(packed)) => unpack(packed, names, None),
        (None, None) => Ok(vec![single(&field)]),
    }
    .map_err(|what| RedisQueueError::reply(OP, format!("event entry {id}: {what}")))?;
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
            job: JobId::from_shared_parts(queue, ulid_of(OP, ulid)?),
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

/// The ulids of an `i` field (or of a run of the `e` layout), in order.
/// Ulids are all as long, so they
/// are cut at their places rather than searched for (a reader does this for
/// every event); a field of another shape is split at its commas.
fn split_ulids(field: &[u8]) -> Vec<&[u8]> {
    const STRIDE: usize = ulid::ULID_LEN + 1;
    let fixed = (field.len() + 1).is_multiple_of(STRIDE)
        && field.iter().skip(ulid::ULID_LEN).step_by(STRIDE).all(|&b| b == b',');
    if fixed {
        field.chunks(STRIDE).map(|c| &c[..ulid::ULID_LEN]).collect()
    } else {
        field.split(|&b| b == b',').collect()
    }
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

/// The events of an entry's runs, their names from its `n` field (see
/// "Job events" in `common.lua`): runs of events of one kind, name and
/// detail, each with its ulids (the `e` layout) or taking them in turn from
/// `ulids`, the entry's `i` field (the `h` layout).
fn unpack<'a>(packed: &'a [u8], names: &'a [u8], ulids: Option<&[&'a [u8]]>) -> Result<Vec<Raw<'a>>, &'static str> {
    let names = unpack_names(names)?;
    let mut out = Vec::new();
    let mut rest = packed;
    let mut taken = 0;
    while !rest.is_empty() {
        let mut head = [&[][..]; 6];
        let parts = if ulids.is_some() { 5 } else { 6 };
        for part in &mut head[..parts] {
            let bar = rest.iter().position(|&b| b == b'|').ok_or("a run is cut short")?;
            *part = &rest[..bar];
            rest = &rest[bar + 1..];
        }
        let [kind, name_no, count, inline, attempts, detail_len] = match ulids {
            Some(_) => [head[0], head[1], head[2], &[][..], head[3], head[4]],
            None => head,
        };
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
        let split: Vec<&[u8]>;
        let run_ulids: &[&[u8]] = match ulids {
            Some(all) => {
                let these = all.get(taken..taken + count).ok_or("an entry holds fewer ulids than its runs")?;
                taken += count;
                these
            }
            None => {
                split = split_ulids(inline);
                &split
            }
        };
        let kind = std::str::from_utf8(kind).ok();
        let attempt_of = |a: &[u8]| number(a).and_then(|a| u32::try_from(a).ok()).unwrap_or(0);
        // `*<attempt>`: every event of the run has that attempt.
        let shared = attempts.strip_prefix(b"*").map(attempt_of);
        let mut each = attempts.split(|&b| b == b',');
        if run_ulids.len() != count {
            return Err("a run holds another number of events than it says");
        }
        for &ulid in run_ulids {
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
    }
    if ulids.is_some_and(|all| all.len() != taken) {
        return Err("an entry holds more ulids than its runs");
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
        let got = unpack(packed, names, None).unwrap();
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
            assert!(unpack(bad, b"", None).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let one: &[&[u8]] = &[b"X"];
        for bad in [&b"ok||2|1||"[..], b"ok||1|1||ok||1|1||", b"ok||1|1"] {
            assert!(unpack(bad, b"", Some(one)).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(unpack(b"", b"", Some(one)).is_err(), "a ulid no run claims");
        assert!(unpack_names(b"9:abc").is_err());
    }

    #[test]
    fn ulids_are_cut_at_their_places_or_split_at_commas() {
        let joined = U.join(",");
        assert_eq!(split_ulids(joined.as_bytes()), U.iter().map(|u| u.as_bytes()).collect::<Vec<_>>());
        assert_eq!(split_ulids(U[0].as_bytes()), vec![U[0].as_bytes()]);
        // Not of the fixed shape: split where the commas are.
        assert_eq!(split_ulids(b"X,YZ"), vec![&b"X"[..], b"YZ"]);
        assert_eq!(split_ulids(b""), vec![&b""[..]]);
    }

    const U: [&str; 3] = ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAW", "01ARZ3NDEKTSV4RRFFQ69G5FAX"];

    fn entry(fields: &[(&str, &str)]) -> Entry {
        ("5-0".to_owned(), fields.iter().map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())).collect())
    }

    /// The layout scripts write: runs in `h`, the ulids of all of them in
    /// `i`.
    #[test]
    fn an_entry_takes_its_ulids_in_turn_from_one_field() {
        let ulids = U.join(",");
        let mixed = entry(&[("c", "3"), ("h", "started|1|2|*1||succeeded||1|2||"), ("i", &ulids), ("n", "4:send")]);
        let pair = format!("{},{}", U[0], U[1]);
        let plain = entry(&[("c", "2"), ("h", "enqueued||2|*0||"), ("i", &pair)]);
        let mut out = Vec::new();
        let q: Arc<str> = Arc::from("q");
        decode_entry(&q, &mixed, 0, 10, &mut out).unwrap();
        decode_entry(&q, &plain, 0, 10, &mut out).unwrap();
        let seen: Vec<_> = out.iter().map(|e| (e.kind, e.job.ulid().to_string(), e.name.as_str(), e.attempt)).collect();
        let ev = |k, u: &str, n, a| (k, u.to_owned(), n, a);
        assert_eq!(
            seen,
            vec![
                ev(EventKind::Started, U[0], "send", 1),
                ev(EventKind::Started, U[1], "send", 1),
                ev(EventKind::Succeeded, U[2], "", 2),
                ev(EventKind::Enqueued, U[0], "", 0),
                ev(EventKind::Enqueued, U[1], "", 0),
            ]
        );
        // A cursor inside the entry, then the entry itself after its last.
        assert_eq!(out[1].cursor.to_string(), "5-0.2");
        assert_eq!(out[2].cursor.to_string(), "5-0");
    }
}
