//! How a payload's bytes are encoded, and the one place that encodes and
//! decodes them.
//!
//! A payload carries its format from the producer to the worker
//! ([`NewJob::format`](crate::NewJob::format),
//! [`LeasedJob::format`](crate::backend::LeasedJob::format)): a typed enqueue
//! encodes in the backend's preferred format
//! ([`JobQueue::payload_format`](crate::JobQueue::payload_format)), the
//! backend stores the bytes as given, and the worker's generated code decodes
//! them with the format they came with. Nothing is transcoded between the two.
//!
//! The format can also be told from the bytes ([`PayloadFormat::of`]): a
//! payload is a struct with named fields, so it is a JSON object (first byte
//! `{`) or a MessagePack map (first byte `0x80`..`0x8f`, `0xde` or `0xdf`, none
//! of which can start JSON text). A backend that stores only the bytes reads
//! the format back this way, and payloads written under either setting stay
//! readable after it changes.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The encoding of a payload's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PayloadFormat {
    /// JSON text: what every build reads and what operators' tools write.
    #[default]
    Json,
    /// MessagePack with struct fields as a map (named, like JSON): smaller
    /// for payloads with many numbers or short strings. Encoding and decoding
    /// it needs the `msgpack` feature.
    MessagePack,
}

/// Why a payload did not encode or decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// JSON encoding or decoding failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// MessagePack decoding failed.
    #[cfg(feature = "msgpack")]
    #[error(transparent)]
    MessagePackDecode(#[from] rmp_serde::decode::Error),
    /// MessagePack encoding failed.
    #[cfg(feature = "msgpack")]
    #[error(transparent)]
    MessagePackEncode(#[from] rmp_serde::encode::Error),
    /// The payload is MessagePack and this build has no `msgpack` feature.
    #[error("the payload is MessagePack, which this build cannot decode: enable the `msgpack` feature of jobs-core")]
    MessagePackDisabled,
}

impl PayloadError {
    /// A description that quotes nothing of the payload: where and what kind
    /// of error, for jobs whose fields are redacted.
    pub fn without_values(&self) -> String {
        match self {
            PayloadError::Json(e) => {
                let kind = match e.classify() {
                    serde_json::error::Category::Io => "an I/O error",
                    serde_json::error::Category::Syntax => "a syntax error",
                    serde_json::error::Category::Data => "a value of the wrong type or a missing field",
                    serde_json::error::Category::Eof => "an early end",
                };
                format!("{kind} at line {} column {}", e.line(), e.column())
            }
            #[cfg(feature = "msgpack")]
            PayloadError::MessagePackDecode(_) => "a MessagePack value of the wrong type or a missing field".into(),
            #[cfg(feature = "msgpack")]
            PayloadError::MessagePackEncode(_) => "a value MessagePack cannot encode".into(),
            PayloadError::MessagePackDisabled => self.to_string(),
        }
    }
}

impl PayloadFormat {
    /// The format of stored payload bytes: MessagePack when they start a
    /// MessagePack map, JSON otherwise (bytes that are neither fail to decode
    /// as JSON, which names the problem).
    pub fn of(bytes: &[u8]) -> PayloadFormat {
        match bytes.first() {
            Some(0x80..=0x8f | 0xde | 0xdf) => PayloadFormat::MessagePack,
            _ => PayloadFormat::Json,
        }
    }

    /// Whether this build can encode and decode the format.
    pub fn available(self) -> bool {
        match self {
            PayloadFormat::Json => true,
            PayloadFormat::MessagePack => cfg!(feature = "msgpack"),
        }
    }

    /// Encodes `value` in this format, and says which format it used: a
    /// value that MessagePack would not encode as a map (so that
    /// [`PayloadFormat::of`] could not tell it back), or MessagePack in a
    /// build without the feature, is encoded as JSON.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<(PayloadFormat, Vec<u8>), PayloadError> {
        #[cfg(feature = "msgpack")]
        if self == PayloadFormat::MessagePack {
            let mut out = Vec::with_capacity(64);
            value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
            if PayloadFormat::of(&out) == PayloadFormat::MessagePack {
                return Ok((PayloadFormat::MessagePack, out));
            }
        }
        Ok((PayloadFormat::Json, serde_json::to_vec(value)?))
    }

    /// Decodes bytes written in this format.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, PayloadError> {
        match self {
            PayloadFormat::Json => Ok(serde_json::from_slice(bytes)?),
            #[cfg(feature = "msgpack")]
            PayloadFormat::MessagePack => Ok(rmp_serde::from_slice(bytes)?),
            #[cfg(not(feature = "msgpack"))]
            PayloadFormat::MessagePack => Err(PayloadError::MessagePackDisabled),
        }
    }

    /// The payload as JSON for people and tools (views, the CLI, the admin
    /// API): bytes that do not decode are shown as text.
    pub fn to_json(self, bytes: &[u8]) -> serde_json::Value {
        self.decode(bytes).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Mail {
        to: String,
        tries: u32,
        note: Option<String>,
    }

    fn mail() -> Mail {
        Mail { to: "a@example.com".into(), tries: 3, note: None }
    }

    #[test]
    fn json_round_trips_and_is_told_from_its_bytes() {
        let (format, bytes) = PayloadFormat::Json.encode(&mail()).unwrap();
        assert_eq!(format, PayloadFormat::Json);
        assert_eq!(PayloadFormat::of(&bytes), PayloadFormat::Json);
        assert_eq!(format.decode::<Mail>(&bytes).unwrap(), mail());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn messagepack_round_trips_as_a_map_and_is_told_from_its_bytes() {
        let (format, bytes) = PayloadFormat::MessagePack.encode(&mail()).unwrap();
        assert_eq!(format, PayloadFormat::MessagePack);
        assert_eq!(PayloadFormat::of(&bytes), PayloadFormat::MessagePack);
        assert_eq!(format.decode::<Mail>(&bytes).unwrap(), mail());
        assert_eq!(format.to_json(&bytes), serde_json::json!({"to": "a@example.com", "tries": 3, "note": null}));
        assert!(bytes.len() < serde_json::to_vec(&mail()).unwrap().len());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn a_value_that_is_not_a_map_is_written_as_json() {
        let (format, bytes) = PayloadFormat::MessagePack.encode(&[1, 2, 3]).unwrap();
        assert_eq!((format, &bytes[..]), (PayloadFormat::Json, &b"[1,2,3]"[..]));
    }

    #[cfg(not(feature = "msgpack"))]
    #[test]
    fn without_the_feature_messagepack_is_refused_on_read_and_json_written() {
        assert!(!PayloadFormat::MessagePack.available());
        let (format, _) = PayloadFormat::MessagePack.encode(&mail()).unwrap();
        assert_eq!(format, PayloadFormat::Json);
        let e = PayloadFormat::MessagePack.decode::<Mail>(&[0x80]).unwrap_err();
        assert!(matches!(e, PayloadError::MessagePackDisabled), "{e}");
    }

    #[test]
    fn bytes_that_do_not_decode_are_shown_as_text() {
        assert_eq!(PayloadFormat::Json.to_json(b"not json"), serde_json::json!("not json"));
    }
}
