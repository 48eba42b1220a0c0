//! Webhooks over HTTPS, signed, against a receiver on 127.0.0.1 that
//! presents a self-signed certificate (trusted through `app.notify.ca_file`,
//! never by turning verification off) and checks every signature as a real
//! receiver would; and the address guard deciding on a host name's
//! addresses before any connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use background_jobs::http::signature::{self, SignatureError, WebhookSigner, DEFAULT_TOLERANCE};
use background_jobs::http::{AddressPolicy, HttpClient, HttpError, StaticLookup};
use background_jobs::jobs::notify::{SendWebhook, WebhookDelivery};
use jobs_core::prelude::*;
use jobs_web::axum::body::Bytes;
use jobs_web::axum::extract::{Path, State};
use jobs_web::axum::http::{HeaderMap, StatusCode};
use jobs_web::axum::routing::post;
use jobs_web::axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::support::{dead_after, succeeded, Harness};
use crate::tls::TestCert;

const SECRET: &str = "whsec_test_secret";

/// What the receiver decided about one request.
#[derive(Debug, Clone)]
struct Verdict {
    route: String,
    event: String,
    result: Result<u64, SignatureError>,
}

#[derive(Clone)]
struct Receiver {
    verdicts: Arc<Mutex<Vec<Verdict>>>,
    /// TCP connections accepted, handshakes included or not.
    connections: Arc<AtomicUsize>,
}

/// Accepts TCP connections on 127.0.0.1 and serves HTTPS on them, counting
/// each connection before its handshake.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    connections: Arc<AtomicUsize>,
}

impl jobs_web::axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            self.connections.fetch_add(1, Ordering::SeqCst);
            // A client that refuses the certificate aborts its handshake.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// `POST /{route}` checks the signature with the shared secret, the
/// receiver's clock moved by the route: `/hook` (now), `/later` (ten
/// minutes ahead: a replay, as it sees it) and `/other-secret` (checks with
/// another secret). 204 when it verifies, 401 otherwise.
async fn receiver(cert: &TestCert) -> (SocketAddr, Receiver) {
    let state = Receiver { verdicts: Arc::default(), connections: Arc::default() };
    let app = Router::new()
        .route(
            "/{route}",
            post(|State(r): State<Receiver>, Path(route): Path<String>, h: HeaderMap, body: Bytes| async move {
                let (secret, now) = match route.as_str() {
                    "later" => (SECRET, SystemTime::now() + Duration::from_secs(600)),
                    "other-secret" => ("another secret", SystemTime::now()),
                    _ => (SECRET, SystemTime::now()),
                };
                let header = h.get(signature::HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let result = WebhookSigner::new(secret.as_bytes()).verify(header, &body, now, DEFAULT_TOLERANCE);
                let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let event = doc["event"].as_str().unwrap_or_default().to_owned();
                let status = if result.is_ok() { StatusCode::NO_CONTENT } else { StatusCode::UNAUTHORIZED };
                r.verdicts.lock().expect("lock").push(Verdict { route, event, result });
                status
            }),
        )
        .with_state(state.clone());
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener { tcp, acceptor: cert.acceptor(), connections: state.connections.clone() };
    tokio::spawn(async move { jobs_web::axum::serve(listener, app).await });
    (addr, state)
}

impl Receiver {
    fn verdicts(&self) -> Vec<Verdict> {
        self.verdicts.lock().expect("lock").clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhooks_are_signed_and_the_receiver_refuses_stale_and_wrong_signatures() {
    let cert = TestCert::new();
    let (addr, rx) = receiver(&cert).await;
    let h = Harness::start(|s| {
        s.app.notify.signing_secret = Some(SECRET.into());
        s.app.notify.ca_file = Some(cert.ca_file.clone());
        // Loopback, this port only: allowed explicitly.
        s.app.notify.allow = vec![addr.to_string()];
    })
    .await;
    let q = &h.app.queue;
    let hook = |event: &str, route: &str| {
        SendWebhook::new(event.into(), serde_json::json!({ "n": 1 }), Some(format!("https://{addr}/{route}")))
    };
    let ok = hook("order.paid", "hook").enqueue(q).await.expect("valid");
    let stale = hook("order.stale", "later").enqueue(q).await.expect("valid");
    let wrong = hook("order.wrong", "other-secret").enqueue(q).await.expect("valid");

    let d: WebhookDelivery = serde_json::from_value(succeeded(&h.finished(&ok).await)).expect("delivery");
    assert_eq!((d.status, d.url.as_str()), (204, format!("https://{addr}/hook").as_str()));
    for id in [&stale, &wrong] {
        let err = dead_after(&h.finished(id).await, 1);
        assert!(err.contains("401 Unauthorized"), "a refused signature is permanent: {err}");
    }

    let verdicts = rx.verdicts();
    let of =
        |event: &str| verdicts.iter().find(|v| v.event == event).unwrap_or_else(|| panic!("{event}: {verdicts:?}"));
    let signed_at = of("order.paid").result.clone().expect("the receiver verified the signature");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs();
    assert!(now.abs_diff(signed_at) < 60, "signed at send time: {signed_at} vs {now}");
    assert!(matches!(of("order.stale").result, Err(SignatureError::Stale { .. })), "{verdicts:?}");
    assert_eq!(of("order.wrong").result, Err(SignatureError::Mismatch));
    assert_eq!(of("order.stale").route, "later");
    assert_eq!(verdicts.len(), 3, "one request each: {verdicts:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_client_was_not_told_to_trust_fails_the_handshake() {
    let cert = TestCert::new();
    let (addr, rx) = receiver(&cert).await;
    let h = Harness::start(|s| {
        s.app.notify.signing_secret = Some(SECRET.into());
        s.app.notify.allow = vec![addr.to_string()];
    })
    .await;
    let id = SendWebhook::new("a.b".into(), serde_json::Value::Null, Some(format!("https://{addr}/hook")))
        .enqueue_with(&h.app.queue, JobOptions::new().max_retries(0))
        .await
        .expect("valid");
    let err = dead_after(&h.finished(&id).await, 1);
    assert!(err.contains("cannot reach") && err.contains("certificate"), "{err}");
    assert!(rx.verdicts().is_empty(), "no request was sent");
    assert!(rx.connections.load(Ordering::SeqCst) >= 1, "the client connected and refused the certificate");
    h.stop().await;
}

fn client(cert: &TestCert, policy: AddressPolicy, lookup: StaticLookup) -> HttpClient {
    HttpClient::builder(Duration::from_secs(5), policy)
        .lookup(lookup)
        .trust_pem(cert.pem.as_bytes())
        .expect("the certificate parses")
        .build()
        .expect("a client")
}

/// A host name goes through the guard: resolved (here from a table, no DNS
/// server asked), every address checked, and only then connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_decides_on_a_names_addresses_before_connecting() {
    let cert = TestCert::new();
    let (addr, rx) = receiver(&cert).await;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let table = StaticLookup::default()
        .with("hooks.test", [loopback])
        // The receiver's address first: a client without the guard would
        // connect to it.
        .with("mixed.test", [loopback, IpAddr::from([10, 0, 0, 1])])
        .with("metadata.test", [IpAddr::from([169, 254, 169, 254])])
        .with("public.test", [IpAddr::from([93, 184, 216, 34])]);
    let signer = WebhookSigner::new(SECRET.as_bytes());
    let body = br#"{"event":"by.name"}"#.to_vec();
    let headers = [(signature::HEADER, signer.sign_now(&body))];
    let port = addr.port();

    let c = client(&cert, AddressPolicy::loopback_only(), table.clone());
    for (host, kind) in [("mixed.test", "private"), ("metadata.test", "link-local"), ("public.test", "public")] {
        let e = c.post_json(&format!("https://{host}:{port}/hook"), &headers, body.clone()).await.expect_err(host);
        let HttpError::Refused { refusal, .. } = &e else { panic!("{host}: {e:?}") };
        assert_eq!(refusal.kind, kind, "{host}");
    }
    // Loopback itself is refused by a policy that does not allow it.
    let public_only = client(&cert, AddressPolicy::public_only(), table.clone());
    let e = public_only.post_json(&format!("https://hooks.test:{port}/hook"), &headers, body.clone()).await;
    assert!(matches!(&e, Err(HttpError::Refused { refusal, .. }) if refusal.kind == "loopback"), "{e:?}");
    assert_eq!(rx.connections.load(Ordering::SeqCst), 0, "no connection was attempted");

    // Allowed, the name reaches the receiver, whose certificate is checked
    // against the name (SNI hooks.test).
    let reply = c.post_json(&format!("https://hooks.test:{port}/hook"), &headers, body).await.expect("delivered");
    assert_eq!(reply.status, 204);
    assert_eq!(rx.connections.load(Ordering::SeqCst), 1);
    let verdicts = rx.verdicts();
    assert_eq!(verdicts.len(), 1);
    assert!(verdicts[0].result.is_ok() && verdicts[0].event == "by.name", "{verdicts:?}");
}
