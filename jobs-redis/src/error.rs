//! [`RedisQueueError`], the backend's errors, and the masking of passwords.
//!
//! Every error leaves this crate as `jobs_core::Error::Backend` holding a
//! [`RedisQueueError`]. Its messages never contain the password of the Redis
//! URL: URLs are shown masked ([`mask_url`]) and any text that comes from
//! the driver is passed through a [`Redactor`] first.

use std::fmt;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisQueueError {
    /// The URL or configuration could not be used.
    #[error("invalid Redis configuration for {url}: {reason}")]
    Config {
        /// The URL, password masked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The configuration asks for something this build of the crate was
    /// compiled without: enable the named cargo feature of `jobs-redis`.
    #[error("{needed_by} needs the `{feature}` feature of jobs-redis, which this build was compiled without")]
    FeatureDisabled {
        /// The cargo feature (`tls`, `cluster`, `msgpack`).
        feature: &'static str,
        /// What needs it (a URL scheme or a setting; never a password).
        needed_by: String,
    },
    /// No connection could be made (server down, refused, wrong password).
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// The driver's message, password removed.
        reason: String,
    },
    /// A command or script failed (connection lost, timeout, server error).
    #[error("Redis `{op}` failed: {reason}")]
    Command {
        /// The operation (script or command name).
        op: &'static str,
        /// The driver's message, password removed.
        reason: String,
        /// The connection was lost or timed out (worth retrying), rather than
        /// a reply the server refused.
        transient: bool,
    },
    /// A script answered something this version does not understand (a
    /// script of another version, or data written by something else).
    #[error("unexpected answer from Redis `{op}`: {detail}")]
    Reply {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl RedisQueueError {
    /// Whether the same call may succeed when tried again (lost connection,
    /// timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self, RedisQueueError::Connect { .. } | RedisQueueError::Command { transient: true, .. })
    }

    pub(crate) fn feature(feature: &'static str, needed_by: impl Into<String>) -> Self {
        RedisQueueError::FeatureDisabled { feature, needed_by: needed_by.into() }
    }

    pub(crate) fn reply(op: &'static str, detail: impl Into<String>) -> Self {
        RedisQueueError::Reply { op, detail: detail.into() }
    }
}

impl From<RedisQueueError> for jobs_core::Error {
    fn from(e: RedisQueueError) -> Self {
        jobs_core::Error::Backend(Box::new(e))
    }
}

/// Removes one secret (the URL's password) from texts.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    /// A redactor for the password of `url`, in both its raw and its
    /// percent-decoded form.
    #[cfg(test)]
    pub(crate) fn for_url(url: &str) -> Self {
        Self::for_urls(&[url])
    }

    /// A redactor for the passwords of all these URLs (a Cluster's nodes).
    pub(crate) fn for_urls(urls: &[&str]) -> Self {
        let mut secrets = Vec::new();
        for p in urls.iter().filter_map(|u| password_of(u)).filter(|p| !p.is_empty()) {
            let decoded = percent_decode(p);
            if decoded != p && !decoded.is_empty() {
                secrets.push(decoded);
            }
            secrets.push(p.to_owned());
        }
        // Longest first, so a password containing another is removed whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    pub(crate) fn command(&self, op: &'static str, e: &redis::RedisError) -> RedisQueueError {
        let transient = e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal();
        RedisQueueError::Command { op, reason: self.clean(&e.to_string()), transient }
    }
}

/// The password part of a Redis URL: `redis://user:PASSWORD@host` (also
/// `redis+cluster://user:PASSWORD@a:1,b:2`), or the
/// `password=` / `pass=` query parameter of a `redis+unix://` URL.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, pass)) = userinfo.split_once(':') {
            return Some(pass);
        }
    }
    let query = rest.split_once('?')?.1;
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some(("password" | "pass", v)) => Some(v),
        _ => None,
    })
}

/// The URL with its password replaced by `***`, for messages and `Debug`.
///
/// ```
/// use jobs_redis::mask_url;
/// assert_eq!(mask_url("redis://app:s3cret@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(mask_url("redis://db:6379"), "redis://db:6379");
/// ```
pub fn mask_url(url: &str) -> String {
    match password_of(url) {
        Some(p) if !p.is_empty() => {
            // Replace only the first occurrence that is the password's own
            // position: after `:` in the user part, or after `=` in the query.
            let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
            let sep = if scheme.is_empty() { "" } else { "://" };
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            if let Some((userinfo, host)) = authority.rsplit_once('@') {
                if let Some((user, _)) = userinfo.split_once(':') {
                    return format!("{scheme}{sep}{user}:***@{host}{}", mask_query(tail));
                }
            }
            format!("{scheme}{sep}{authority}{}", mask_query(tail))
        }
        _ => url.to_owned(),
    }
}

fn mask_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_owned() };
    let masked: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k @ ("password" | "pass"), _)) => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", masked.join("&"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make one byte: the value is at most 255.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("redis://:pw@localhost:6379"), "redis://:***@localhost:6379");
        assert_eq!(mask_url("rediss://user:p%40ss@h/2?protocol=resp3"), "rediss://user:***@h/2?protocol=resp3");
        assert_eq!(mask_url("redis+unix:///tmp/r.sock?db=1&pass=xyz"), "redis+unix:///tmp/r.sock?db=1&pass=***");
        assert_eq!(mask_url("redis://user@h"), "redis://user@h");
        assert_eq!(mask_url("redis://h:6379/0"), "redis://h:6379/0");
    }

    #[test]
    fn redactor_removes_raw_and_decoded_forms() {
        let r = Redactor::for_url("redis://u:p%40ss@h");
        assert_eq!(r.clean("bad p@ss and p%40ss"), "bad *** and ***");
        assert_eq!(Redactor::for_url("redis://h").clean("text"), "text");
    }
}
