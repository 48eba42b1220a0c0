//! Serde helpers of the configuration: humantime durations, lenient
//! booleans, socket addresses and the ordered `queues:` map, each both ways
//! (the environment overrides write the configuration back into a tree).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{QueueConfig, Queues};

/// A duration written as text the `humantime` way (`"30s"`, `"1h 30m"`).
pub(super) mod duration {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }

    pub(in crate::config) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

/// An optional humantime duration: absent or `null` for none.
pub(super) mod opt_duration {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
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

    pub(in crate::config) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// A boolean written `true`/`false`, or as text `yes`/`no`, `on`/`off`,
/// `1`/`0` (any case), the forms an environment variable takes.
pub(super) mod flag {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(FlagVisitor)
    }

    pub(in crate::config) fn serialize<S: Serializer>(b: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*b)
    }

    struct FlagVisitor;

    impl Visitor<'_> for FlagVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
            Ok(b)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<bool, E> {
            match n {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(E::custom(format_args!("`{s}` is not a boolean: write true or false"))),
            }
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

    pub(in crate::config) fn serialize<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
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
fn parse_duration(s: &str) -> Result<Duration, String> {
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

/// A map in file order.
impl Serialize for Queues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (name, q) in self.iter() {
            map.serialize_entry(name, q)?;
        }
        map.end()
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
