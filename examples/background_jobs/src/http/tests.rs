//! The client's URL checks and error sorting, and the guard: every test
//! here is refused before a connection is attempted, so nothing leaves the
//! process.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

#[test]
fn urls_and_classification() {
    assert!(parse_http_url("http://127.0.0.1:9/hook").is_ok());
    assert!(parse_http_url("https://example.com/hook").is_ok());
    assert!(parse_http_url("/relative").is_err());
    assert!(parse_http_url("ftp://example.com/x").expect_err("ftp").to_string().contains("http:// or https://"));
    let status = |s: u16| HttpError::Status {
        url: "u".into(),
        status: StatusCode::from_u16(s).unwrap_or(StatusCode::IM_A_TEAPOT),
        body: String::new(),
    };
    assert!(status(301).is_permanent());
    assert!(status(400).is_permanent());
    assert!(status(410).is_permanent());
    assert!(!status(429).is_permanent());
    assert!(!status(503).is_permanent());
    assert!(!HttpError::Timeout { url: "u".into(), timeout: Duration::from_secs(1) }.is_permanent());
    let refusal = Refusal { address: IpAddr::from([10, 0, 0, 1]), kind: "private", listed_with_port: false };
    assert!(HttpError::Refused { url: "u".into(), refusal }.is_permanent());
}

fn client(policy: AddressPolicy, lookup: StaticLookup) -> HttpClient {
    HttpClient::builder(Duration::from_secs(5), policy).lookup(lookup).build().expect("client")
}

/// Addresses written in the URL: no resolver sees them, the client checks
/// them itself, with their port.
#[tokio::test]
async fn literal_targets_are_refused_before_any_connection() {
    let c = client(AddressPolicy::loopback_only(), StaticLookup::default());
    for (url, kind) in [
        ("http://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://192.168.1.1:8080/x", "private"),
        ("https://[fd00::1]/hook", "unique local"),
        ("https://93.184.216.34/hook", "public"),
        ("http://167772161/hook", "private"),
    ] {
        let e = c.post_json(url, &[], b"{}".to_vec()).await.expect_err(url);
        let HttpError::Refused { refusal, .. } = &e else { panic!("{url}: not refused: {e:?}") };
        assert!(refusal.kind.starts_with(kind), "{url}: {e}");
        assert!(e.is_permanent());
        assert!(e.to_string().contains("refused before connecting"), "{e}");
    }
    // Other spellings of an address are addresses too (167772161 above is 10.0.0.1).
    let url = parse_http_url("http://0x7f.1:8080/x").expect("a URL");
    assert_eq!(literal_address(&url), Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
    let url = parse_http_url("https://[::ffff:a00:1]/x").expect("a URL");
    assert_eq!(literal_address(&url), Some("[::ffff:10.0.0.1]:443".parse().expect("addr")));
}

/// Host names: the guard resolves them (here from a table, no DNS server
/// asked) and refuses the name when any of its addresses is refused, before
/// any connection.
#[tokio::test]
async fn names_resolving_to_refused_addresses_are_refused_before_connecting() {
    let table = StaticLookup::default()
        .with("internal.test", [IpAddr::from([10, 0, 0, 1])])
        .with("metadata.test", [IpAddr::from([169, 254, 169, 254])])
        .with("public.test", [IpAddr::from([93, 184, 216, 34])])
        .with("v6.test", ["fe80::1".parse().expect("v6")])
        // One good address does not save a name with a bad one.
        .with("mixed.test", [IpAddr::from([127, 0, 0, 1]), IpAddr::from([192, 168, 0, 10])]);
    let c = client(AddressPolicy::loopback_only(), table);
    for (url, address, kind) in [
        ("https://internal.test/hook", "10.0.0.1", "private"),
        ("http://metadata.test/latest/meta-data/", "169.254.169.254", "link-local"),
        ("https://public.test/hook", "93.184.216.34", "public"),
        ("https://v6.test:8443/hook", "fe80::1", "link-local"),
        ("https://mixed.test/hook", "192.168.0.10", "private"),
    ] {
        let e = c.post_json(url, &[], b"{}".to_vec()).await.expect_err(url);
        let HttpError::Refused { refusal, .. } = &e else { panic!("{url}: not refused by the guard: {e:?}") };
        assert_eq!((refusal.address.to_string().as_str(), refusal.kind), (address, kind), "{url}");
        assert!(e.is_permanent() && e.to_string().contains("refused before connecting"), "{e}");
    }
    // A name the table lacks does not resolve: a retryable connection error.
    let e = c.post_json("https://unknown.test/hook", &[], b"{}".to_vec()).await.expect_err("unknown");
    assert!(matches!(e, HttpError::Connect { .. }) && !e.is_permanent(), "{e:?}");
}
