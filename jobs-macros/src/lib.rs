//! The `#[job]` attribute of the `jobs` framework. Use it through
//! `jobs_core::job` (or `jobs_core::prelude::*`): the code it generates
//! names paths of `jobs_core`.
//!
//! ```text
//! use jobs_core::prelude::*;
//!
//! /// Sends the welcome mail.
//! #[job(queue = "email", priority = "high", retries = 3, timeout = "30s")]
//! pub async fn send_welcome_email(
//!     ctx: JobContext,
//!     #[validate(email)] to: String,
//!     #[validate(length(min = 1, max = 64))] username: String,
//! ) -> Result<(), JobError> {
//!     Ok(())
//! }
//!
//! // Generated beside the function, which stays callable as written:
//! // pub struct SendWelcomeEmail { pub to: String, pub username: String }
//! // impl SendWelcomeEmail { pub fn new(to: String, username: String) -> Self }
//! // impl Job for SendWelcomeEmail { .. }   + a link-time registration
//! ```
//!
//! # Keys (all optional)
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `queue` | `"email"`: 1 to 64 letters, digits, `_ - .` | `"default"` |
//! | `priority` | `"low"`, `"normal"`, `"high"`, `"critical"` | `"normal"` |
//! | `retries` | `0..=100`: retries after the first attempt | the pool's |
//! | `timeout` | a duration: `"30s"`, `"5m"`, `"1h 30m"` | none |
//! | `unique_for` | a duration: equal payloads enqueued within it are deduplicated | none |
//! | `expires` | a duration: a job not started that long after it is due ends expired, never run; not with `cron` or `every` | none |
//! | `group` | a payload parameter, unquoted (`group = account_id`): its value (`jobs_core::GroupKey`) names the job's group; groups are served in turn | none |
//! | `concurrency` | `1..=10000`: jobs of one group running at once, across every pool; needs `group` | none |
//! | `rate` | `"N/period"` (`"50/1s"`): starts of one group per sliding window, across every pool; needs `group` | none |
//! | `name` | the stored name: letters, digits, `_ - . :` | the function's name |
//! | `cron` | 5 fields, or 6 with seconds first; only on a function without payload | none |
//! | `every` | an interval instead of `cron` (`"90s"`, `"1h 30m"`, at least 1s), the first tick one interval after the schedule is stored; only on a function without payload | none |
//! | `timezone` | an IANA zone for `cron`, or for an `every` schedule's exclusion dates | `"UTC"` |
//! | `crate` | the path of `jobs_core` when it is renamed (`crate = crate` inside it) | `::jobs_core` |
//!
//! One key is internal, for the jobs of `jobs_core`'s and backends' test
//! support, not for applications: `register = false` leaves the job out of
//! the link-time registry. Its payload type then has a hidden
//! `__jobs_descriptor()`, and the support code adds that descriptor at run
//! time (`jobs_core::backend::add_descriptors`) when a test asks for its jobs, so a
//! program merely linked with the support code never sees them.
//!
//! # Parameters
//!
//! A parameter whose type's last path segment is `JobContext` receives the
//! running job's context (at any position, at most one). Every other
//! parameter is a payload field: a plain `name: Type`, with an owned type
//! that is `Serialize + Deserialize + Debug + Clone`. `#[serde(..)]`
//! attributes on a parameter are moved to its field.
//!
//! Validators, checked before a job is enqueued and again before it runs:
//! `#[validate(email)]`, `url`, `non_empty`, `length(min = 1, max = 64)`
//! (characters of text, items of collections), `range(min = 1, max = 10)`
//! (number literals), `pattern = "^[a-z]+$"` (unanchored unless the regex
//! says so; compiled at build time) and `custom = path::to_fn` (a
//! `fn(&T) -> Result<(), String>`). Several rules may share one attribute;
//! on an `Option<T>` parameter they check the value when there is one.
//!
//! # The function
//!
//! It must be `async`, take no `self`, have no generic or lifetime
//! parameters, and return `Result<T, E>` (any path ending in `Result`, such
//! as `anyhow::Result<T>`) where `T: Serialize` is stored as the job's
//! result. Every mistake is reported at once, on the token that causes it,
//! and the function is still emitted so that the rest of the crate keeps
//! type-checking.
//!
//! # Error types
//!
//! `E`, the error type, is one of:
//!
//! - `JobError`, which can say `JobError::permanent(..)`;
//! - any `E: std::error::Error + Send + Sync + 'static` (`std::io::Error`,
//!   a `thiserror` enum), and any type with an `impl From<E> for JobError`
//!   of your own (which decides retryable or permanent);
//! - `anyhow::Error` (`anyhow::Result<T>`), its context chain kept;
//! - `Box<dyn Error + Send + Sync>` (with or without `+ 'static`), so `?`
//!   works on any std error and `Err("..".into())` on text;
//! - `Box<dyn Error>` and `Box<dyn Error + Send>`: these are not `Sync`, so
//!   the error is kept as its message and the messages of its causes. The
//!   job's future must still be `Send`: return such an error, do not hold
//!   one across an `.await` (the compiler points at the `.await` if it is);
//! - `String` and `&'static str`, kept as the message.
//!
//! All but a permanent `JobError` make a retryable failure. Any other
//! type (`i32`, a struct that does not implement `std::error::Error`) is
//! refused on the error type with "cannot be a job's error type", naming
//! these choices.

mod check;
mod errors;
mod expand;
#[cfg(test)]
mod fuzz_tests;
mod model;
mod parse;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Turns an `async fn` into a typed background job: a payload struct named
/// after the function in PascalCase, its `Job` implementation and its
/// registration. See the crate documentation for the keys and rules.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: syn::ItemFn = match syn::parse(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            // Keep the item so that the rest of the crate still resolves it.
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[job]` goes on an `async fn`, e.g. `#[job] async fn cleanup() -> Result<(), JobError>`",
            );
            let mut out = err.to_compile_error();
            out.extend(proc_macro2::TokenStream::from(item));
            return out.into();
        }
    };
    let mut errors = errors::Errors::default();
    let args = parse::parse_args(attr.into(), &mut errors);
    // Strips the parameter attributes, which are not valid Rust on their own.
    let params = parse::parse_params(&mut func, &mut errors);
    let settings = check::check(&args, &func.sig, &params, &mut errors);
    match (errors.into_tokens(), settings) {
        (None, Some(settings)) => expand::expand(&settings, &func, &params).into(),
        (errs, _) => {
            // The cleaned function beside the errors: callers still type-check.
            let mut out = errs.unwrap_or_default();
            func.to_tokens(&mut out);
            out.into()
        }
    }
}
