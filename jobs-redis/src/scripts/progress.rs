//! `progress.lua`: one running job's progress, written by its lease holder.

use std::sync::LazyLock;

use jobs_core::backend::{ProgressUpdate, ProgressWrite};
use jobs_core::{EventKind, Progress};
use redis::Value;

use super::{bytes, queue_script, Args, Script, ScriptCall};
use crate::decode::from_ms;
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "report_progress";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("progress"));

/// Store `update` on its job, of the queue of `keys`.
pub(crate) struct ReportProgress<'a> {
    /// The queue's keys.
    pub(crate) keys: &'a QueueKeys,
    /// The write (already checked: fraction in 0..=1, bounded note).
    pub(crate) update: &'a ProgressUpdate,
}

impl ScriptCall for ReportProgress<'_> {
    type Reply = ProgressWrite;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        let u = self.update;
        let mut ulid = [0u8; ulid::ULID_LEN];
        out.arg(&*u.id.ulid().array_to_str(&mut ulid)).arg(u.token).arg(fraction_text(u.fraction)).arg(&u.note);
    }

    /// `'s'` stored, `'x'` stale.
    fn decode(self, reply: Value) -> Result<ProgressWrite, RedisQueueError> {
        match bytes(OP, reply)?.as_slice() {
            b"s" => Ok(ProgressWrite::Stored),
            b"x" => Ok(ProgressWrite::Stale),
            other => Err(RedisQueueError::reply(OP, format!("progress code `{}`", String::from_utf8_lossy(other)))),
        }
    }
}

/// A fraction as stored: the shortest text that reads back as the same
/// `f32` (Rust's `Display` of a float never uses an exponent).
pub(crate) fn fraction_text(f: f32) -> String {
    f.to_string()
}

/// A job's `progress` field (`<fraction>|<at_ms>|<attempt>|<note>`) as
/// [`Progress`]; `None` when it does not parse (written by another
/// version).
pub(crate) fn stored_progress(field: &[u8]) -> Option<Progress> {
    let mut parts = field.splitn(4, |b| *b == b'|');
    let fraction = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let at_ms: u64 = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let attempt = std::str::from_utf8(parts.next()?).ok()?.parse().unwrap_or(0);
    let note = String::from_utf8_lossy(parts.next()?).into_owned();
    Some(Progress { fraction, note, at: from_ms(at_ms), attempt })
}

/// A `progress` event's detail (`<fraction> <note>`) as the event's
/// fraction and note (`None` when empty); any other detail as it is.
pub(crate) fn event_detail(kind: EventKind, detail: Option<String>) -> (Option<String>, Option<f32>) {
    match (kind, detail) {
        (EventKind::Progress, Some(d)) => {
            let (fraction, note) = d.split_once(' ').unwrap_or((d.as_str(), ""));
            let fraction = fraction.parse().ok();
            (Some(note.to_owned()).filter(|n| !n.is_empty()), fraction)
        }
        (_, detail) => (detail, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn a_stored_progress_reads_back() {
        let p = stored_progress("0.125|1700000000123|3|frame 1|2 of 16".as_bytes()).unwrap();
        assert_eq!((p.fraction, p.attempt, p.note.as_str()), (0.125, 3, "frame 1|2 of 16"));
        assert_eq!(p.at, from_ms(1_700_000_000_123));
        assert!(stored_progress(b"garbage").is_none());
        assert_eq!(fraction_text(1.0), "1");
        assert_eq!(fraction_text(0.1).parse::<f32>().unwrap(), 0.1);
    }

    #[test]
    fn a_progress_event_detail_splits_into_fraction_and_note() {
        assert_eq!(
            event_detail(EventKind::Progress, Some("0.5 half way".into())),
            (Some("half way".into()), Some(0.5))
        );
        assert_eq!(event_detail(EventKind::Progress, Some("1 ".into())), (None, Some(1.0)));
        assert_eq!(event_detail(EventKind::Dead, Some("0.5 boom".into())), (Some("0.5 boom".into()), None));
    }
}
