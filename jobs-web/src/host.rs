//! The `Host` check that keeps DNS rebinding out: every route answers only
//! requests addressed to a name this server is known by.
//!
//! A page on `evil.example` whose name an attacker re-points at `127.0.0.1`
//! is, to the browser, same-origin with this server: it could read the API
//! (job payloads) and see its own `Origin` pass the actions' origin check.
//! What such a request cannot hide is its `Host` header, which names the
//! page's host, `evil.example`. So a request is served only when its host is
//!
//! - `localhost` (browsers resolve it to loopback themselves),
//! - an IP address literal (`127.0.0.1`, `10.0.0.5`, `[::1]`, ...): an
//!   attacker's page can only be at an IP address it owns, so a literal can
//!   never lead a browser to this server from another site's page; this is
//!   also how Prometheus and orchestrator probes address a server by default,
//! - or a name allowed with [`WebState::allow_host`](crate::WebState::allow_host)
//!   (the public name behind a reverse proxy that forwards `Host`, a DNS name
//!   Prometheus scrapes by, ...),
//!
//! with any port unless the allowed entry names one. Every other host gets
//! **421 Misdirected Request**. The same rule covers `/metrics` and
//! `/health/*`, whose answers name queues, hosts and process ids.
//!
//! A request without a `Host` header (HTTP/1.0 clients, the router called
//! in-process) is served: browsers always send one, so it cannot be a
//! rebinding page's. In absolute form (`GET http://name/ HTTP/1.1`) the
//! request line's host is checked as well.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::state::WebState;

/// A name that [`WebState::allow_host`](crate::WebState::allow_host) allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHost {
    /// Lowercase, without a trailing dot.
    name: String,
    /// The one port allowed with it, or any port.
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses `name` or `name:port`; `None` when it is not a host name.
    pub(crate) fn parse(entry: &str) -> Option<Self> {
        let (name, port) = split_port(entry.trim())?;
        let name = normalize(name)?;
        Some(AllowedHost { name, port })
    }
}

/// `authority` split into its host and its port, if any; `None` when the
/// port is not a number.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        // An IPv6 literal: its colons are not the port's.
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            None => (authority, None),
            Some((host, port)) => (host, Some(port)),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// A host name in the form it is compared in (lowercase, no trailing dot);
/// `None` unless it is made of the characters of DNS names.
fn normalize(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then(|| name.to_ascii_lowercase())
}

/// Whether a request addressed to `authority` (a `Host` value) is served.
pub(crate) fn is_allowed(authority: &str, allowed: &[AllowedHost]) -> bool {
    let Some((host, port)) = split_port(authority) else {
        return false;
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let Some(name) = normalize(host) else {
        return false;
    };
    // Only the exact name, which browsers resolve to loopback themselves;
    // `localhost.` and names under it may be looked up in DNS.
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    allowed.iter().any(|a| a.name == name && a.port.is_none_or(|p| port == Some(p)))
}

/// Refuses a request whose `Host` (or request-line host) is not served,
/// before anything else runs.
pub(crate) async fn check(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let allowed = &state.inner.allowed_hosts;
    let refused = req
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|v| v.to_str().unwrap_or("<not text>"))
        .chain(req.uri().authority().map(|a| a.as_str()))
        .find(|h| !is_allowed(h, allowed))
        .map(str::to_owned);
    match refused {
        None => next.run(req).await,
        Some(host) => {
            tracing::debug!(host = %host, "request for a host this server does not serve refused");
            let mut resp = ApiError::HostNotAllowed(host).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<AllowedHost> {
        ["jobs.example.com", "Metrics.Internal:9090"].iter().filter_map(|e| AllowedHost::parse(e)).collect()
    }

    #[test]
    fn loopback_ip_literals_and_allowed_names_are_served() {
        let a = allowed();
        for host in [
            "localhost",
            "LocalHost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.3.4.5:1",
            "[::1]",
            "[::1]:8080",
            "10.1.2.3:9090",
            "[fd00::7]:80",
            "jobs.example.com",
            "JOBS.example.com.:443",
            "metrics.internal:9090",
        ] {
            assert!(is_allowed(host, &a), "{host}");
        }
    }

    #[test]
    fn other_names_and_malformed_hosts_are_refused() {
        let a = allowed();
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "localhost.",
            "127.0.0.1.evil.example",
            "127.0.0.1.nip.io:8080",
            "example.com",
            "sub.jobs.example.com",
            "metrics.internal",
            "metrics.internal:9091",
            "",
            ":8080",
            "127.0.0.1:",
            "127.0.0.1:80:80",
            "127.0.0.1:99999",
            "127.0.0.1:+80",
            "[::1",
            "[::1]x",
            "[evil.example]",
            "user@127.0.0.1",
            "evil.example/127.0.0.1",
            "<not text>",
        ] {
            assert!(!is_allowed(host, &a), "{host}");
        }
    }

    #[test]
    fn allowed_entries_must_be_names() {
        assert_eq!(
            AllowedHost::parse(" Jobs.Example.COM. "),
            Some(AllowedHost { name: "jobs.example.com".into(), port: None })
        );
        assert_eq!(AllowedHost::parse("a.b:8443"), Some(AllowedHost { name: "a.b".into(), port: Some(8443) }));
        for bad in ["", " ", "https://jobs.example.com", "a.b:x", "a b", "a.b:"] {
            assert_eq!(AllowedHost::parse(bad), None, "{bad}");
        }
    }
}
