//! Between Rust values and what the scripts store: times in milliseconds,
//! due times as the scripts take them, job records and states (see
//! `scripts/common.lua`) as [`JobInfo`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs_core::backend::ATTEMPT_LOG_MAX;
use jobs_core::{AttemptInfo, JobId, JobInfo, JobStatus, NewJob, Priority, When};
use serde::Deserialize;

use crate::error::RedisQueueError;
use crate::keys::QueueKeys;
use crate::PayloadFormat;

/// Milliseconds since the epoch, rounded down.
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the epoch, rounded up: a due time is never early.
pub(crate) fn to_ms_ceil(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ms = to_ms(t);
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms.saturating_add(1)
    }
}

/// Whole milliseconds of a duration (at least 1 when it is not zero, so a
/// short lease or window never becomes "none").
pub(crate) fn dur_ms(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 && !d.is_zero() {
        1
    } else {
        ms
    }
}

pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A due time as the scripts take it (`due_at` in common.lua): `+<ms>` for a
/// time relative to the server's clock (rounded up: never early), `<ms>`
/// for an absolute time the caller chose. Clamped to the limits of
/// [`jobs_core::backend::check_times`] (a backoff is not checked by it), so that the
/// scripts' numbers stay exact.
pub(crate) fn due_arg(w: When) -> String {
    match w {
        When::In(d) => {
            let d = d.min(jobs_core::backend::MAX_JOB_DURATION);
            let ms = dur_ms(d);
            let ms = if Duration::from_millis(ms) < d { ms.saturating_add(1) } else { ms };
            format!("+{ms}")
        }
        When::At(t) => to_ms_ceil(t).min(jobs_core::backend::MAX_SCHEDULED_AT_SECS * 1000).to_string(),
    }
}

/// The id of job `ulid` (as stored) of `queue`.
pub(crate) fn job_id(op: &'static str, keys: &QueueKeys, ulid: &[u8]) -> Result<JobId, RedisQueueError> {
    Ok(keys.job_id(ulid_of(op, ulid)?))
}

/// A job's ulid as stored.
pub(crate) fn ulid_of(op: &'static str, ulid: &[u8]) -> Result<ulid::Ulid, RedisQueueError> {
    ulid::Ulid::from_string(text(ulid)).map_err(|_| RedisQueueError::reply(op, "a job id is malformed"))
}

/// Stored headers (a JSON object; absent or unreadable: none).
pub(crate) fn headers(raw: &[u8]) -> jobs_core::Headers {
    if raw.is_empty() {
        return jobs_core::Headers::new();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}

/// The priority of a storage rank (0 = critical).
pub(crate) fn priority_of(rank: &[u8]) -> Option<Priority> {
    let r: usize = std::str::from_utf8(rank).ok()?.parse().ok()?;
    Priority::ALL.get(r).copied()
}

pub(crate) fn status_of(s: &str) -> Option<JobStatus> {
    Some(match s {
        "pending" => JobStatus::Pending,
        "scheduled" => JobStatus::Scheduled,
        "running" => JobStatus::Running,
        "retrying" => JobStatus::Retrying,
        "succeeded" => JobStatus::Succeeded,
        "dead" => JobStatus::Dead,
        "cancelled" => JobStatus::Cancelled,
        "expired" => JobStatus::Expired,
        _ => return None,
    })
}

pub(crate) fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// An optional number field: empty means none.
pub(crate) fn opt_u64(op: &'static str, b: &[u8]) -> Result<Option<u64>, RedisQueueError> {
    if b.is_empty() {
        return Ok(None);
    }
    text(b).parse().map(Some).map_err(|_| RedisQueueError::reply(op, format!("`{}` is not a number", text(b))))
}

pub(crate) fn num(op: &'static str, b: &[u8]) -> Result<u64, RedisQueueError> {
    opt_u64(op, b)?.ok_or_else(|| RedisQueueError::reply(op, "a number is missing"))
}

/// One entry of a job's `log` field.
#[derive(Deserialize)]
struct LogEntry {
    attempt: u32,
    started_ms: u64,
    finished_ms: Option<u64>,
    error: Option<String>,
    /// Set on a snooze: how long it asked to wait.
    #[serde(default)]
    snoozed_ms: Option<u64>,
}

/// Appends `n` in decimal.
fn push_num(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// A job's record: the `jobs` hash field written once at enqueue,
/// `<rank>|<max_retries>|<timeout_ms>|<enqueued_delta_ms>|<name_len>|<headers_len>|`
/// then the name, the headers (JSON) and the payload (see `common.lua`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) priority: Priority,
    pub(crate) max_retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    /// `enqueued_at` minus the ulid's own time, in ms.
    enqueued_delta: i64,
    name_at: usize,
    headers_at: usize,
    /// Where the payload starts (it runs to the end).
    pub(crate) payload_at: usize,
}

impl Record {
    /// Writes the record of `j` into `buf` (cleared first). The payload goes
    /// last, as given: its format is read back from its first byte
    /// ([`PayloadFormat::of`]).
    pub(crate) fn write(buf: &mut Vec<u8>, j: &NewJob) {
        buf.clear();
        let headers =
            if j.headers.is_empty() { Vec::new() } else { serde_json::to_vec(&j.headers).unwrap_or_default() };
        buf.push(b'0' + j.priority.rank() as u8);
        buf.push(b'|');
        if let Some(n) = j.max_retries {
            push_num(buf, u64::from(n));
        }
        buf.push(b'|');
        if let Some(t) = j.timeout {
            push_num(buf, dur_ms(t));
        }
        buf.push(b'|');
        let delta = i128::from(to_ms(j.enqueued_at)) - i128::from(j.id.ulid().timestamp_ms());
        if delta != 0 {
            if delta < 0 {
                buf.push(b'-');
            }
            push_num(buf, u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX));
        }
        buf.push(b'|');
        push_num(buf, j.name.len() as u64);
        buf.push(b'|');
        push_num(buf, headers.len() as u64);
        buf.push(b'|');
        buf.extend_from_slice(j.name.as_bytes());
        buf.extend_from_slice(&headers);
        buf.extend_from_slice(&j.payload);
    }

    /// Reads a record's head; `None` when it is not one.
    pub(crate) fn parse(rec: &[u8]) -> Option<Record> {
        let mut fields = [&b""[..]; 6];
        let mut at = 0;
        for f in &mut fields {
            let end = at + rec.get(at..)?.iter().position(|&b| b == b'|')?;
            *f = &rec[at..end];
            at = end + 1;
        }
        let number = |b: &[u8]| -> Option<Option<u64>> {
            if b.is_empty() {
                Some(None)
            } else {
                std::str::from_utf8(b).ok()?.parse().ok().map(Some)
            }
        };
        let name_len = usize::try_from(number(fields[4])??).ok()?;
        let headers_len = usize::try_from(number(fields[5])??).ok()?;
        let enqueued_delta =
            if fields[3].is_empty() { 0 } else { std::str::from_utf8(fields[3]).ok()?.parse().ok()? };
        let r = Record {
            priority: priority_of(fields[0])?,
            max_retries: number(fields[1])?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            timeout: number(fields[2])?.map(Duration::from_millis),
            enqueued_delta,
            name_at: at,
            headers_at: at + name_len,
            payload_at: at + name_len + headers_len,
        };
        (r.payload_at <= rec.len()).then_some(r)
    }

    /// The job name's bytes in `rec`.
    pub(crate) fn name<'a>(&self, rec: &'a [u8]) -> &'a [u8] {
        &rec[self.name_at..self.headers_at]
    }

    /// The headers' JSON in `rec` (empty: none).
    pub(crate) fn headers<'a>(&self, rec: &'a [u8]) -> &'a [u8] {
        &rec[self.headers_at..self.payload_at]
    }

    /// When the job was enqueued (the ulid's time plus the stored delta).
    pub(crate) fn enqueued_at(&self, id: &JobId) -> SystemTime {
        let ms = i128::from(id.ulid().timestamp_ms()) + i128::from(self.enqueued_delta);
        from_ms(u64::try_from(ms).unwrap_or(0))
    }
}

/// A job's `state` field (see `common.lua`); absent: pending, never started.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    pub(crate) status: JobStatus,
    /// The priority, from its rank.
    rank: Option<Priority>,
    pub(crate) attempts: u32,
    /// started_ms (running, succeeded) or run_at_ms (scheduled, retrying).
    t1: Option<u64>,
    /// finished_ms (succeeded, dead, cancelled).
    t2: Option<u64>,
}

impl State {
    pub(crate) fn parse(op: &'static str, s: &[u8]) -> Result<State, RedisQueueError> {
        let bad = || RedisQueueError::reply(op, format!("bad job state `{}`", text(s)));
        let f: Vec<&[u8]> = s.split(|&b| b == b'|').collect();
        if f.len() != 8 {
            return Err(bad());
        }
        Ok(State {
            status: status_of(text(f[0])).ok_or_else(bad)?,
            rank: priority_of(f[1]),
            attempts: u32::try_from(opt_u64(op, f[2])?.unwrap_or(0)).unwrap_or(u32::MAX),
            t1: opt_u64(op, f[4])?,
            t2: opt_u64(op, f[5])?,
        })
    }
}

/// What `read.lua` returns of one job, as a [`JobInfo`]: its record, state,
/// log and result fields.
pub(crate) fn job_info(
    id: &JobId,
    rec: &[u8],
    state: Option<&[u8]>,
    log: Option<&[u8]>,
    result: Option<&[u8]>,
) -> Result<JobInfo, RedisQueueError> {
    const OP: &str = "job";
    let st = match state {
        Some(s) => State::parse(OP, s)?,
        None => State { status: JobStatus::Pending, rank: None, attempts: 0, t1: None, t2: None },
    };
    // A record that does not parse (written by something else) is shown as
    // it is: its bytes as the payload, no name; such a job is dead-lettered
    // by the first fetch that takes it.
    let r = Record::parse(rec).unwrap_or(Record {
        priority: st.rank.unwrap_or(Priority::Normal),
        max_retries: None,
        timeout: None,
        enqueued_delta: 0,
        name_at: 0,
        headers_at: 0,
        payload_at: 0,
    });
    let log = log.unwrap_or_default();
    // The count of entries left out (`log_attempt` in common.lua), when any.
    let digits = log.iter().take_while(|b| b.is_ascii_digit()).count();
    let (mut omitted, log) = match log.get(digits) {
        Some(b'|') if digits > 0 => {
            (u32::try_from(opt_u64(OP, &log[..digits])?.unwrap_or(0)).unwrap_or(u32::MAX), &log[digits + 1..])
        }
        _ => (0, log),
    };
    // An empty Lua table encodes as `{}`; the scripts write `[..]`, but accept both.
    let entries: Vec<LogEntry> = if log.is_empty() || log == b"{}" {
        Vec::new()
    } else {
        serde_json::from_slice(log)
            .map_err(|e| RedisQueueError::reply(OP, format!("job {id} has a bad attempt log: {e}")))?
    };
    let mut attempt_log: Vec<AttemptInfo> = entries
        .into_iter()
        .map(|e| AttemptInfo {
            attempt: e.attempt,
            started_at: from_ms(e.started_ms),
            finished_at: e.finished_ms.map(from_ms),
            error: e.error,
            snoozed_for: e.snoozed_ms.map(Duration::from_millis),
        })
        .collect();
    // The running attempt, and a successful last one, are the state's own.
    match (st.status, st.t1) {
        (JobStatus::Running, Some(started)) => attempt_log.push(AttemptInfo {
            attempt: st.attempts,
            started_at: from_ms(started),
            finished_at: None,
            error: None,
            snoozed_for: None,
        }),
        (JobStatus::Succeeded, Some(started)) => attempt_log.push(AttemptInfo {
            attempt: st.attempts,
            started_at: from_ms(started),
            finished_at: st.t2.map(from_ms),
            error: None,
            snoozed_for: None,
        }),
        _ => {}
    }
    // The stored log is bounded without the state's own attempt, which can
    // take it one past the bound: the oldest but the first then makes room.
    if attempt_log.len() == ATTEMPT_LOG_MAX + 1 && ATTEMPT_LOG_MAX >= 2 {
        attempt_log.remove(1);
        omitted = omitted.saturating_add(1);
    }
    let run_at = st.t1.filter(|_| matches!(st.status, JobStatus::Scheduled | JobStatus::Retrying));
    let finished_at = st.t2.filter(|_| st.status.is_finished());
    Ok(JobInfo {
        id: id.clone(),
        name: String::from_utf8_lossy(r.name(rec)).into_owned(),
        queue: id.queue().to_owned(),
        priority: r.priority,
        status: st.status,
        payload: {
            let payload = &rec[r.payload_at..];
            PayloadFormat::of(payload).to_json(payload)
        },
        attempts: st.attempts,
        max_retries: r.max_retries,
        attempt_log,
        attempts_omitted: omitted,
        enqueued_at: r.enqueued_at(id),
        run_at: run_at.map(from_ms),
        finished_at: finished_at.map(from_ms),
        result: result.filter(|r| !r.is_empty()).and_then(|r| serde_json::from_slice(r).ok()),
        headers: headers(r.headers(rec)),
        // Read beside the record (`snooze`, `expires`, `progress`), by the caller.
        snoozes: 0,
        expires_at: None,
        progress: None,
        caller_id: None,
        key: None,
        group: None,
        handler_started: false,
    })
}

/// A rate as the scripts store it: `<starts>,<window ms>`.
pub(crate) fn rate_arg(r: &jobs_core::Rate) -> String {
    format!("{},{}", r.limit, r.per_ms())
}

/// A breaker as the scripts store it: `<failures>,<within ms>,<cooldown ms>`.
pub(crate) fn breaker_arg(b: &jobs_core::Breaker) -> String {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    format!("{},{},{}", b.failures, ms(b.within), ms(b.cooldown))
}

/// A breaker stored by [`breaker_arg`]; `None` when it does not parse.
pub(crate) fn breaker_field(s: &str) -> Option<jobs_core::Breaker> {
    let mut parts = s.split(',').map(|p| p.parse::<u64>().ok());
    let (n, within, cooldown) = (parts.next()??, parts.next()??, parts.next()??);
    Some(jobs_core::Breaker {
        failures: u32::try_from(n).ok()?,
        within: Duration::from_millis(within),
        cooldown: Duration::from_millis(cooldown),
    })
}

/// A group's breaker as `gbrk` stores it (`open|<until ms>`,
/// `probe|<job id>|<lease ms>`, see groups.lua); `None` when it does not
/// parse.
pub(crate) fn group_breaker_field(keys: &QueueKeys, s: &str) -> Option<jobs_core::BreakerState> {
    if let Some(until) = s.strip_prefix("open|") {
        return Some(jobs_core::BreakerState::Open { until: from_ms(until.parse().ok()?) });
    }
    let (job, until) = s.strip_prefix("probe|")?.rsplit_once('|')?;
    let job = job_id("breaker", keys, job.as_bytes()).ok()?;
    Some(jobs_core::BreakerState::Probing { job, until: from_ms(until.parse().ok()?) })
}

/// A rate stored by [`rate_arg`]; `None` when it does not parse.
pub(crate) fn rate_field(s: &str) -> Option<jobs_core::Rate> {
    let (n, ms) = s.split_once(',')?;
    Some(jobs_core::Rate { limit: n.parse().ok()?, per: Duration::from_millis(ms.parse().ok()?) })
}

/// The key of a stored key field `<name length>:<name><key>` (see
/// enqueue.lua).
pub(crate) fn key_of_field(field: &[u8]) -> Option<String> {
    let colon = field.iter().position(|&b| b == b':')?;
    let name_len: usize = text(&field[..colon]).parse().ok()?;
    field.get(colon + 1 + name_len..).map(|k| String::from_utf8_lossy(k).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn due_times_round_up() {
        let t = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!((to_ms(t), to_ms_ceil(t)), (1, 2));
        let t = UNIX_EPOCH + Duration::from_millis(7);
        assert_eq!((to_ms(t), to_ms_ceil(t)), (7, 7));
        assert_eq!(dur_ms(Duration::from_micros(10)), 1);
        assert_eq!(dur_ms(Duration::ZERO), 0);
    }

    fn new_job(headers: bool) -> NewJob {
        let mut j = NewJob {
            priority: Priority::High,
            max_retries: Some(4),
            timeout: Some(Duration::from_millis(1500)),
            ..NewJob::new(JobId::new("q"), "send|mail", br#"{"a":1}"#.to_vec())
        };
        if headers {
            j.headers.insert("traceparent".into(), "00-ab".into());
        }
        j
    }

    #[test]
    fn a_record_round_trips() {
        for h in [false, true] {
            let j = new_job(h);
            let mut buf = Vec::new();
            Record::write(&mut buf, &j);
            let r = Record::parse(&buf).unwrap();
            assert_eq!(r.priority, Priority::High);
            assert_eq!((r.max_retries, r.timeout), (Some(4), Some(Duration::from_millis(1500))));
            assert_eq!(r.name(&buf), b"send|mail");
            assert_eq!(headers(r.headers(&buf)), j.headers);
            assert_eq!(&buf[r.payload_at..], br#"{"a":1}"#);
            assert_eq!(to_ms(r.enqueued_at(&j.id)), to_ms(j.enqueued_at));
        }
        let mut j = new_job(false);
        j.enqueued_at = j.id.created_at() - Duration::from_secs(2);
        let mut buf = Vec::new();
        Record::write(&mut buf, &j);
        assert_eq!(Record::parse(&buf).unwrap().enqueued_at(&j.id), from_ms(to_ms(j.enqueued_at)));
        assert!(Record::parse(b"2|||").is_none());
        assert!(Record::parse(b"2||||9|0|short").is_none());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn a_messagepack_payload_reads_back_as_json() {
        let mut j = new_job(false);
        (j.format, j.payload) = PayloadFormat::MessagePack.encode(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(j.format, PayloadFormat::MessagePack);
        let mut rec = Vec::new();
        Record::write(&mut rec, &j);
        let r = Record::parse(&rec).unwrap();
        assert_eq!(&rec[r.payload_at..], &j.payload[..], "stored as given");
        let info = job_info(&j.id, &rec, None, None, None).unwrap();
        assert_eq!(info.payload, serde_json::json!({"a": 1}));
    }

    #[test]
    fn a_running_job_decodes() {
        let j = new_job(false);
        let mut rec = Vec::new();
        Record::write(&mut rec, &j);
        let log = br#"[{"attempt":1,"started_ms":5,"finished_ms":6,"error":"boom"}]"#;
        let info = job_info(&j.id, &rec, Some(b"running|1|2|77|9|||"), Some(log), None).unwrap();
        assert_eq!(info.priority, Priority::High);
        assert_eq!(info.status, JobStatus::Running);
        assert_eq!(info.payload["a"], 1);
        assert_eq!(info.attempt_log.len(), 2);
        assert_eq!(info.attempt_log[1].attempt, 2);
        assert_eq!(info.attempt_log[1].started_at, from_ms(9));
        assert_eq!(info.last_error(), Some("boom"));
        assert_eq!(info.max_retries, Some(4));
        assert_eq!(info.result, None);
    }

    #[test]
    fn pending_and_finished_jobs_decode() {
        let j = new_job(false);
        let mut rec = Vec::new();
        Record::write(&mut rec, &j);
        let info = job_info(&j.id, &rec, None, None, None).unwrap();
        assert_eq!((info.status, info.attempts), (JobStatus::Pending, 0));
        assert!(info.attempt_log.is_empty());
        assert_eq!((info.run_at, info.finished_at), (None, None));
        let info = job_info(&j.id, &rec, Some(b"succeeded|1|1|3|9|12||"), None, Some(b"42")).unwrap();
        assert_eq!(info.status, JobStatus::Succeeded);
        assert_eq!(info.attempt_log.len(), 1);
        assert_eq!(info.finished_at, Some(from_ms(12)));
        assert_eq!(info.attempt_log[0].finished_at, Some(from_ms(12)));
        assert_eq!(info.result, Some(serde_json::json!(42)));
        let info = job_info(&j.id, &rec, Some(b"retrying|1|1|3|99|||"), None, None).unwrap();
        assert_eq!((info.run_at, info.finished_at), (Some(from_ms(99)), None));
        assert!(job_info(&j.id, &rec, Some(b"nonsense"), None, None).is_err());
        let info = job_info(&j.id, b"\xff garbage", Some(b"dead|0|1|3|9|12||"), None, None).unwrap();
        assert_eq!((info.status, info.priority, info.name.as_str()), (JobStatus::Dead, Priority::Critical, ""));
    }
}
