//! The `#[job]` attribute's compile-fail and pass suites (trybuild).
//!
//! Regenerate the expected compiler output after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p jobs-tests --test macro_ui`, then read
//! every changed `.stderr` file.

/// Each `ui/*.rs` fails with exactly its `.stderr`; each `ui_pass/*.rs`
/// compiles and its `main` runs to completion.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui_pass/*.rs");
}
