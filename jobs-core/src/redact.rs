//! Fields a job marks `#[redact]`: stored and delivered to the job as
//! written, shown as [`REDACTED`] by every view of the job (the JSON API,
//! the dashboard, the command line, logs).
//!
//! The names travel with each job, in its [`REDACT_HEADER`] header, so a
//! process that shows a job does not need to link the job's type to know
//! what to hide.

use crate::queue::JobInfo;
use crate::vocab::Headers;

/// The header that lists a job's redacted payload fields, comma separated.
pub const REDACT_HEADER: &str = "jobs-redact";

/// What a view shows in place of a redacted field's value.
pub const REDACTED: &str = "[redacted]";

/// Adds `fields` to the headers of a job being enqueued (nothing when
/// there are none).
pub fn mark(headers: &mut Headers, fields: &[&str]) {
    if !fields.is_empty() {
        headers.insert(REDACT_HEADER.to_owned(), fields.join(","));
    }
}

/// Replaces the top-level payload fields that `headers` name with
/// [`REDACTED`]. A payload that is not an object is left as it is.
pub fn payload(headers: &Headers, payload: &mut serde_json::Value) {
    let Some(fields) = headers.get(REDACT_HEADER) else { return };
    let serde_json::Value::Object(map) = payload else { return };
    for name in fields.split(',').filter(|n| !n.is_empty()) {
        if let Some(v) = map.get_mut(name) {
            *v = serde_json::Value::String(REDACTED.to_owned());
        }
    }
}

impl JobInfo {
    /// This job as views show it: the payload fields its job marks
    /// `#[redact]` replaced with [`REDACTED`].
    ///
    /// ```
    /// # use jobs_core::JobInfo;
    /// # fn show(mut info: JobInfo) {
    /// let shown = info.redacted();
    /// # }
    /// ```
    pub fn redacted(mut self) -> Self {
        payload(&self.headers, &mut self.payload);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_fields_are_replaced_and_others_kept() {
        let mut h = Headers::new();
        mark(&mut h, &["token", "pin"]);
        let mut p = serde_json::json!({"user": "ann", "token": "s3cret", "pin": 1234});
        payload(&h, &mut p);
        assert_eq!(p, serde_json::json!({"user": "ann", "token": REDACTED, "pin": REDACTED}));
    }

    #[test]
    fn no_header_no_change() {
        let mut h = Headers::new();
        mark(&mut h, &[]);
        assert!(h.is_empty());
        let mut p = serde_json::json!({"token": "visible"});
        payload(&h, &mut p);
        assert_eq!(p, serde_json::json!({"token": "visible"}));
    }
}
