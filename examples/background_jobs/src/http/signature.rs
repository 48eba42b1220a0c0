//! Webhook signatures: HMAC-SHA256 over `"{timestamp}.{body}"` with a
//! shared secret (`app.notify.signing_secret`), sent as
//!
//! ```text
//! X-Webhook-Signature: t=1733318400,v1=5f8c…(64 hex digits)
//! ```
//!
//! `t` is the Unix time of the attempt (each retry signs anew). A receiver
//! computes the HMAC of `t`, a `.`, and the raw body bytes as received,
//! compares it with `v1` in constant time, and refuses a timestamp further
//! than a tolerance from its own clock (default five minutes): a captured
//! request cannot be replayed later, and `t` cannot be moved since it is
//! signed. Several `v1=` values may be sent (while a secret is rotated);
//! one that matches is enough.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use background_jobs::http::signature::{SignatureError, WebhookSigner, DEFAULT_TOLERANCE};
//!
//! let signer = WebhookSigner::new(b"whsec_test");
//! let header = signer.sign(1_733_318_400, br#"{"event":"order.paid"}"#);
//! let now = UNIX_EPOCH + Duration::from_secs(1_733_318_460);
//! assert!(signer.verify(&header, br#"{"event":"order.paid"}"#, now, DEFAULT_TOLERANCE).is_ok());
//! let tampered = signer.verify(&header, br#"{"event":"order.refunded"}"#, now, DEFAULT_TOLERANCE);
//! assert!(matches!(tampered, Err(SignatureError::Mismatch)));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

/// The header that carries the signature.
pub const HEADER: &str = "x-webhook-signature";

/// How far a signature's timestamp may be from the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<unix seconds>,v1=<hex>[,v1=<hex>..]`.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// No `v1` value is the HMAC of this timestamp and body.
    #[error("the signature does not match the body")]
    Mismatch,
    /// Authentic, but its timestamp is too far from now (a replay, or
    /// clocks apart).
    #[error("the signature's timestamp {timestamp} is {skew}s from now, past the tolerance of {}s", tolerance.as_secs())]
    Stale {
        /// The signed timestamp.
        timestamp: u64,
        /// Seconds between it and now.
        skew: u64,
        /// The tolerance.
        tolerance: Duration,
    },
}

/// Signs and verifies webhook bodies with one secret.
#[derive(Clone)]
pub struct WebhookSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSigner { .. }")
    }
}

impl WebhookSigner {
    /// A signer with the shared `secret`.
    pub fn new(secret: &[u8]) -> Self {
        WebhookSigner { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The header value for `body` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_bytes(timestamp, body));
        format!("t={timestamp},v1={}", hex(tag.as_ref()))
    }

    /// The header value for `body` sent now.
    pub fn sign_now(&self, body: &[u8]) -> String {
        self.sign(unix_seconds(SystemTime::now()), body)
    }

    /// Checks `header` for `body` as received at `now`; returns the signed
    /// timestamp. The signature is checked before the timestamp, so
    /// [`SignatureError::Stale`] means authentic but old.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: SystemTime,
        tolerance: Duration,
    ) -> Result<u64, SignatureError> {
        let mut timestamp = None;
        let mut tags = Vec::new();
        for part in header.split(',') {
            let (key, value) =
                part.trim().split_once('=').ok_or(SignatureError::Malformed("a part is not key=value"))?;
            match key {
                "t" if timestamp.is_some() => return Err(SignatureError::Malformed("`t` is given twice")),
                "t" => {
                    timestamp =
                        Some(value.parse::<u64>().map_err(|_| SignatureError::Malformed("`t` is not a number"))?)
                }
                "v1" => tags.push(unhex(value).ok_or(SignatureError::Malformed("`v1` is not hex"))?),
                // Other schemes (a future v2) are skipped, as Stripe does.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed("no `t`"))?;
        if tags.is_empty() {
            return Err(SignatureError::Malformed("no `v1`"));
        }
        let signed = signed_bytes(timestamp, body);
        if !tags.iter().any(|tag| hmac::verify(&self.key, &signed, tag).is_ok()) {
            return Err(SignatureError::Mismatch);
        }
        let skew = unix_seconds(now).abs_diff(timestamp);
        if skew > tolerance.as_secs() {
            return Err(SignatureError::Stale { timestamp, skew, tolerance });
        }
        Ok(timestamp)
    }
}

/// `"{timestamp}.{body}"`.
fn signed_bytes(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{timestamp}.").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event":"order.paid"}"#;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A known answer, computed independently:
    /// `printf '1733318400.{"event":"order.paid"}' | openssl dgst -sha256 -hmac whsec_test`.
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let header = WebhookSigner::new(b"whsec_test").sign(1_733_318_400, BODY);
        assert_eq!(header, "t=1733318400,v1=27254e78adb22a1e634c9d0a3a27ef4bb13959c37bdb2f2dbb102127be0b56be");
    }

    #[test]
    fn verify_accepts_fresh_and_refuses_stale_wrong_and_malformed() {
        let signer = WebhookSigner::new(b"whsec_test");
        let header = signer.sign(1_000_000, BODY);
        assert_eq!(signer.verify(&header, BODY, at(1_000_299), DEFAULT_TOLERANCE), Ok(1_000_000));
        assert_eq!(signer.verify(&header, BODY, at(999_701), DEFAULT_TOLERANCE), Ok(1_000_000), "a clock behind");
        let stale = signer.verify(&header, BODY, at(1_000_301), DEFAULT_TOLERANCE);
        assert!(matches!(stale, Err(SignatureError::Stale { skew: 301, .. })), "{stale:?}");
        assert_eq!(signer.verify(&header, b"{}", at(1_000_000), DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
        let other = WebhookSigner::new(b"another secret");
        assert_eq!(other.verify(&header, BODY, at(1_000_000), DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
        // A moved timestamp breaks the signature: `t` is signed.
        let moved = header.replace("t=1000000", "t=1000300");
        assert_eq!(signer.verify(&moved, BODY, at(1_000_300), DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
        // Rotation: any matching v1 is enough.
        let rotated = format!("{},v1={}", other.sign(1_000_000, BODY), &header["t=1000000,v1=".len()..]);
        assert_eq!(signer.verify(&rotated, BODY, at(1_000_000), DEFAULT_TOLERANCE), Ok(1_000_000));
        for bad in ["", "v1=00", "t=1", "t=x,v1=00", "t=1,v1=zz", "t=1,t=2,v1=00", "garbage"] {
            let got = signer.verify(bad, BODY, at(1), DEFAULT_TOLERANCE);
            assert!(matches!(got, Err(SignatureError::Malformed(_))), "{bad:?}: {got:?}");
        }
    }
}
