//! The dashboard under `/ui/`: hand-written HTML, CSS and JavaScript
//! modules embedded in the binary (no build step), served with a strict
//! Content-Security-Policy. The pages read and act through `/api`.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::state::WebState;

/// Scripts and styles only from this server, no inline code, no framing, no
/// form posts, and requests only to this server: data that reaches a page
/// (payloads, errors) cannot run or load anything even if it slipped past
/// the pages' escaping.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset { name: $name, mime: $mime, body: include_bytes!(concat!("../ui/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("core.js", JS),
    asset!("chart.js", JS),
    asset!("overview.js", JS),
    asset!("queue.js", JS),
    asset!("job.js", JS),
    asset!("dead.js", JS),
    asset!("ops.js", JS),
    asset!("flows.js", JS),
];

/// FNV-1a, for the assets' ETags (they change only with the binary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The routes `/ui` (a redirect to `/ui/`), `/ui/` and `/ui/{file}`.
pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        // Relative, so that it also works when the router is nested under a prefix.
        .route("/ui", get(|| async { Redirect::temporary("ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/ui/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }))
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return secured((StatusCode::NOT_FOUND, "no such file in the dashboard\n").into_response());
    };
    let etag = format!("\"{:016x}\"", fnv1a(asset.body));
    let fresh = request.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.mime)], asset.body).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    secured(resp)
}

/// The security headers of every `/ui` answer.
fn secured(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Revalidated on every load (cheap: 304 by ETag), so an upgrade shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_embedded_and_named_once() {
        let mut names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
