//! The address guard as the webhook client's DNS resolver: a host name is
//! resolved here, every address it resolves to is checked against the
//! [`AddressPolicy`], and the client connects only to the addresses this
//! returns, never to the name again (a second lookup could answer
//! differently: DNS rebinding). One refused address refuses the name: a name
//! that resolves to both public and internal addresses is trusted with
//! neither.
//!
//! Addresses written in the URL itself are never given to a resolver; the
//! client checks those before it sends anything (see
//! [`super::HttpClient::post_json`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::AddressPolicy;

/// A future of a [`Lookup`].
pub type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Where host names are looked up: the system's resolver
/// ([`SystemLookup`]), or a fixed table ([`StaticLookup`], for tests).
pub trait Lookup: Send + Sync + 'static {
    /// Every address `host` resolves to.
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// A fixed table of names and their addresses; any other name does not
/// resolve. Tests use it to point names at addresses without asking a DNS
/// server.
///
/// ```
/// use background_jobs::http::StaticLookup;
///
/// let table = StaticLookup::default().with("hooks.test", [[127, 0, 0, 1].into()]);
/// # let _ = table;
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticLookup(HashMap<String, Vec<IpAddr>>);

impl StaticLookup {
    /// The table with `name` resolving to `addrs`.
    pub fn with(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.0.insert(name.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }
}

impl Lookup for StaticLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("`{host}` is not in the table"))
            })
        })
    }
}

/// The resolver the webhook client is built with.
pub(super) struct GuardedResolver {
    pub(super) policy: Arc<AddressPolicy>,
    pub(super) lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup) = (self.policy.clone(), self.lookup.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = lookup.lookup(host.clone()).await?;
            if ips.is_empty() {
                return Err(
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("`{host}` has no address")).into()
                );
            }
            for ip in &ips {
                policy.check_resolved(*ip)?;
            }
            // Port 0: the connector puts the URL's port in.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
