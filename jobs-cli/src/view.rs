//! How jobs, times and durations are shown: the JSON shapes of `--json`
//! (times as RFC 3339 strings, UTC, milliseconds) and the text for people.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use jobs_core::{JobInfo, JobStatus, Priority};
use serde::Serialize;
use serde_json::Value;

/// The longest job error `job` and `dead show` print per attempt, in
/// characters (errors are stored whole: a handler's error can be as large
/// as the data it failed on).
pub(crate) const MAX_TEXT_ERROR: usize = 2_000;

/// The longest payload or result they print, in characters of JSON.
pub(crate) const MAX_TEXT_JSON: usize = 4_000;

/// The longest error text and payload or result JSON of `--json` output;
/// past it, the first part is given as a string and `payload_truncated`
/// (`result_truncated`) is true.
pub(crate) const MAX_JSON_TEXT: usize = 64 * 1024;

/// Stored text made safe for a terminal and cut to `max` characters: line
/// breaks and tabs become spaces, other control characters (an escape
/// sequence could move the cursor, recolour or clear the screen) are shown
/// escaped, as `\u{1b}`.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            let _ = write!(out, "… (cut: {} bytes in all)", s.len());
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to `max` characters (no escaping: for JSON output).
fn cut_text(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}… (cut: {} bytes in all)", &s[..at], s.len()),
    }
}

/// A JSON value, or the first [`MAX_JSON_TEXT`] bytes of its text as a
/// string when larger; `true` when cut.
fn bounded_json(v: &Value) -> (Value, bool) {
    let text = v.to_string();
    if text.len() <= MAX_JSON_TEXT {
        (v.clone(), false)
    } else {
        (Value::String(cut_text(&text, MAX_JSON_TEXT)), true)
    }
}

/// A job as the views show it: the payload fields its job marks `#[redact]`
/// replaced with `"[redacted]"`. The views take only this, and redacting is
/// the only way to make one, so no output shows those fields' values.
#[derive(Debug)]
pub(crate) struct Shown(JobInfo);

impl Shown {
    /// `job`, redacted.
    pub(crate) fn new(job: JobInfo) -> Self {
        Shown(job.redacted())
    }
}

impl std::ops::Deref for Shown {
    type Target = JobInfo;

    fn deref(&self) -> &JobInfo {
        &self.0
    }
}

/// `2030-01-31T09:00:00Z`: a time for people.
pub(crate) fn time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2030-01-31T09:00:00.123Z`: a time in JSON.
pub(crate) fn json_time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `3m ago`, `in 5m`, `now`: a time relative to `now`.
pub(crate) fn ago(t: SystemTime, now: SystemTime) -> String {
    match now.duration_since(t) {
        Ok(d) if d < Duration::from_secs(1) => "now".into(),
        Ok(d) => format!("{} ago", short(d)),
        Err(e) if e.duration() < Duration::from_secs(1) => "now".into(),
        Err(e) => format!("in {}", short(e.duration())),
    }
}

/// `45s`, `3m`, `2h`, `5d`: the largest whole unit.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// One attempt, as `--json` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AttemptView {
    attempt: u32,
    started_at: String,
    finished_at: Option<String>,
    error: Option<String>,
    /// Set when the run snoozed: how long it asked to wait (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    snoozed_ms: Option<u128>,
}

/// A job's last reported progress, as `--json` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ProgressView {
    fraction: f32,
    note: String,
    at: String,
    attempt: u32,
}

/// A job, as `--json` shows it (`job`, `dead show`, `dead list`).
#[derive(Debug, Serialize)]
pub(crate) struct JobView<'a> {
    id: String,
    name: &'a str,
    queue: &'a str,
    priority: Priority,
    status: JobStatus,
    attempts: u32,
    max_retries: Option<u32>,
    snoozes: u32,
    expires_at: Option<String>,
    /// The last progress an attempt reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<ProgressView>,
    /// For a running job: whether its handler is known to have started
    /// (`JobInfo::handler_started`).
    #[serde(skip_serializing_if = "Option::is_none")]
    handler_started: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    enqueued_at: String,
    run_at: Option<String>,
    finished_at: Option<String>,
    last_error: Option<String>,
    attempt_log: Vec<AttemptView>,
    payload: Value,
    payload_truncated: bool,
    result: Option<Value>,
    result_truncated: bool,
    headers: &'a jobs_core::Headers,
}

impl<'a> JobView<'a> {
    /// The view of `job`.
    pub(crate) fn of(job: &'a Shown) -> Self {
        let (payload, payload_truncated) = bounded_json(&job.payload);
        let (result, result_truncated) = match job.result.as_ref().map(bounded_json) {
            Some((r, cut)) => (Some(r), cut),
            None => (None, false),
        };
        JobView {
            id: job.id.to_string(),
            name: &job.name,
            queue: &job.queue,
            priority: job.priority,
            status: job.status,
            attempts: job.attempts,
            max_retries: job.max_retries,
            snoozes: job.snoozes,
            expires_at: job.expires_at.map(json_time),
            progress: job.progress.as_ref().map(|p| ProgressView {
                fraction: p.fraction,
                note: p.note.clone(),
                at: json_time(p.at),
                attempt: p.attempt,
            }),
            handler_started: (job.status == JobStatus::Running).then_some(job.handler_started),
            caller_id: job.caller_id.as_deref(),
            key: job.key.as_deref(),
            enqueued_at: json_time(job.enqueued_at),
            run_at: job.run_at.map(json_time),
            finished_at: job.finished_at.map(json_time),
            last_error: job.last_error().map(|e| cut_text(e, MAX_JSON_TEXT)),
            attempt_log: job
                .attempt_log
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    started_at: json_time(a.started_at),
                    finished_at: a.finished_at.map(json_time),
                    error: a.error.as_deref().map(|e| cut_text(e, MAX_JSON_TEXT)),
                    snoozed_ms: a.snoozed_for.map(|d| d.as_millis()),
                })
                .collect(),
            payload,
            payload_truncated,
            result,
            result_truncated,
            headers: &job.headers,
        }
    }
}

/// `42% frame 10 of 24 (attempt 1, 3s ago)`: a job's last progress, for
/// people (the note made printable: it is the job's own text).
pub(crate) fn progress_text(p: &jobs_core::Progress, now: SystemTime) -> String {
    let mut s = format!("{:.0}%", p.fraction * 100.0);
    if !p.note.is_empty() {
        s.push(' ');
        s.push_str(&printable(&p.note, MAX_TEXT_ERROR));
    }
    let _ = write!(s, " (attempt {}, {})", p.attempt, ago(p.at, now));
    s
}

/// Everything about a job, for people: one `label  value` line per field,
/// then one line per attempt with its full error.
pub(crate) fn job_text(job: &Shown, now: SystemTime) -> String {
    let mut s = String::new();
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(s, "{label:<10}{value}");
    };
    field("id", &job.id.to_string());
    field("job", &printable(&job.name, 200));
    field("queue", &job.queue);
    field("priority", job.priority.as_str());
    field("status", job.status.as_str());
    let attempts = match job.max_retries {
        Some(r) => format!("{} of {}", job.attempts, u64::from(r) + 1),
        None => format!("{} (retries: the pool's default)", job.attempts),
    };
    field("attempts", &attempts);
    if job.status == JobStatus::Running {
        let handler = if job.handler_started {
            "started"
        } else {
            "not reported started (waiting for a worker, or just started)"
        };
        field("handler", handler);
    }
    if let Some(c) = &job.caller_id {
        field("caller id", &printable(c, 300));
    }
    if let Some(k) = &job.key {
        field("key", &printable(k, 300));
    }
    if job.snoozes > 0 {
        field("snoozes", &job.snoozes.to_string());
    }
    // Past the first counted attempt the expiry no longer applies.
    if let Some(t) = job.expires_at.filter(|_| job.attempts == 0 || job.status == jobs_core::JobStatus::Expired) {
        field("expires", &format!("{} ({})", time(t), ago(t, now)));
    }
    if let Some(p) = &job.progress {
        field("progress", &progress_text(p, now));
    }
    field("enqueued", &format!("{} ({})", time(job.enqueued_at), ago(job.enqueued_at, now)));
    if let Some(t) = job.run_at.filter(|_| !job.status.is_finished()) {
        field("due", &format!("{} ({})", time(t), ago(t, now)));
    }
    if let Some(t) = job.finished_at {
        field("finished", &format!("{} ({})", time(t), ago(t, now)));
    }
    field("payload", &json_block(&job.payload));
    if let Some(r) = &job.result {
        field("result", &json_block(r));
    }
    if !job.headers.is_empty() {
        let headers: Vec<String> = job.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field("headers", &printable(&headers.join(", "), MAX_TEXT_ERROR));
    }
    if !job.attempt_log.is_empty() {
        s.push_str("\nattempts:\n");
    }
    let mut previous = 0;
    for a in &job.attempt_log {
        if a.attempt <= previous {
            s.push_str("  -- retried from the dead-letter set, attempts reset --\n");
        }
        previous = a.attempt;
        let took = a.finished_at.and_then(|f| f.duration_since(a.started_at).ok()).map(short);
        let outcome = match (&a.error, a.finished_at) {
            (e, _) if a.snoozed_for.is_some() => format!(
                "snoozed {}: {}",
                a.snoozed_for.map(short).unwrap_or_default(),
                printable(e.as_deref().unwrap_or_default(), MAX_TEXT_ERROR)
            ),
            (Some(e), _) => format!("failed: {}", printable(e, MAX_TEXT_ERROR)),
            (None, Some(_)) => "ok".to_owned(),
            (None, None) => "running".to_owned(),
        };
        let _ = writeln!(
            s,
            "  #{:<3} {}  {:>6}  {}",
            a.attempt,
            time(a.started_at),
            took.as_deref().unwrap_or("-"),
            outcome
        );
    }
    s
}

/// Compact JSON when it fits the line, else pretty-printed and indented
/// under its label; cut past [`MAX_TEXT_JSON`] characters (`--json` shows
/// more). JSON escapes every control character inside its strings.
fn json_block(v: &Value) -> String {
    let compact = v.to_string();
    if compact.chars().count() <= 70 {
        return compact;
    }
    if compact.len() > MAX_TEXT_JSON * 4 {
        // Too large to print whole anyway: no pretty-printing of megabytes.
        return printable(&compact, MAX_TEXT_JSON);
    }
    let pretty = serde_json::to_string_pretty(v).unwrap_or(compact);
    let text = match pretty.char_indices().nth(MAX_TEXT_JSON) {
        None => pretty,
        Some((at, _)) => format!("{}… (cut: {} bytes in all; --json shows more)", &pretty[..at], pretty.len()),
    };
    text.lines().collect::<Vec<_>>().join(&format!("\n{:10}", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_escaped_and_cut() {
        assert_eq!(printable("db down\nfor maintenance", 100), "db down for maintenance");
        assert_eq!(printable("\u{1b}[2Jred", 100), "\\u{1b}[2Jred");
        let long = printable(&"e".repeat(10_000), 100);
        assert!(long.starts_with(&"e".repeat(100)) && long.ends_with("(cut: 10000 bytes in all)"), "{long}");
        let (v, cut) = bounded_json(&Value::String("x".repeat(MAX_JSON_TEXT + 10)));
        assert!(cut && v.as_str().is_some_and(|s| s.len() < MAX_JSON_TEXT + 100));
        let block = json_block(&serde_json::json!({ "blob": "y".repeat(50_000) }));
        assert!(block.chars().count() < MAX_TEXT_JSON + 100, "{} characters", block.chars().count());
    }

    #[test]
    fn relative_times_use_the_largest_unit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ago(now - Duration::from_secs(190), now), "3m ago");
        assert_eq!(ago(now + Duration::from_secs(7200), now), "in 2h");
        assert_eq!(ago(now, now), "now");
        assert_eq!(short(Duration::from_millis(12)), "12ms");
        assert_eq!(short(Duration::from_secs(3 * 86400)), "3d");
    }

    #[test]
    fn times_are_rfc3339_utc_even_before_the_epoch() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(time(t), "2023-11-14T22:13:20Z");
        assert_eq!(json_time(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(time(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), "1969-12-31T23:59:59Z");
    }
}
