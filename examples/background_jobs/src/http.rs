//! A small HTTP client for webhooks, on the `hyper` that `axum` brings in
//! already (no second HTTP stack, no TLS: `http://` URLs only, see the crate
//! docs).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
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
            HttpError::Url(_) => true,
            HttpError::Timeout { .. } | HttpError::Connect { .. } => false,
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

/// What a successful POST got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status (2xx).
    pub status: StatusCode,
}

/// A pooled HTTP/1.1 client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        HttpClient { client: Client::builder(TokioExecutor::new()).build(connector), timeout }
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
        let mut req = Request::post(uri)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("background-jobs/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| HttpError::Url(format!("`{shown}`: {e}")))?;
        let exchange = async {
            let resp =
                self.client.request(req).await.map_err(|source| HttpError::Connect { url: shown.clone(), source })?;
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
    }
}
