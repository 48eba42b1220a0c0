//! What the TLS tests share: a self-signed certificate made for the test
//! (never committed), written as the PEM file a client is told to trust,
//! and the rustls server configuration that presents it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::support::TempDir;

/// A self-signed certificate for `localhost`, `127.0.0.1` and `hooks.test`.
pub struct TestCert {
    /// The certificate as PEM: what clients trust (`ca_file`).
    pub pem: String,
    /// The PEM file of it.
    pub ca_file: PathBuf,
    acceptor: TlsAcceptor,
    _dir: TempDir,
}

impl TestCert {
    pub fn new() -> Self {
        let names = ["localhost", "127.0.0.1", "hooks.test"].map(String::from).to_vec();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("a certificate");
        let dir = TempDir::new("tls");
        let ca_file = dir.0.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write the certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("a server configuration");
        TestCert { pem: cert.pem(), ca_file, acceptor: TlsAcceptor::from(Arc::new(config)), _dir: dir }
    }

    /// What accepts TLS connections with this certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}
