//! How payloads are stored: JSON as produced (the default), or MessagePack
//! (`RedisConfig::payload_format`), which is smaller for payloads with many
//! numbers or short strings.
//!
//! MessagePack needs the crate's `msgpack` feature (on by default): without
//! it, `PayloadFormat::MessagePack` is refused at connect
//! ([`check_available`]), and a MessagePack payload written by another build
//! is handed to the worker as stored (its decoder reports it).
//!
//! The port hands the backend JSON and expects JSON back, so MessagePack is
//! a storage encoding: a payload is transcoded on its way in and back to
//! JSON on its way out. Reading needs no setting: a stored payload is a JSON
//! object (its first byte is `{`) or a MessagePack map (first byte `0x80` to
//! `0x8f`, `0xde` or `0xdf`), so jobs written under either setting stay
//! readable after the setting changes (a rolling switch is safe).

use serde::{Deserialize, Serialize};

use crate::error::RedisQueueError;

/// The storage encoding of payloads and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// Stored as given: JSON text.
    #[default]
    Json,
    /// Stored as MessagePack, transcoded from and back to JSON (feature
    /// `msgpack`).
    MessagePack,
}

/// Refuses a format this build cannot write.
pub(crate) fn check_available(format: PayloadFormat) -> Result<(), RedisQueueError> {
    match format {
        PayloadFormat::MessagePack if !cfg!(feature = "msgpack") => {
            Err(RedisQueueError::feature("msgpack", "`payload_format: messagepack`"))
        }
        _ => Ok(()),
    }
}

/// The stored form of a JSON payload. A payload that is not valid JSON (a
/// raw enqueue of garbage) is stored as given, so that the worker reports
/// the decoding error instead of the producer losing the job.
pub(crate) fn encode(format: PayloadFormat, json: &[u8]) -> Vec<u8> {
    match format {
        #[cfg(feature = "msgpack")]
        PayloadFormat::MessagePack => {
            let mut out = Vec::with_capacity(json.len());
            let mut de = serde_json::Deserializer::from_slice(json);
            let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
            // Trailing bytes after the JSON value make it invalid JSON too.
            let whole = serde_transcode::transcode(&mut de, &mut ser).is_ok() && de.end().is_ok();
            if whole && is_msgpack_map(&out) {
                out
            } else {
                json.to_vec()
            }
        }
        // Without `msgpack` a handle never has this format (refused at
        // connect by check_available); JSON is the form every build reads.
        #[cfg(not(feature = "msgpack"))]
        PayloadFormat::MessagePack => json.to_vec(),
        PayloadFormat::Json => json.to_vec(),
    }
}

/// The JSON form of a stored payload, whichever way it was stored.
#[cfg(feature = "msgpack")]
pub(crate) fn decode(stored: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !is_msgpack_map(stored) {
        return std::borrow::Cow::Borrowed(stored);
    }
    let mut out = Vec::with_capacity(stored.len() * 2);
    let mut de = rmp_serde::Deserializer::new(stored);
    let mut ser = serde_json::Serializer::new(&mut out);
    match serde_transcode::transcode(&mut de, &mut ser) {
        Ok(()) => std::borrow::Cow::Owned(out),
        // Not MessagePack after all: hand it on as is, the worker's decoder
        // reports the problem.
        Err(_) => std::borrow::Cow::Borrowed(stored),
    }
}

/// The stored payload as it is: without `msgpack` a MessagePack payload
/// cannot be turned back into JSON, and the worker's decoder reports it.
#[cfg(not(feature = "msgpack"))]
pub(crate) fn decode(stored: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Borrowed(stored)
}

#[cfg(feature = "msgpack")]
fn is_msgpack_map(b: &[u8]) -> bool {
    matches!(b.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

#[cfg(all(test, feature = "msgpack"))]
mod tests {
    use super::*;

    #[test]
    fn messagepack_round_trips_and_is_smaller() {
        let json = br#"{"to":"ann@example.com","count":12345,"tags":["a","b"],"ok":true,"x":null,"f":1.5}"#;
        let stored = encode(PayloadFormat::MessagePack, json);
        assert!(is_msgpack_map(&stored));
        assert!(stored.len() < json.len(), "{} vs {}", stored.len(), json.len());
        let back: serde_json::Value = serde_json::from_slice(&decode(&stored)).unwrap();
        assert_eq!(back, serde_json::from_slice::<serde_json::Value>(json).unwrap());
    }

    #[test]
    fn messagepack_is_available_in_this_build() {
        assert!(check_available(PayloadFormat::MessagePack).is_ok());
    }

    #[test]
    fn json_is_stored_as_given_and_read_either_way() {
        let json = br#"{"a":1}"#;
        assert_eq!(encode(PayloadFormat::Json, json), json.to_vec());
        assert_eq!(&*decode(json), json);
    }

    #[test]
    fn garbage_is_kept_for_the_worker_to_report() {
        for bad in [&b"{\"a\": 1"[..], b"\xff\xfe", b"[1,2]", b""] {
            let stored = encode(PayloadFormat::MessagePack, bad);
            assert_eq!(stored, bad.to_vec());
            assert_eq!(&*decode(&stored), bad);
        }
    }
}

#[cfg(all(test, not(feature = "msgpack")))]
mod without_msgpack {
    use super::*;

    #[test]
    fn messagepack_is_refused_naming_the_feature() {
        let e = check_available(PayloadFormat::MessagePack).unwrap_err();
        assert!(matches!(e, RedisQueueError::FeatureDisabled { feature: "msgpack", .. }), "{e}");
        assert!(check_available(PayloadFormat::Json).is_ok());
    }
}
