//! The webhook client: `reqwest` over rustls (HTTP/1.1, `http://` and
//! `https://`), with an address guard against server-side request forgery.
//!
//! Webhook URLs come from job payloads, so the client decides where it may
//! connect before it connects: a host name goes through [`guard`], the
//! client's DNS resolver, which checks every address the name resolves to
//! against the [`AddressPolicy`] and hands the connector only checked
//! addresses; an address written in the URL is checked by
//! [`HttpClient::post_json`] itself, since no resolver sees it. Proxies are
//! off (a proxy would resolve the name itself, past the guard), and
//! redirects are not followed: a 3xx answer is a permanent failure, since its
//! target was never checked.
//!
//! HTTPS servers are verified against the system's roots plus the
//! certificates of `app.notify.ca_file` (see [`crate::tls`]).

pub mod guard;
pub mod policy;
pub mod signature;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};

pub use guard::{Lookup, LookupFuture, StaticLookup, SystemLookup};
pub use policy::{non_public_kind, AddressPolicy, AllowEntryError, Refusal};
pub use signature::{SignatureError, WebhookSigner};

/// How much of a response body is kept for error messages.
const BODY_EXCERPT: usize = 200;

/// How much of a response body is read for that excerpt.
const BODY_READ_LIMIT: usize = 64 * 1024;

/// Why a POST did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an `http://` or `https://` URL with a host.
    #[error("{0}")]
    Url(String),
    /// No answer in time (resolving and connecting included).
    #[error("no answer from {url} within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// Where to.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// The target is, or resolves to, an address the [`AddressPolicy`]
    /// refuses; nothing was sent.
    #[error("{url}: refused before connecting: {refusal}")]
    Refused {
        /// Where to.
        url: String,
        /// Which address, and why.
        refusal: Refusal,
    },
    /// Resolving, connecting or the TLS handshake failed, or the connection
    /// broke.
    #[error("cannot reach {url}")]
    Connect {
        /// Where to.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
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
    /// Whether no retry can help: a bad or refused URL, or a 3xx or 4xx
    /// answer other than 408 (Request Timeout) and 429 (Too Many Requests).
    /// Timeouts, connection and TLS errors and 5xx answers are worth
    /// retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            HttpError::Url(_) | HttpError::Refused { .. } => true,
            HttpError::Timeout { .. } | HttpError::Connect { .. } => false,
            HttpError::Status { status, .. } => {
                !status.is_server_error()
                    && *status != StatusCode::REQUEST_TIMEOUT
                    && *status != StatusCode::TOO_MANY_REQUESTS
            }
        }
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    /// An `app.notify.allow` entry is not an address.
    #[error("app.notify.allow: {0}")]
    Allow(#[from] AllowEntryError),
    /// `app.notify.ca_file` could not be read.
    #[error("app.notify.ca_file: {0}")]
    CaFile(#[from] crate::tls::CaFileError),
    /// The CA file holds no certificate that parses.
    #[error("app.notify.ca_file: no PEM certificate in it")]
    Certificates(#[source] reqwest::Error),
    /// `reqwest` refused the configuration.
    #[error("cannot build the webhook client")]
    Client(#[source] reqwest::Error),
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host.
pub fn parse_http_url(url: &str) -> Result<Url, HttpError> {
    let masked = jobs_core::config::mask_url_password(url);
    let parsed = Url::parse(url).map_err(|e| HttpError::Url(format!("`{masked}` is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some() => Ok(parsed),
        _ => Err(HttpError::Url(format!("`{masked}` is not an http:// or https:// URL with a host"))),
    }
}

/// The address a URL names itself, if its host is an IP literal.
fn literal_address(url: &Url) -> Option<SocketAddr> {
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<IpAddr>().ok()?;
    Some(SocketAddr::new(ip, url.port_or_known_default()?))
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
    client: reqwest::Client,
    timeout: Duration,
    policy: Arc<AddressPolicy>,
}

/// Builds an [`HttpClient`]; from [`HttpClient::builder`].
pub struct HttpClientBuilder {
    timeout: Duration,
    policy: AddressPolicy,
    roots: Vec<reqwest::Certificate>,
    lookup: Arc<dyn Lookup>,
}

impl HttpClientBuilder {
    /// Trusts the certificates of `pem` (one or more PEM blocks) too, besides
    /// the system's roots.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, HttpSetupError> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(HttpSetupError::Certificates)?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// Looks host names up with `lookup` instead of the system's resolver.
    pub fn lookup(mut self, lookup: impl Lookup) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The client.
    pub fn build(self) -> Result<HttpClient, HttpSetupError> {
        crate::tls::install_ring_provider();
        let policy = Arc::new(self.policy);
        let resolver = guard::GuardedResolver { policy: policy.clone(), lookup: self.lookup };
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(resolver)
            .user_agent(concat!("background-jobs/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(self.roots)
            .build()
            .map_err(HttpSetupError::Client)?;
        Ok(HttpClient { client, timeout: self.timeout, policy })
    }
}

impl HttpClient {
    /// A client whose requests give up after `timeout`, connecting only to
    /// addresses `policy` allows, trusting the system's roots; change it
    /// with the builder's methods.
    pub fn builder(timeout: Duration, policy: AddressPolicy) -> HttpClientBuilder {
        HttpClientBuilder { timeout, policy, roots: Vec::new(), lookup: Arc::new(SystemLookup) }
    }

    /// The client `app.notify` configures (timeout, address policy, CA file).
    pub fn from_config(notify: &crate::config::NotifyConfig) -> Result<Self, HttpSetupError> {
        let mut builder = HttpClient::builder(notify.timeout, AddressPolicy::from_config(notify)?);
        if let Some(pem) = crate::tls::read_ca_file(notify.ca_file.as_deref())? {
            builder = builder.trust_pem(&pem)?;
        }
        builder.build()
    }

    /// POSTs `body` as JSON with extra `headers`; a non-2xx status is an error.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpReply, HttpError> {
        let parsed = parse_http_url(url)?;
        let shown = jobs_core::config::mask_url_password(url).into_owned();
        if let Some(addr) = literal_address(&parsed) {
            self.policy.check(addr).map_err(|refusal| HttpError::Refused { url: shown.clone(), refusal })?;
        }
        let mut request = self.client.post(parsed).header(CONTENT_TYPE, "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let mut response = request.send().await.map_err(|e| self.send_error(e, &shown))?;
        let status = response.status();
        if status.is_success() {
            return Ok(HttpReply { status });
        }
        // Keep the start of the body for the error; a broken body leaves it short.
        let mut bytes = Vec::new();
        while bytes.len() < BODY_READ_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let body = String::from_utf8_lossy(&bytes).chars().take(BODY_EXCERPT).collect::<String>();
        Err(HttpError::Status { url: shown, status, body: body.trim().to_owned() })
    }

    /// Sorts an error of `send`: the guard's refusal, a timeout, or a failure
    /// to reach the server.
    fn send_error(&self, e: reqwest::Error, shown: &str) -> HttpError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if let Some(refusal) = c.downcast_ref::<Refusal>() {
                return HttpError::Refused { url: shown.to_owned(), refusal: *refusal };
            }
            cause = c.source();
        }
        if e.is_timeout() {
            return HttpError::Timeout { url: shown.to_owned(), timeout: self.timeout };
        }
        HttpError::Connect { url: shown.to_owned(), source: e }
    }
}

#[cfg(test)]
mod tests;
