//! Property tests: the attribute parser and the rules behind it
//! never panic, whatever tokens they are given, and report every problem as
//! a spanned error.
//!
//! Two generators: any text that lexes as Rust tokens, and token lists built
//! from the attribute's own vocabulary (its keys, `=`, literals of every
//! kind, paths, nested groups, stray punctuation), which reach much deeper
//! into the parser than random text does. Each case runs the whole pipeline
//! of the macro: `parse_args`, `parse_params` (with the tokens also used as
//! a `#[validate(..)]` list), `check`, and `expand` when no error was found.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64, kept small for
//! CI; run with e.g. `PROPTEST_CASES=200000` to fuzz for a while).

use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::check::check;
use crate::errors::Errors;
use crate::expand::expand;
use crate::parse::{parse_args, parse_params};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Runs the macro's pipeline on attribute tokens and one parameter
/// attribute; panics only if the macro code does. Returns whether it
/// expanded (no error found).
fn pipeline(attr: TokenStream, validate: &str) -> bool {
    let mut errors = Errors::default();
    let args = parse_args(attr, &mut errors);
    let src = format!(
        "async fn fuzzed(ctx: JobContext, #[validate({validate})] field: String, n: Option<u32>) -> Result<(), JobError> {{ Ok(()) }}"
    );
    // Tokens that do not make a valid attribute list leave the item itself
    // unparsable, as rustc would refuse it before the macro ran.
    let mut func: syn::ItemFn = match syn::parse_str(&src) {
        Ok(f) => f,
        Err(_) => syn::parse_str("async fn fuzzed() -> Result<(), JobError> { Ok(()) }").expect("a valid fn"),
    };
    let params = parse_params(&mut func, &mut errors);
    let settings = check(&args, &func.sig, &params, &mut errors);
    match (errors.into_tokens(), settings) {
        (None, Some(settings)) => !expand(&settings, &func, &params).is_empty(),
        (Some(tokens), _) => {
            assert!(!tokens.is_empty(), "an error is reported as tokens");
            false
        }
        (None, None) => panic!("no settings and no error"),
    }
}

/// One token of the attribute's vocabulary.
fn vocab() -> impl Strategy<Value = String> {
    let keys = prop_oneof![
        Just("queue"),
        Just("priority"),
        Just("retries"),
        Just("timeout"),
        Just("unique_for"),
        Just("expires"),
        Just("group"),
        Just("concurrency"),
        Just("name"),
        Just("cron"),
        Just("every"),
        Just("timezone"),
        Just("crate"),
        Just("register"),
        Just("email"),
        Just("url"),
        Just("non_empty"),
        Just("length"),
        Just("range"),
        Just("pattern"),
        Just("custom"),
        Just("min"),
        Just("max"),
        Just("self"),
        Just("r#type"),
        Just("jobs_core"),
        Just("queu"),
    ]
    .prop_map(str::to_owned);
    let punct = prop_oneof![
        Just("="),
        Just(","),
        Just(";"),
        Just("::"),
        Just("-"),
        Just("#"),
        Just("!"),
        Just("."),
        Just("=>"),
        Just("'a"),
        Just("&"),
    ]
    .prop_map(str::to_owned);
    let strings = prop_oneof![
        any::<String>(),
        Just(String::new()),
        Just("30s".to_owned()),
        Just("1h 30m".to_owned()),
        Just("0 0 3 * * *".to_owned()),
        Just("*/5 * * * *".to_owned()),
        Just("Europe/Berlin".to_owned()),
        Just("critical".to_owned()),
        Just("^[a-z]+$".to_owned()),
        Just("(((((".to_owned()),
        Just("a{99999}{99999}".to_owned()),
        "[a-z.:_-]{0,80}",
        "[0-9 */,-]{0,40}",
    ]
    .prop_map(|s| format!("{s:?}"));
    let numbers = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u128>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        Just("1e400".to_owned()),
        Just("0x_ff".to_owned()),
        Just("1u8".to_owned()),
        Just("3i128".to_owned()),
        Just("true".to_owned()),
        Just("b'a'".to_owned()),
        Just("'c'".to_owned()),
        Just("br\"raw\"".to_owned()),
    ];
    prop_oneof![4 => keys, 3 => punct, 3 => strings, 2 => numbers]
}

/// A token list of the vocabulary, with nested groups.
fn tokens() -> impl Strategy<Value = String> {
    let flat = prop::collection::vec(vocab(), 0..12).prop_map(|v| v.join(" "));
    flat.prop_recursive(3, 48, 6, |inner| {
        prop::collection::vec(
            prop_oneof![
                3 => vocab(),
                1 => inner.clone().prop_map(|t| format!("({t})")),
                1 => inner.clone().prop_map(|t| format!("[{t}]")),
                1 => inner.prop_map(|t| format!("{{{t}}}")),
            ],
            0..8,
        )
        .prop_map(|v| v.join(" "))
    })
}

/// Well-formed `key = value` lists with values of the wrong kind or out of
/// range: past the parser, into every `check_*` rule.
fn entries() -> impl Strategy<Value = String> {
    let entry = (vocab(), vocab()).prop_map(|(k, v)| format!("{k} = {v}"));
    prop::collection::vec(entry, 0..9).prop_map(|v| v.join(", "))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_that_lexes_never_panics(text in any::<String>(), validate in any::<String>()) {
        if let Ok(attr) = TokenStream::from_str(&text) {
            let validate = if TokenStream::from_str(&validate).is_ok() { validate } else { String::new() };
            let _ = pipeline(attr, &validate);
        }
    }

    #[test]
    fn vocabulary_tokens_never_panic(attr in tokens(), validate in tokens()) {
        if let Ok(attr) = TokenStream::from_str(&attr) {
            let _ = pipeline(attr, &validate);
        }
    }

    #[test]
    fn key_value_lists_never_panic(attr in entries(), validate in entries()) {
        if let Ok(attr) = TokenStream::from_str(&attr) {
            let _ = pipeline(attr, &validate);
        }
    }
}

#[test]
fn a_valid_attribute_expands() {
    let attr =
        TokenStream::from_str(r#"queue = "email", priority = "high", retries = 3, timeout = "30s""#).expect("tokens");
    assert!(pipeline(attr, "email, length(max = 64)"), "a valid definition expands");
}
