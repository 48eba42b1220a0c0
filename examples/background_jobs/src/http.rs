//! A small HTTP client for webhooks, on the `hyper` that `axum` brings in
//! already (no second HTTP stack, no TLS: `http://` URLs only, see the crate
//! docs).
//!
//! Webhook URLs come from job payloads, so the client guards against
//! server-side request forgery: it resolves the host itself, checks every
//! address it resolves to against an [`AddressPolicy`] (loopback, private,
//! link-local and other non-public addresses are refused unless configured),
//! and then connects to a checked address, never to the name again (a second
//! lookup could answer differently). Redirects are not followed: a 3xx answer
//! is a permanent failure, since its target was never checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How much of a response body is kept for error messages.
const BODY_EXCERPT: usize = 200;

/// Why a POST did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an `http://` URL this client can reach.
    #[error("{0}")]
    Url(String),
    /// No answer in time (connecting included).
    #[error("no answer from {url} within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// Where to.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// The target resolves to an address the [`AddressPolicy`] refuses.
    #[error(
        "{url}: refused before connecting: {address} is a {kind} address; webhooks go to public addresses \
         only (set app.notify.allow_private: true, or list the address in app.notify.allow, to allow it)"
    )]
    Refused {
        /// Where to.
        url: String,
        /// The address refused.
        address: IpAddr,
        /// What kind of address it is (`loopback`, `private`, ...).
        kind: &'static str,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve the host of {url}")]
    Resolve {
        /// Where to.
        url: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed or broke.
    #[error("cannot reach {url}")]
    Connect {
        /// Where to.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// Where to.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
}

impl HttpError {
    /// Whether no retry can help: a bad URL, or a 3xx or 4xx answer other
    /// than 408 (Request Timeout) and 429 (Too Many Requests). Timeouts,
    /// connection errors and 5xx answers are worth retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            HttpError::Url(_) | HttpError::Refused { .. } => true,
            HttpError::Timeout { .. } | HttpError::Connect { .. } | HttpError::Resolve { .. } => false,
            HttpError::Status { status, .. } => {
                !status.is_server_error()
                    && *status != StatusCode::REQUEST_TIMEOUT
                    && *status != StatusCode::TOO_MANY_REQUESTS
            }
        }
    }
}

/// Checks that `url` is an absolute `http://` URL.
pub fn parse_http_url(url: &str) -> Result<Uri, HttpError> {
    let masked = jobs_core::config::mask_url_password(url);
    let uri: Uri = url.parse().map_err(|e| HttpError::Url(format!("`{masked}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(HttpError::Url(format!(
            "`{masked}`: https needs TLS, which this example leaves out to keep its build free of C code; \
             use http:// (e.g. behind a TLS-terminating proxy)"
        ))),
        _ => Err(HttpError::Url(format!("`{masked}` is not an http:// URL with a host"))),
    }
}

/// Which addresses the client may connect to: public ones, plus non-public
/// ones when `allow_private` is set or the address is listed in `allow`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_private: bool,
    allow: Vec<Allowed>,
}

/// An entry of `app.notify.allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// Any port of this address.
    Ip(IpAddr),
    /// This address and port only.
    Socket(SocketAddr),
}

/// An `app.notify.allow` entry that is neither an address nor an address
/// and port.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an IP address or address:port (e.g. \"127.0.0.1:9000\", \"[::1]:9000\", \"10.0.0.5\")")]
pub struct AllowEntryError(String);

impl AddressPolicy {
    /// Public addresses only.
    pub fn public_only() -> Self {
        AddressPolicy::default()
    }

    /// Every address (what `allow_private: true` configures).
    pub fn any() -> Self {
        AddressPolicy { allow_private: true, allow: Vec::new() }
    }

    /// The policy `app.notify` configures.
    pub fn from_config(notify: &crate::config::NotifyConfig) -> Result<Self, AllowEntryError> {
        let allow = notify
            .allow
            .iter()
            .map(|entry| {
                let e = entry.trim();
                e.parse::<SocketAddr>()
                    .map(Allowed::Socket)
                    .or_else(|_| e.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map(Allowed::Ip))
                    .map_err(|_| AllowEntryError(entry.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allow_private: notify.allow_private, allow })
    }

    /// `Err(kind)` when the client must not connect to `addr`, `kind`
    /// naming what sort of address it is.
    pub fn check(&self, addr: SocketAddr) -> Result<(), &'static str> {
        let Some(kind) = non_public_kind(addr.ip()) else {
            return Ok(());
        };
        let listed = self.allow.iter().any(|a| match *a {
            Allowed::Ip(ip) => same_ip(ip, addr.ip()),
            Allowed::Socket(s) => same_ip(s.ip(), addr.ip()) && s.port() == addr.port(),
        });
        if self.allow_private || listed {
            Ok(())
        } else {
            Err(kind)
        }
    }
}

/// Equal addresses, an IPv4-mapped IPv6 address equal to its IPv4 one.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified (\"this network\")",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_multicast() => "multicast",
        _ if a >= 240 => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that embed an IPv4 address are what that address is.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return v4_kind(embedded(hi, lo)),
        // 6to4 (2002::/16) reaches the IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => return v4_kind(embedded(hi, lo)),
        // Deprecated IPv4-compatible addresses (::a.b.c.d).
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local (private)",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        // Teredo tunnels to an address the prefix does not show.
        [0x2001, 0, ..] => "Teredo",
        _ => return None,
    })
}

/// What a successful POST got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status (2xx).
    pub status: StatusCode,
}

/// A pooled HTTP/1.1 client that connects only where its [`AddressPolicy`]
/// allows. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    policy: AddressPolicy,
}

impl HttpClient {
    /// A client whose requests give up after `timeout`, connecting only to
    /// addresses `policy` allows.
    pub fn new(timeout: Duration, policy: AddressPolicy) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        HttpClient { client: Client::builder(TokioExecutor::new()).build(connector), timeout, policy }
    }

    /// Every address `uri`'s host resolves to, each checked against the
    /// policy: one refused address refuses the URL (a name that resolves to
    /// both public and internal addresses is not trusted with either).
    pub async fn checked_addresses(&self, uri: &Uri, shown: &str) -> Result<Vec<SocketAddr>, HttpError> {
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(80);
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        let addrs: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| HttpError::Resolve { url: shown.to_owned(), source })?
                .collect(),
        };
        if addrs.is_empty() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address");
            return Err(HttpError::Resolve { url: shown.to_owned(), source });
        }
        for addr in &addrs {
            self.policy.check(*addr).map_err(|kind| HttpError::Refused {
                url: shown.to_owned(),
                address: addr.ip(),
                kind,
            })?;
        }
        Ok(addrs)
    }

    /// POSTs `body` as JSON with extra `headers`; a non-2xx status is an error.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpReply, HttpError> {
        let uri = parse_http_url(url)?;
        let shown = jobs_core::config::mask_url_password(url).into_owned();
        // The Host header names the host as written; the connection goes to
        // a checked address.
        let host_header = match uri.port() {
            Some(port) => format!("{}:{port}", uri.host().unwrap_or_default()),
            None => uri.host().unwrap_or_default().to_owned(),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let body = Bytes::from(body);
        let request_to = |addr: SocketAddr| {
            let target = Uri::builder()
                .scheme("http")
                .authority(addr.to_string())
                .path_and_query(path.as_str())
                .build()
                .map_err(|e| HttpError::Url(format!("`{shown}`: {e}")))?;
            let mut req = Request::post(target)
                .header(HOST, host_header.as_str())
                .header(CONTENT_TYPE, "application/json")
                .header(USER_AGENT, concat!("background-jobs/", env!("CARGO_PKG_VERSION")));
            for (name, value) in headers {
                req = req.header(*name, value.as_str());
            }
            req.body(Full::new(body.clone())).map_err(|e| HttpError::Url(format!("`{shown}`: {e}")))
        };
        let exchange = async {
            let addrs = self.checked_addresses(&uri, &shown).await?;
            let mut last = None;
            let mut answer = None;
            for addr in addrs {
                match self.client.request(request_to(addr)?).await {
                    Ok(resp) => {
                        answer = Some(resp);
                        break;
                    }
                    // Nothing was sent yet: the next address may answer.
                    Err(e) if e.is_connect() => last = Some(e),
                    Err(source) => return Err(HttpError::Connect { url: shown.clone(), source }),
                }
            }
            let resp = match (answer, last) {
                (Some(resp), _) => resp,
                (None, Some(source)) => return Err(HttpError::Connect { url: shown.clone(), source }),
                (None, None) => {
                    let source = std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address");
                    return Err(HttpError::Resolve { url: shown.clone(), source });
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(HttpReply { status });
            }
            // Keep the start of the body for the error; read at most 64 KiB.
            let body = Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).chars().take(BODY_EXCERPT).collect::<String>())
                .unwrap_or_default();
            Err(HttpError::Status { url: shown.clone(), status, body: body.trim().to_owned() })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(HttpError::Timeout { url: shown.clone(), timeout: self.timeout }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_classification() {
        assert!(parse_http_url("http://127.0.0.1:9/hook").is_ok());
        assert!(parse_http_url("https://example.com/hook").expect_err("tls").to_string().contains("TLS"));
        assert!(parse_http_url("/relative").is_err());
        let status = |s: u16| HttpError::Status {
            url: "u".into(),
            status: StatusCode::from_u16(s).unwrap_or(StatusCode::IM_A_TEAPOT),
            body: String::new(),
        };
        assert!(status(400).is_permanent());
        assert!(status(410).is_permanent());
        assert!(!status(429).is_permanent());
        assert!(!status(503).is_permanent());
        assert!(!HttpError::Timeout { url: "u".into(), timeout: Duration::from_secs(1) }.is_permanent());
        let refused = HttpError::Refused { url: "u".into(), address: IpAddr::from([10, 0, 0, 1]), kind: "private" };
        assert!(refused.is_permanent());
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn non_public_addresses_are_refused_unless_allowed() {
        let policy = AddressPolicy::public_only();
        for (target, kind) in [
            ("127.0.0.1:80", "loopback"),
            ("127.1.2.3:80", "loopback"),
            ("10.0.0.1:80", "private"),
            ("172.16.5.4:80", "private"),
            ("192.168.1.1:80", "private"),
            ("169.254.169.254:80", "link-local"),
            ("0.0.0.0:80", "unspecified"),
            ("100.100.100.200:80", "shared"),
            ("224.0.0.1:80", "multicast"),
            ("255.255.255.255:80", "reserved"),
            ("[::1]:80", "loopback"),
            ("[::]:80", "unspecified"),
            ("[fe80::1]:80", "link-local"),
            ("[fd00::1]:80", "unique local"),
            ("[::ffff:127.0.0.1]:80", "loopback"),
            ("[::ffff:169.254.169.254]:80", "link-local"),
            ("[64:ff9b::a00:1]:80", "private"),
            ("[2002:c0a8:101::1]:80", "private"),
        ] {
            let got = policy.check(addr(target)).expect_err(target);
            assert!(got.starts_with(kind), "{target}: {got}");
        }
        for target in ["93.184.216.34:80", "8.8.8.8:443", "[2606:4700::1111]:80", "[::ffff:8.8.8.8]:80"] {
            assert_eq!(policy.check(addr(target)), Ok(()), "{target} is public");
        }
        assert_eq!(AddressPolicy::any().check(addr("10.0.0.1:80")), Ok(()));
    }

    #[test]
    fn the_allow_list_names_addresses_or_one_port() {
        let notify = |allow: &[&str]| crate::config::NotifyConfig {
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let p = AddressPolicy::from_config(&notify(&["127.0.0.1:9000", "10.1.2.3", "[::1]"])).expect("valid");
        assert_eq!(p.check(addr("127.0.0.1:9000")), Ok(()));
        assert_eq!(p.check(addr("[::ffff:127.0.0.1]:9000")), Ok(()), "the mapped form is the same address");
        assert!(p.check(addr("127.0.0.1:8080")).is_err(), "another port of a listed address:port");
        assert_eq!(p.check(addr("10.1.2.3:1")), Ok(()));
        assert_eq!(p.check(addr("[::1]:7")), Ok(()));
        assert!(p.check(addr("10.1.2.4:80")).is_err());
        let e = AddressPolicy::from_config(&notify(&["example.com"])).expect_err("a name");
        assert!(e.to_string().contains("`example.com` is not an IP address"), "{e}");
    }

    #[tokio::test]
    async fn literal_targets_are_refused_before_any_connection() {
        let client = HttpClient::new(Duration::from_secs(5), AddressPolicy::public_only());
        for url in ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://192.168.1.1:8080/x"] {
            let e = client.post_json(url, &[], b"{}".to_vec()).await.expect_err(url);
            assert!(matches!(e, HttpError::Refused { .. }), "{url}: {e:?}");
            assert!(e.is_permanent());
            assert!(e.to_string().contains("refused before connecting"), "{e}");
        }
    }
}
