//! Property tests of payload decoding, through the glue that
//! `#[job]` generates and workers call (`JobDescriptor::run`, and `check`,
//! which the command line's `enqueue` uses): arbitrary bytes, arbitrary JSON
//! values and objects with the right field names but arbitrary values never
//! panic, and every refusal is a clear error (`payload does not decode as
//! ..` or `invalid job payload: field ..`). Valid payloads always run.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64, kept small for
//! CI; e.g. `PROPTEST_CASES=100000` to fuzz for a while).

use std::collections::BTreeMap;

use jobs_core::backend::{JobDescriptor, PayloadFormat, RunError};
use jobs_core::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An enum field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mode {
    /// A unit variant.
    Fast,
    /// A struct variant.
    Slow {
        /// A small number.
        factor: u8,
    },
    /// A newtype variant.
    Custom(String),
}

/// A nested struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inner {
    id: u64,
    tags: BTreeMap<String, i32>,
}

/// Text fields with every text rule.
#[job(name = "fuzz.text", queue = "fuzz")]
async fn fuzz_text(
    #[validate(email)] email: String,
    #[validate(length(min = 1, max = 64))] name: String,
    #[validate(url)] site: Option<String>,
    #[validate(pattern = "^[a-z]+$")] slug: String,
) -> Result<usize, JobError> {
    Ok(email.len() + name.len() + site.map_or(0, |s| s.len()) + slug.len())
}

/// Numbers of every kind, with ranges.
#[job(name = "fuzz.numbers", queue = "fuzz")]
async fn fuzz_numbers(
    #[validate(range(min = 1, max = 10))] small: u8,
    big: u64,
    neg: i64,
    #[validate(range(min = 0.0, max = 1.0))] ratio: f64,
    flag: bool,
) -> Result<u64, JobError> {
    let _ = (neg, ratio, flag);
    Ok(big.wrapping_add(u64::from(small)))
}

/// Nested types, enums, boxes and collections.
#[job(name = "fuzz.nested", queue = "fuzz")]
async fn fuzz_nested(
    items: Vec<Inner>,
    mode: Mode,
    maybe: Option<Box<Inner>>,
    #[validate(length(max = 3))] list: Vec<u32>,
) -> Result<(), JobError> {
    let _ = (items, mode, maybe, list);
    Ok(())
}

const NAMES: [&str; 3] = ["fuzz.text", "fuzz.numbers", "fuzz.nested"];

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn descriptor(name: &str) -> &'static JobDescriptor {
    jobs_core::backend::descriptors().find(|d| d.name == name).expect("the fuzz jobs are linked")
}

/// Runs one job's handler on `payload` as a worker would.
fn run(name: &str, payload: &[u8]) -> Result<Option<Vec<u8>>, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on((descriptor(name).run)(JobContext::for_test(name), PayloadFormat::of(payload), payload))
}

/// Every job, on `payload`: no panic (the test fails on one), and any
/// refusal is a decode or validation error with a clear message.
fn decode_everywhere(payload: &[u8]) -> Result<(), TestCaseError> {
    for name in NAMES {
        match run(name, payload) {
            Ok(_) => {}
            Err(e @ RunError::Decode { .. }) => {
                prop_assert!(e.to_string().starts_with("payload does not decode as "), "{e}");
                prop_assert!(!e.is_retryable());
            }
            Err(e @ RunError::Invalid(_)) => {
                prop_assert!(e.to_string().starts_with("invalid job payload: field `"), "{e}");
            }
            Err(e) => prop_assert!(false, "{name}: unexpected error kind: {e}"),
        }
        match (descriptor(name).check)(payload) {
            Ok(canonical) => prop_assert!(run(name, &canonical).is_ok(), "{name}: a checked payload must run"),
            Err(e) => {
                let m = e.to_string();
                prop_assert!(
                    m.starts_with("payload does not decode as ") || m.starts_with("invalid job payload"),
                    "{m}"
                );
            }
        }
    }
    Ok(())
}

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z]{1,12}(@[a-z]{1,8}\\.[a-z]{2,3})?".prop_map(Value::String),
        Just(Value::String("https://example.com/x".into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The field names of the fuzz jobs and of their nested types, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "email", "name", "site", "slug", "small", "big", "neg", "ratio", "flag", "items", "mode", "maybe",
            "list", "id", "tags", "factor", "Fast", "Slow", "Custom",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everywhere(&bytes)?;
    }

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        decode_everywhere(&serde_json::to_vec(&v).expect("JSON"))?;
    }

    #[test]
    fn right_fields_with_arbitrary_values_never_panic(
        fields in prop::collection::btree_map(field_name(), json(), 0..12)
    ) {
        decode_everywhere(&serde_json::to_vec(&fields).expect("JSON"))?;
    }

    #[test]
    fn valid_payloads_always_run(
        email in "[a-z]{1,10}@[a-z]{1,10}\\.com",
        name in "[a-zA-Z ]{1,64}",
        slug in "[a-z]{1,20}",
        small in 1u8..=10,
        big in any::<u64>(),
        neg in any::<i64>(),
        ratio in 0.0f64..=1.0,
        list in prop::collection::vec(any::<u32>(), 0..=3),
    ) {
        let text = serde_json::to_vec(&FuzzText { email, name, site: None, slug }).expect("JSON");
        prop_assert!(run("fuzz.text", &text).is_ok());
        let numbers = serde_json::to_vec(&FuzzNumbers { small, big, neg, ratio, flag: true }).expect("JSON");
        prop_assert!(run("fuzz.numbers", &numbers).is_ok());
        let nested = FuzzNested { items: vec![], mode: Mode::Slow { factor: small }, maybe: None, list };
        prop_assert!(run("fuzz.nested", &serde_json::to_vec(&nested).expect("JSON")).is_ok());
    }
}

#[test]
fn pathological_payloads_are_refused_cleanly() {
    for payload in [
        "[".repeat(200_000).into_bytes(),
        "{\"a\":".repeat(100_000).into_bytes(),
        vec![0xff; 1024],
        b"\xef\xbb\xbf{}".to_vec(),
        format!("{{\"email\":\"{}\"}}", "\\ud800".repeat(1000)).into_bytes(),
        b"{\"small\":1e999999}".to_vec(),
        b"{\"big\":18446744073709551616}".to_vec(),
    ] {
        decode_everywhere(&payload).expect("a clear refusal");
    }
}
