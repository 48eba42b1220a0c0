//! A flow member's job as the flow store keeps it (`f:<id>:spec`).
//!
//! A step's job is written when its flow is created, read back when its
//! dependencies let it go, and handed to the relay, which enqueues it: the
//! flow store copies it several times per step, and keeps it for as long as
//! the step waits. So it is kept short: a JSON payload as text (the bytes
//! otherwise, as `NewJob` writes them), options left out when unset,
//! headers left out when there are none. A spec written as `NewJob`'s own
//! JSON (every field present, the payload as bytes) reads the same way.

use std::time::{Duration, SystemTime};

use jobs_core::backend::PayloadFormat;
use jobs_core::{JobId, NewJob, Priority};
use serde::{Deserialize, Serialize};

/// The stored form, written from a borrowed job.
#[derive(Serialize)]
struct Out<'a> {
    id: &'a JobId,
    name: &'a str,
    /// The payload when it is UTF-8 text (a JSON payload always is).
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    /// The payload's bytes when it is not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a [u8]>,
    format: PayloadFormat,
    priority: Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<jobs_core::When>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_for: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_id: Option<&'a jobs_core::CallerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a jobs_core::JobKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a jobs_core::JobGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<jobs_core::When>,
    enqueued_at: SystemTime,
    #[serde(skip_serializing_if = "jobs_core::Headers::is_empty")]
    headers: &'a jobs_core::Headers,
}

/// The stored form read back: either form above (a missing option is
/// `None`, as serde reads an absent `Option` field).
#[derive(Deserialize)]
struct In {
    id: JobId,
    name: String,
    text: Option<String>,
    payload: Option<Vec<u8>>,
    format: PayloadFormat,
    priority: Priority,
    max_retries: Option<u32>,
    timeout: Option<Duration>,
    run_at: Option<jobs_core::When>,
    unique_for: Option<Duration>,
    caller_id: Option<jobs_core::CallerId>,
    key: Option<jobs_core::JobKey>,
    group: Option<jobs_core::JobGroup>,
    expires: Option<jobs_core::When>,
    enqueued_at: SystemTime,
    #[serde(default)]
    headers: jobs_core::Headers,
}

/// `job` in its stored form.
pub(super) fn encode(job: &NewJob) -> serde_json::Result<Vec<u8>> {
    let text = std::str::from_utf8(&job.payload).ok();
    serde_json::to_vec(&Out {
        id: &job.id,
        name: &job.name,
        text,
        payload: if text.is_some() { None } else { Some(&job.payload) },
        format: job.format,
        priority: job.priority,
        max_retries: job.max_retries,
        timeout: job.timeout,
        run_at: job.run_at,
        unique_for: job.unique_for,
        caller_id: job.caller_id.as_ref(),
        key: job.key.as_ref(),
        group: job.group.as_ref(),
        expires: job.expires,
        enqueued_at: job.enqueued_at,
        headers: &job.headers,
    })
}

/// A stored job (either form) back as a `NewJob`.
pub(super) fn decode(raw: &[u8]) -> serde_json::Result<NewJob> {
    let s: In = serde_json::from_slice(raw)?;
    let payload = match (s.text, s.payload) {
        (Some(t), _) => t.into_bytes(),
        (None, Some(p)) => p,
        (None, None) => return Err(serde::de::Error::missing_field("text")),
    };
    Ok(NewJob {
        id: s.id,
        name: s.name,
        payload,
        format: s.format,
        priority: s.priority,
        max_retries: s.max_retries,
        timeout: s.timeout,
        run_at: s.run_at,
        unique_for: s.unique_for,
        caller_id: s.caller_id,
        key: s.key,
        group: s.group,
        expires: s.expires,
        enqueued_at: s.enqueued_at,
        headers: s.headers,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jobs_core::{CallerId, IfExists, JobGroup, JobId, JobKey, KeyMode, NewJob, Priority, When};

    use super::{decode, encode};

    fn plain() -> NewJob {
        NewJob::new(JobId::new("mail"), "send_welcome", br#"{"user":7,"lang":"de"}"#.to_vec())
    }

    fn every_option() -> NewJob {
        let mut j = NewJob {
            priority: Priority::High,
            max_retries: Some(4),
            timeout: Some(Duration::from_millis(1500)),
            run_at: Some(When::In(Duration::from_secs(3))),
            unique_for: Some(Duration::from_secs(60)),
            caller_id: Some(CallerId { id: "wf:a:b".into(), if_exists: IfExists::Fail }),
            expires: Some(When::At(std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000))),
            ..plain()
        };
        j.key = Some(JobKey { key: "k-7".into(), mode: KeyMode::Replace });
        j.group = Some(JobGroup { key: "acct-7".into(), concurrency: Some(2), rate: None });
        j.headers.insert("traceparent".into(), "00-ab".into());
        j
    }

    #[test]
    fn a_job_round_trips_with_its_payload_as_text_and_no_unset_options() {
        let j = plain();
        let raw = encode(&j).unwrap();
        let text = std::str::from_utf8(&raw).unwrap();
        assert!(text.contains(r#""text":"{\"user\":7,\"lang\":\"de\"}""#), "{text}");
        assert!(!text.contains("null") && !text.contains("\"payload\"") && !text.contains("headers"), "{text}");
        assert_eq!(decode(&raw).unwrap(), j);
        // Shorter than the job's own JSON, which spells every byte and option.
        let own = serde_json::to_vec(&j).unwrap().len();
        assert!(raw.len() + 150 < own, "{} against {own}: {text}", raw.len());
    }

    #[test]
    fn a_job_with_every_option_round_trips() {
        let j = every_option();
        assert_eq!(decode(&encode(&j).unwrap()).unwrap(), j);
    }

    #[test]
    fn a_payload_that_is_not_text_round_trips_as_bytes() {
        let mut j = plain();
        j.payload = vec![0x82, 0xa1, b'a', 0x01, 0xff, 0xfe];
        let raw = encode(&j).unwrap();
        let text = std::str::from_utf8(&raw).unwrap();
        assert!(text.contains(r#""payload":[130,161,97,1,255,254]"#) && !text.contains("\"text\""), "{text}");
        assert_eq!(decode(&raw).unwrap(), j);
    }

    #[test]
    fn a_job_stored_as_its_own_json_reads_back() {
        for j in [plain(), every_option()] {
            assert_eq!(decode(&serde_json::to_vec(&j).unwrap()).unwrap(), j);
        }
    }

    #[test]
    fn a_spec_without_a_payload_is_refused() {
        let mut v = serde_json::to_value(plain()).unwrap();
        v.as_object_mut().unwrap().remove("payload");
        let e = decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("missing field `text`"), "{e}");
    }
}
