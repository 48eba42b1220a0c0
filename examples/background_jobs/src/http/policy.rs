//! Which addresses the webhook client may connect to.
//!
//! Webhook URLs come from job payloads, so a URL must not reach internal
//! services (server-side request forgery): loopback, private, link-local and
//! other non-public addresses are refused unless the configuration allows
//! them, and public ones can be refused too (`app.notify.allow_public:
//! false`, what the tests set so that nothing they run leaves loopback).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which addresses the client may connect to: public ones (unless
/// `allow_public` is off), plus non-public ones when `allow_private` is set
/// or the address is listed in `allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_public: bool,
    allow_private: bool,
    allow: Vec<Allowed>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy { allow_public: true, allow_private: false, allow: Vec::new() }
    }
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

/// Why the policy refuses an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{address} is a {kind} address; {}", self.hint())]
pub struct Refusal {
    /// The address refused.
    pub address: IpAddr,
    /// What kind of address it is (`public`, `loopback`, `private`, ...).
    pub kind: &'static str,
    /// Whether `app.notify.allow` lists this address with a port, which a
    /// host name's addresses cannot use (see [`AddressPolicy::check_resolved`]).
    pub listed_with_port: bool,
}

impl Refusal {
    fn hint(&self) -> &'static str {
        if self.kind == "public" {
            "app.notify.allow_public is off"
        } else if self.listed_with_port {
            "app.notify.allow lists it with a port, which applies to URLs that name the address itself; \
             for a host name that resolves to it, list the address without a port"
        } else {
            "webhooks go to public addresses only (set app.notify.allow_private: true, or list the address \
             in app.notify.allow, to allow it)"
        }
    }
}

impl AddressPolicy {
    /// Public addresses only.
    pub fn public_only() -> Self {
        AddressPolicy::default()
    }

    /// Every address (what `allow_private: true` configures).
    pub fn any() -> Self {
        AddressPolicy { allow_private: true, ..AddressPolicy::default() }
    }

    /// Loopback addresses only (127.0.0.0/8, ::1): what tests use, so that
    /// no request of theirs can leave the machine.
    pub fn loopback_only() -> Self {
        AddressPolicy {
            allow_public: false,
            allow_private: false,
            allow: vec![Allowed::Ip(Ipv4Addr::LOCALHOST.into()), Allowed::Ip(Ipv6Addr::LOCALHOST.into())],
        }
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
        Ok(AddressPolicy { allow_public: notify.allow_public, allow_private: notify.allow_private, allow })
    }

    /// Whether the client may connect to `addr`, a URL's own address and
    /// port (an IP literal).
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refusal> {
        self.decide(addr.ip(), Some(addr.port()))
    }

    /// Whether the client may connect to `ip`, an address a host name
    /// resolved to. The resolver is not told the URL's port, so only
    /// `allow` entries without a port apply here: an `address:port` entry
    /// allows URLs that name the address itself.
    pub fn check_resolved(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.decide(ip, None)
    }

    fn decide(&self, ip: IpAddr, port: Option<u16>) -> Result<(), Refusal> {
        let listed = self.allow.iter().any(|a| match *a {
            Allowed::Ip(allowed) => same_ip(allowed, ip),
            Allowed::Socket(s) => same_ip(s.ip(), ip) && Some(s.port()) == port,
        });
        let kind = match non_public_kind(ip) {
            None if self.allow_public || listed => return Ok(()),
            None => "public",
            Some(_) if self.allow_private || listed => return Ok(()),
            Some(kind) => kind,
        };
        let listed_with_port =
            port.is_none() && self.allow.iter().any(|a| matches!(*a, Allowed::Socket(s) if same_ip(s.ip(), ip)));
        Err(Refusal { address: ip, kind, listed_with_port })
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(got.kind.starts_with(kind), "{target}: {got}");
            assert_eq!(policy.check_resolved(addr(target).ip()), Err(got), "{target}: the same without a port");
        }
        for target in ["93.184.216.34:80", "8.8.8.8:443", "[2606:4700::1111]:80", "[::ffff:8.8.8.8]:80"] {
            assert_eq!(policy.check(addr(target)), Ok(()), "{target} is public");
        }
        assert_eq!(AddressPolicy::any().check(addr("10.0.0.1:80")), Ok(()));
    }

    #[test]
    fn loopback_only_refuses_public_and_private_addresses() {
        let policy = AddressPolicy::loopback_only();
        for ok in ["127.0.0.1:443", "[::1]:8443", "[::ffff:127.0.0.1]:80"] {
            assert_eq!(policy.check(addr(ok)), Ok(()), "{ok}");
        }
        assert_eq!(policy.check_resolved(IpAddr::from([127, 0, 0, 1])), Ok(()));
        let public = policy.check(addr("93.184.216.34:443")).expect_err("public");
        assert_eq!(public.kind, "public");
        assert!(public.to_string().contains("app.notify.allow_public is off"), "{public}");
        assert_eq!(policy.check_resolved(IpAddr::from([10, 0, 0, 1])).map_err(|r| r.kind), Err("private"));
        // 127.1.2.3 is loopback too, but not the listed 127.0.0.1.
        assert!(policy.check(addr("127.1.2.3:80")).is_err());
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
        assert_eq!(p.check_resolved(IpAddr::from([10, 1, 2, 3])), Ok(()), "an entry without a port");
        let e = p.check_resolved(IpAddr::from([127, 0, 0, 1])).expect_err("listed with a port only");
        assert!(e.listed_with_port && e.to_string().contains("without a port"), "{e}");
        let e = AddressPolicy::from_config(&notify(&["example.com"])).expect_err("a name");
        assert!(e.to_string().contains("`example.com` is not an IP address"), "{e}");
    }
}
