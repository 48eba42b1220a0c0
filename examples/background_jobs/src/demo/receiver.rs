//! The demo's webhook receiver, on 127.0.0.1 at a free port: `POST /hooks`
//! accepts events (answering 503 to the first attempt of an event whose
//! data has `"fail_first": true`, to show a retry), `POST /hooks/gone`
//! answers 410 Gone (to show a permanent failure). Every request must carry
//! a valid `X-Webhook-Signature` (401 otherwise), checked as any receiver
//! would check it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use jobs_web::axum::body::Bytes;
use jobs_web::axum::extract::State;
use jobs_web::axum::http::{HeaderMap, StatusCode};
use jobs_web::axum::routing::post;
use jobs_web::axum::Router;
use tokio::sync::oneshot;

use crate::http::signature::{self, WebhookSigner};

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The event name.
    pub event: String,
    /// `X-Webhook-Attempt`.
    pub attempt: u32,
    /// What it answered.
    pub status: u16,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    log: Log,
    signer: WebhookSigner,
}

/// A running receiver; stopped on drop.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    log: Log,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Binds a free port on 127.0.0.1 and serves, accepting requests
    /// signed by `signer`'s secret.
    pub async fn start(signer: WebhookSigner) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let log = Log::default();
        let app = Router::new()
            .route("/hooks", post(|s, h, b| handle(s, h, b, false)))
            .route("/hooks/gone", post(|s, h, b| handle(s, h, b, true)))
            .with_state(Shared { log: log.clone(), signer });
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = jobs_web::axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::warn!("the demo webhook receiver stopped: {e}");
            }
        });
        Ok(Receiver { base_url: format!("http://{addr}"), addr, log, stop: Some(tx) })
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn handle(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
    gone: bool,
) -> (StatusCode, &'static str) {
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let attempt =
        headers.get("x-webhook-attempt").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
    let signature = headers.get(signature::HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let verified = shared.signer.verify(signature, &body, SystemTime::now(), signature::DEFAULT_TOLERANCE);
    let (status, text) = if verified.is_err() {
        (StatusCode::UNAUTHORIZED, "bad signature")
    } else if gone {
        (StatusCode::GONE, "this endpoint was retired")
    } else if doc["data"]["fail_first"] == true && attempt == 1 {
        (StatusCode::SERVICE_UNAVAILABLE, "busy, try again later")
    } else {
        (StatusCode::OK, "ok")
    };
    let event = doc["event"].as_str().unwrap_or_default().to_owned();
    let path = if gone { "/hooks/gone" } else { "/hooks" }.to_owned();
    shared.log.lock().unwrap_or_else(|p| p.into_inner()).push(Received {
        path,
        event,
        attempt,
        status: status.as_u16(),
    });
    (status, text)
}
