//! Between Rust values and what the scripts store: times in milliseconds,
//! replies as arrays of strings, job hashes as [`JobInfo`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs_core::{AttemptInfo, JobId, JobInfo, JobStatus, Priority};
use redis::Value;
use serde::Deserialize;

use crate::error::RedisQueueError;

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
        _ => return None,
    })
}

/// A script's reply: a flat array of bulk strings (or integers).
pub(crate) fn strings(op: &'static str, v: Value) -> Result<Vec<Vec<u8>>, RedisQueueError> {
    let items = match v {
        Value::Array(items) | Value::Set(items) => items,
        other => return Err(RedisQueueError::reply(op, format!("expected an array, got {other:?}"))),
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::BulkString(b) => Ok(b),
            Value::SimpleString(s) => Ok(s.into_bytes()),
            Value::Int(i) => Ok(i.to_string().into_bytes()),
            Value::Nil => Ok(Vec::new()),
            other => Err(RedisQueueError::reply(op, format!("expected a string, got {other:?}"))),
        })
        .collect()
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
}

/// A payload or result as JSON; text that is not JSON is kept as a string.
pub(crate) fn json_or_string(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
}

/// A job's hash (`HGETALL`) as a [`JobInfo`].
pub(crate) fn job_info(id: &JobId, mut h: HashMap<String, Vec<u8>>) -> Result<JobInfo, RedisQueueError> {
    const OP: &str = "job";
    let mut field = |k: &str| h.remove(k).unwrap_or_default();
    let status = status_of(text(&field("status")))
        .ok_or_else(|| RedisQueueError::reply(OP, format!("job {id} has no valid status")))?;
    let priority = priority_of(&field("priority"))
        .ok_or_else(|| RedisQueueError::reply(OP, format!("job {id} has no valid priority")))?;
    let attempts = u32::try_from(num(OP, &field("attempts"))?).unwrap_or(u32::MAX);
    let log_text = field("log");
    // An empty Lua table encodes as `{}`; the scripts write `[]`, but accept both.
    let entries: Vec<LogEntry> = if log_text.is_empty() || log_text == b"{}" {
        Vec::new()
    } else {
        serde_json::from_slice(&log_text)
            .map_err(|e| RedisQueueError::reply(OP, format!("job {id} has a bad attempt log: {e}")))?
    };
    let mut attempt_log: Vec<AttemptInfo> = entries
        .into_iter()
        .map(|e| AttemptInfo {
            attempt: e.attempt,
            started_at: from_ms(e.started_ms),
            finished_at: e.finished_ms.map(from_ms),
            error: e.error,
        })
        .collect();
    // The running attempt is kept apart until it ends. Fields that only mean
    // something in some statuses may linger after it (the scripts save a
    // command per job by not deleting them): read them only in those.
    let started = opt_u64(OP, &field("started_ms"))?;
    if let (JobStatus::Running, Some(started)) = (status, started) {
        attempt_log.push(AttemptInfo {
            attempt: attempts,
            started_at: from_ms(started),
            finished_at: None,
            error: None,
        });
    }
    let run_at =
        opt_u64(OP, &field("run_at_ms"))?.filter(|_| matches!(status, JobStatus::Scheduled | JobStatus::Retrying));
    let finished_at = opt_u64(OP, &field("finished_ms"))?.filter(|_| status.is_finished());
    let result = field("result");
    Ok(JobInfo {
        id: id.clone(),
        name: String::from_utf8_lossy(&field("name")).into_owned(),
        queue: id.queue().to_owned(),
        priority,
        status,
        payload: json_or_string(&field("payload")),
        attempts,
        max_retries: opt_u64(OP, &field("max_retries"))?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        attempt_log,
        enqueued_at: from_ms(num(OP, &field("enqueued_ms"))?),
        run_at: run_at.map(from_ms),
        finished_at: finished_at.map(from_ms),
        result: if result.is_empty() { None } else { serde_json::from_slice(&result).ok() },
        headers: crate::hot::headers(&field("headers")),
    })
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

    #[test]
    fn a_job_hash_decodes() {
        let id = JobId::new("q");
        let h: HashMap<String, Vec<u8>> = [
            ("name", "n"),
            ("payload", r#"{"a":1}"#),
            ("priority", "1"),
            ("status", "running"),
            ("attempts", "2"),
            ("log", r#"[{"attempt":1,"started_ms":5,"finished_ms":6,"error":"boom"}]"#),
            ("started_ms", "9"),
            ("enqueued_ms", "3"),
            ("max_retries", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        let info = job_info(&id, h).unwrap();
        assert_eq!(info.priority, Priority::High);
        assert_eq!(info.status, JobStatus::Running);
        assert_eq!(info.payload["a"], 1);
        assert_eq!(info.attempt_log.len(), 2);
        assert_eq!(info.attempt_log[1].attempt, 2);
        assert_eq!(info.last_error(), Some("boom"));
        assert_eq!(info.max_retries, Some(4));
        assert_eq!(info.result, None);
    }

    #[test]
    fn fields_of_an_earlier_status_are_ignored() {
        let id = JobId::new("q");
        let h: HashMap<String, Vec<u8>> = [
            ("name", "n"),
            ("payload", "not json"),
            ("priority", "0"),
            ("status", "pending"),
            ("attempts", "0"),
            ("log", "[]"),
            ("started_ms", "9"),
            ("run_at_ms", "10"),
            ("finished_ms", "11"),
            ("enqueued_ms", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        let info = job_info(&id, h).unwrap();
        assert!(info.attempt_log.is_empty());
        assert_eq!((info.run_at, info.finished_at), (None, None));
        assert_eq!(info.payload, serde_json::json!("not json"));
    }
}
