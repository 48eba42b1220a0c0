//! What the example's TLS clients (webhooks, SMTP) share: rustls with the
//! ring crypto provider, and extra trusted certificates read from the files
//! the configuration names.
//!
//! Both clients verify servers against the system's roots (through
//! `rustls-platform-verifier`) plus those extra certificates: a private CA,
//! or a test's self-signed certificate. Verification is never turned off.

use std::path::Path;

/// A CA file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the CA file {path}")]
pub struct CaFileError {
    /// The file.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Makes ring the process's rustls crypto provider, unless one is installed
/// already (then that one is used).
///
/// `reqwest` is built without a provider of its own (its default, aws-lc-rs,
/// needs cmake and a C toolchain) and takes the process's; `lettre` takes
/// the process's too, else ring.
pub fn install_ring_provider() {
    // An error means a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM text of `path`, or `None` without a file.
pub fn read_ca_file(path: Option<&Path>) -> Result<Option<Vec<u8>>, CaFileError> {
    path.map(|p| std::fs::read(p).map_err(|source| CaFileError { path: p.display().to_string(), source })).transpose()
}
