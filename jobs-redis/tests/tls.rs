//! `rediss://` (feature `tls`) against a `redis-server` listening with
//! `--tls-port`, with certificates this test generates (a CA, a server
//! certificate for 127.0.0.1, a client certificate): never committed, written
//! to a temporary directory.
//!
//! The whole conformance suite runs over TLS (the server requires a client
//! certificate); a missing client certificate or an untrusted server are
//! clear errors at connect.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{run, test_pool, unique_queue, wait_status};
use jobs_core::{JobExt, JobOptions, JobStatus};
use jobs_redis::testing::{RedisServer, ServerOptions, ServerTls};
use jobs_redis::{RedisConfig, RedisQueue, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The generated PEM files.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A CA, a server certificate for `127.0.0.1` and `localhost`, and a client
/// certificate, written as PEM files into `dir`.
fn generate(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "jobs-redis test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, cn: &str, file: &str| {
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    leaf(vec!["127.0.0.1".into(), "localhost".into()], "redis test server", "server");
    leaf(vec!["jobs-client".into()], "jobs test client", "client");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    Certs { dir: dir.to_owned() }
}

/// One TLS server (and its certificates) for this test binary.
fn server() -> &'static (RedisServer, Certs) {
    static SERVER: OnceLock<(RedisServer, Certs)> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Named like the servers' directories, so a later run removes it
        // once this process is gone.
        let dir = std::env::temp_dir().join(format!("jobs-redis-test-{}-certs", std::process::id()));
        let certs = generate(&dir);
        let tls = ServerTls {
            cert_file: certs.path("server.crt"),
            key_file: certs.path("server.key"),
            ca_file: certs.path("ca.crt"),
            require_client_cert: true,
        };
        let server = RedisServer::start_with(ServerOptions { tls: Some(tls), ..Default::default() });
        (server, certs)
    })
}

fn config(with_client_cert: bool) -> RedisConfig {
    let (server, certs) = server();
    let tls = TlsFiles {
        ca_file: Some(certs.path("ca.crt")),
        cert_file: with_client_cert.then(|| certs.path("client.crt")),
        key_file: with_client_cert.then(|| certs.path("client.key")),
    };
    RedisConfig { tls, ..RedisConfig::new(server.tls_url().unwrap()) }
}

jobs_core::conformance_suite!(|| async {
    let prefix = jobs_core::testing::unique_queue("jobs");
    RedisQueue::from_config(&RedisConfig { prefix, ..config(true) }).await.unwrap()
});

/// A job goes through a pool over TLS, and the plain port's clients see it
/// (the same server).
#[test]
fn jobs_run_over_tls() {
    run(async {
        let q = RedisQueue::from_config(&config(true)).await.unwrap();
        assert!(format!("{q:?}").contains("rediss://127.0.0.1"));
        let queue = unique_queue("tls");
        let id = ProbeJob { key: queue.clone(), seq: 1, act: Act::Succeed }
            .enqueue_with(&q, JobOptions::new().queue(&queue))
            .await
            .unwrap();
        let pool = test_pool(q.clone(), &[&queue]).start().unwrap();
        wait_status(&q, &id, JobStatus::Succeeded).await;
        pool.shutdown().await.unwrap();
        let plain = RedisQueue::connect(&server().0.url()).await.unwrap();
        assert_eq!(jobs_core::QueueInspect::job(&plain, &id).await.unwrap().unwrap().status, JobStatus::Succeeded);
    });
}

/// Connecting without the client certificate the server requires, or
/// without trusting its CA, fails at connect with a clear error.
#[test]
fn certificate_problems_are_clear_errors_at_connect() {
    run(async {
        let err = RedisQueue::from_config(&config(false)).await.unwrap_err().to_string();
        assert!(err.contains("cannot connect to Redis at rediss://127.0.0.1"), "{err}");
        let untrusted = RedisConfig { tls: TlsFiles::default(), ..config(false) };
        let err = RedisQueue::from_config(&untrusted).await.unwrap_err().to_string();
        assert!(err.contains("cannot connect") && err.to_lowercase().contains("certificate"), "{err}");
        let missing = RedisConfig {
            tls: TlsFiles { ca_file: Some("/nonexistent/ca.pem".into()), ..TlsFiles::default() },
            ..config(false)
        };
        let err = RedisQueue::from_config(&missing).await.unwrap_err().to_string();
        assert!(err.contains("invalid Redis configuration") && err.contains("/nonexistent/ca.pem"), "{err}");
        eprintln!("untrusted server: {err}");
    });
}
