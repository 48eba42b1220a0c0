//! How payloads are stored: as the producer encoded them, JSON (the default)
//! or MessagePack (`RedisConfig::payload_format`, the format typed enqueues
//! through this handle encode in), which is smaller for payloads with many
//! numbers or short strings.
//!
//! A record keeps no format field: a stored payload is a JSON object (its
//! first byte is `{`) or a MessagePack map (first byte `0x80` to `0x8f`,
//! `0xde` or `0xdf`), so a reader tells them apart
//! ([`PayloadFormat::of`]) and jobs written under either setting stay
//! readable after the setting changes (a rolling switch is safe).
//!
//! MessagePack needs the crate's `msgpack` feature (on by default): without
//! it, `PayloadFormat::MessagePack` is refused at connect
//! ([`check_available`]), and a MessagePack payload written by another build
//! reaches the worker, whose decoder reports it.

pub use jobs_core::backend::PayloadFormat;

use crate::error::RedisQueueError;

/// Refuses a format this build cannot write.
pub(crate) fn check_available(format: PayloadFormat) -> Result<(), RedisQueueError> {
    if format.available() {
        Ok(())
    } else {
        Err(RedisQueueError::feature("msgpack", "`payload_format: messagepack`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_this_build_has_is_accepted() {
        assert!(check_available(PayloadFormat::Json).is_ok());
        assert_eq!(check_available(PayloadFormat::MessagePack).is_ok(), cfg!(feature = "msgpack"));
        if !cfg!(feature = "msgpack") {
            let e = check_available(PayloadFormat::MessagePack).unwrap_err();
            assert!(matches!(e, RedisQueueError::FeatureDisabled { feature: "msgpack", .. }), "{e}");
        }
    }
}
