//! A backend's section of the configuration (`jobs.redis`): kept as written,
//! read by the backend crate into its own settings type, so every key the
//! backend has is settable and the keys are declared in one place.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml_ng::Value;

use super::text::{candidates, pick_error, slot};
use super::{mask_url_password, ConfigError};

/// The `jobs.redis` section, as written in the file and the environment.
///
/// The core does not know the backend's keys: the backend crate reads the
/// section with [`BackendSection::parse`] into its own settings type
/// (`jobs_redis::RedisConfig::from_config`), and its errors name the file or
/// the variable and the key path, like every other configuration error. Only
/// `url` is read here, because its presence selects the backend.
#[derive(Clone, PartialEq)]
pub struct BackendSection {
    value: Value,
    origin: Origin,
}

/// Where a section's values came from, for error messages.
#[derive(Clone, Default, PartialEq)]
pub(super) struct Origin {
    /// The file (or `<yaml>`) the section was read from.
    source: String,
    /// The file's text while no override has changed the section: reading
    /// the section from it gives errors with line numbers.
    text: Option<Arc<str>>,
    /// The overrides that set keys of the section, in order.
    overrides: Vec<Override>,
}

/// One key of the section set from text.
#[derive(Clone, PartialEq)]
pub(super) struct Override {
    /// The key's path inside the section (`pool_size`, `retention.dead_age`).
    path: String,
    /// The text: which value it stands for is known only to the backend's
    /// type, so [`BackendSection::parse`] tries its readings in turn.
    text: String,
    /// What set it.
    setter: Setter,
}

/// What set a key besides the file.
#[derive(Clone, PartialEq, Debug)]
pub(super) enum Setter {
    /// An environment variable.
    Env(String),
    /// Anything else, by name (a command-line flag).
    Named(String),
}

/// The full key of the section.
const KEY: &str = "jobs.redis";

impl BackendSection {
    /// A section with only `url` set, as an application builds it from a
    /// command-line flag.
    pub fn with_url(url: impl Into<String>) -> Self {
        let mut map = serde_yaml_ng::Mapping::new();
        map.insert(Value::from("url"), Value::from(url.into()));
        BackendSection { value: Value::Mapping(map), origin: Origin { source: "<code>".into(), ..Origin::default() } }
    }

    /// The backend's URL (`jobs.redis.url`), when the section has one.
    pub fn url(&self) -> Option<&str> {
        self.value.get("url").and_then(Value::as_str)
    }

    /// The section as the backend's settings type `T`. Unknown keys, values
    /// of the wrong type and bad durations are errors that name the file (or
    /// the variable that set the key) and the full key path, e.g.
    /// `config.yaml: jobs.redis.pool_size: invalid type: string "many", expected usize at line 3 column 16`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        if let Some(text) = &self.origin.text {
            return serde_yaml_ng::from_str::<InFile<T>>(text)
                .map(|f| f.jobs.redis)
                .map_err(|e| ConfigError::Parse { file: self.origin.source.clone(), message: e.to_string() });
        }
        let mut value = self.value.clone();
        // Per override: the readings of its text left to try, and the errors so far.
        let mut left: Vec<Vec<(bool, Value)>> =
            self.origin.overrides.iter().map(|o| candidates(&o.text).into_iter().skip(1).rev().collect()).collect();
        let mut errors: Vec<Vec<(bool, String)>> = vec![Vec::new(); left.len()];
        loop {
            let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            let inner = e.path().to_string();
            let inner = if inner == "." { String::new() } else { inner };
            let message = e.into_inner().to_string();
            // The last override of exactly this key is read another way, if it has one left.
            let at = self.origin.overrides.iter().rposition(|o| o.path == inner);
            if let Some(i) = at {
                let literal = candidates(&self.origin.overrides[i].text)
                    .iter()
                    .position(|(lit, _)| *lit)
                    .is_some_and(|p| p == errors[i].len());
                errors[i].push((literal, message.clone()));
                if let Some((_, next)) = left[i].pop() {
                    let levels: Vec<String> = inner.split('.').map(str::to_owned).collect();
                    match slot(&mut value, &levels) {
                        Ok(place) => {
                            *place = next;
                            continue;
                        }
                        Err(m) => return Err(self.error(&inner, m)),
                    }
                }
                return Err(self.error(&inner, pick_error(&errors[i])));
            }
            return Err(self.error(&inner, message));
        }
    }

    /// The error at `inner` (a path inside the section), naming the
    /// override the path lies under (the longest), else the file.
    fn error(&self, inner: &str, message: String) -> ConfigError {
        let key = if inner.is_empty() { KEY.to_owned() } else { format!("{KEY}.{inner}") };
        let setter = self
            .origin
            .overrides
            .iter()
            .filter(|o| {
                inner.is_empty()
                    || inner == o.path
                    || inner.starts_with(&format!("{}.", o.path))
                    || inner.starts_with(&format!("{}[", o.path))
                    || o.path.starts_with(&format!("{inner}."))
            })
            .max_by_key(|o| o.path.len())
            .map(|o| &o.setter);
        match setter {
            Some(Setter::Env(var)) => ConfigError::Env { var: var.clone(), key, message },
            Some(Setter::Named(name)) => {
                ConfigError::Parse { file: name.clone(), message: format!("{key}: {message}") }
            }
            None => ConfigError::Parse { file: self.origin.source.clone(), message: format!("{key}: {message}") },
        }
    }

    pub(super) fn value(&self) -> &Value {
        &self.value
    }

    pub(super) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Sets where the section came from: read from `text`, named `source`.
    pub(super) fn read_from(&mut self, source: &str, text: &Arc<str>) {
        self.origin = Origin { source: source.to_owned(), text: Some(text.clone()), overrides: Vec::new() };
    }

    /// Keeps the origin the section had before it was written out and read back.
    pub(super) fn keep_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }

    /// Keeps `previous`'s origin and records that `setter` set `path` (inside
    /// the section) from `text`: the file's text no longer describes the section.
    pub(super) fn overridden(&mut self, previous: Option<&Origin>, path: &str, text: &str, setter: Setter) {
        let mut origin = previous.cloned().unwrap_or_else(|| Origin { source: "<code>".into(), ..Origin::default() });
        origin.text = None;
        origin.overrides.push(Override { path: path.to_owned(), text: text.to_owned(), setter });
        self.origin = origin;
    }
}

/// The section's place in a file; everything else in the file is skipped
/// (it has been checked already).
#[derive(Deserialize)]
struct InFile<T> {
    jobs: InJobs<T>,
}

#[derive(Deserialize)]
struct InJobs<T> {
    redis: T,
}

impl<'de> Deserialize<'de> for BackendSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value {
            Value::Mapping(_) => Ok(BackendSection { value, origin: Origin::default() }),
            _ => {
                Err(serde::de::Error::custom("expected a map of settings, e.g. `{ url: \"redis://127.0.0.1:6379\" }`"))
            }
        }
    }
}

/// Writes the section as written (the password included).
impl Serialize for BackendSection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// Shows the URL with its password masked, and the other keys' names only
/// (the backend's keys may hold secrets of their own).
impl std::fmt::Debug for BackendSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = match &self.value {
            Value::Mapping(m) => m.keys().filter_map(Value::as_str).filter(|k| *k != "url").collect(),
            _ => Vec::new(),
        };
        f.debug_struct("BackendSection")
            .field("url", &self.url().map(mask_url_password))
            .field("other_keys", &keys)
            .finish()
    }
}
