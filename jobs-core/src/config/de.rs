//! Serde helpers of the configuration: humantime durations and the ordered
//! `queues:` map.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::{QueueConfig, Queues};

/// A duration written as text the `humantime` way (`"30s"`, `"1h 30m"`).
pub(super) mod duration {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }
}

/// An optional [`duration`].
pub(super) mod opt_duration {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTING)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(DurationVisitor).map(Some)
        }
    }
}

/// An `IP:port` socket address, with a message that shows how to write one.
pub(super) mod socket_addr {
    use super::*;
    use std::net::SocketAddr;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        // Parsed inside the visitor, so the error carries the key's path.
        d.deserialize_str(AddrVisitor)
    }

    struct AddrVisitor;

    impl Visitor<'_> for AddrVisitor {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an IP:port address such as \"127.0.0.1:8080\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<SocketAddr, E> {
            s.trim()
                .parse()
                .map_err(|_| E::custom(format_args!("`{s}` is not an IP:port address; write e.g. \"127.0.0.1:8080\"")))
        }
    }
}

const EXPECTING: &str = "a duration such as \"500ms\", \"30s\" or \"5m\"";

/// Parses a duration as the configuration writes it; the message says how to
/// write one.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}`: {e}; write e.g. \"30s\" or \"5m\""))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        parse_duration(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Queues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(QueuesVisitor)
    }
}

struct QueuesVisitor;

impl<'de> Visitor<'de> for QueuesVisitor {
    type Value = Queues;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of queue names to their settings, e.g. `email: { max_jobs: 5000 }`")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Queues, E> {
        Ok(Queues::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Queues, A::Error> {
        let mut out: Vec<(String, QueueConfig)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            // `queues: { email: }` (no settings) means the defaults.
            let q = map.next_value::<Option<QueueConfig>>()?.unwrap_or_default();
            if out.iter().any(|(n, _)| *n == name) {
                return Err(de::Error::custom(format_args!("queue `{name}` is configured twice")));
            }
            out.push((name, q));
        }
        Ok(Queues(out))
    }
}
