//! Support for the code `#[job]` generates. Not a public API: names here may
//! change in any release.
#![doc(hidden)]
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;

pub use crate::context::JobContext;
pub use crate::data::{Data, DataNeed, PoolData};
pub use crate::error::{Error, JobError, ValidationError};
pub use crate::job::{GroupKey, Job};
use crate::payload::PayloadError;
pub use crate::payload::PayloadFormat;
pub use crate::queue::BoxFuture;
pub use crate::queue::Rate;
pub use crate::registry::{CronSpec, JobDescriptor, RunError};
pub use crate::vocab::Priority;
pub use inventory;
#[cfg(feature = "validate")]
pub use regex::Regex;
pub use serde;
pub use std::sync::LazyLock;
pub use std::time::Duration;

/// The pool's value a `Data<T>` parameter receives.
pub fn data<T: PoolData>(ctx: &JobContext) -> Result<Data<T>, RunError> {
    ctx.shared::<T>().ok_or(RunError::MissingData { type_name: std::any::type_name::<T>() })
}

/// Decodes a stored payload with the format it came with.
pub fn decode<J: Job>(format: PayloadFormat, payload: &[u8]) -> Result<J, RunError> {
    format.decode(payload).map_err(|e| RunError::Decode {
        type_name: std::any::type_name::<J>(),
        error: crate::error::bounded_message(decode_error::<J>(&e)),
    })
}

/// A decode error as stored and shown. serde's message can quote a value;
/// for a job with `#[redact]` fields only where and what kind of error is
/// kept.
fn decode_error<J: Job>(e: &PayloadError) -> String {
    if J::REDACTED.is_empty() {
        return e.to_string();
    }
    format!("{} (details hidden: the job has redacted fields)", e.without_values())
}

/// Replaces the messages of the rules broken by a `#[redact]` field (those
/// pushed since `from`): they can quote the value.
pub fn redact_errors(errs: &mut ValidationError, from: usize) {
    for e in errs.errors.iter_mut().skip(from) {
        e.message = "the value breaks this rule (not shown: the field is redacted)".into();
    }
}

/// Decodes, validates and re-encodes a JSON payload (the `check` of a descriptor).
pub fn check<J: Job>(payload: &[u8]) -> Result<Vec<u8>, Error> {
    let job: J = PayloadFormat::Json.decode(payload).map_err(|e| {
        Error::InvalidArgument(format!(
            "payload does not decode as {}: {}",
            std::any::type_name::<J>(),
            decode_error::<J>(&e)
        ))
    })?;
    job.validate()?;
    serde_json::to_vec(&job).map_err(|e| Error::Serialize(e.to_string()))
}

/// The group of a JSON payload of `J` (`group = field`); `None` when it
/// has none or does not decode (`check` reports that).
pub fn group_of<J: Job>(payload: &[u8]) -> Option<String> {
    PayloadFormat::Json.decode::<J>(payload).ok().and_then(|j| j.group())
}

/// Validates a decoded payload before it runs: data written around the
/// producer (by hand, or by an older version) still meets the rules.
pub fn validated<J: Job>(job: J) -> Result<J, RunError> {
    job.validate().map_err(RunError::Invalid)?;
    Ok(job)
}

// ---- the job function's return value -------------------------------------

/// The `Ok` value of a job function: stored as the job's result.
#[diagnostic::on_unimplemented(
    message = "the result type `{Self}` of a job function must implement `serde::Serialize`",
    label = "`{Self}` is not `Serialize`: it is stored as the job's result",
    note = "derive `serde::Serialize` for it, or return `Result<(), _>`"
)]
pub trait JobResult {
    fn to_result(&self) -> Result<Option<Vec<u8>>, RunError>;
}

impl<T: serde::Serialize> JobResult for T {
    fn to_result(&self) -> Result<Option<Vec<u8>>, RunError> {
        let v = serde_json::to_value(self).map_err(|e| RunError::Result(e.to_string()))?;
        if v.is_null() {
            return Ok(None);
        }
        serde_json::to_vec(&v).map(Some).map_err(|e| RunError::Result(e.to_string()))
    }
}

pub fn assert_result<T: JobResult>() {}

/// The `Ok` type of a job function's return type, however it is spelled
/// (`Result<T, E>` or an alias such as `anyhow::Result<T>`): its
/// `Job::Output`.
pub trait ResultOk {
    type Ok;
}

impl<T, E> ResultOk for Result<T, E> {
    type Ok = T;
}

/// Turns the function's outcome into what the worker records.
pub fn outcome<T: JobResult>(r: Result<T, JobError>) -> Result<Option<Vec<u8>>, RunError> {
    match r {
        Ok(v) => v.to_result(),
        Err(e) => Err(RunError::Job(e)),
    }
}

// How a job function's error becomes a `JobError`. The generated code
// writes `(&&ErrorProbe::of(&e)).job_error_kind().convert(e)`: method
// lookup tries `IntoKind` (receiver `&&ErrorProbe`), then `BoxedKind`
// (`&ErrorProbe`), then `OtherKind` (`ErrorProbe`), taking the first whose
// bound holds. One trait cannot hold all three: blanket impls over
// `Into<JobError>` and `Into<Box<dyn Error + Send + Sync>>` overlap, and
// neither may sit beside impls for `Box<dyn Error>` (coherence). The last
// path ends in a trait bound on `JobErrorType`, which has no blanket impl:
// an unsupported type then fails with that trait's own message, on the
// error type, rather than with "method not found" or a chain of
// `From`/`Into` bounds.

/// The error type of a job function, by type only.
pub struct ErrorProbe<E>(PhantomData<fn() -> E>);

impl<E> ErrorProbe<E> {
    pub fn of(_: &E) -> Self {
        ErrorProbe(PhantomData)
    }
}

// By hand: derived impls would require `E: Copy`, and the last path takes
// the probe by value from behind a reference.
impl<E> Clone for ErrorProbe<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for ErrorProbe<E> {}

/// Picks [`IntoTag`]: `JobError`, every `Error + Send + Sync + 'static`,
/// and any type with a `From` impl into `JobError`.
pub trait IntoKind {
    fn job_error_kind(self) -> IntoTag;
}

impl<E: Into<JobError>> IntoKind for &&ErrorProbe<E> {
    fn job_error_kind(self) -> IntoTag {
        IntoTag
    }
}

/// Picks [`BoxedTag`]: what else converts into `Box<dyn Error + Send +
/// Sync>`: the box itself, `String`, `&str`, and `anyhow::Error` (anyhow
/// implements the conversion, so this needs no feature of this crate).
pub trait BoxedKind {
    fn job_error_kind(self) -> BoxedTag;
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> BoxedKind for &ErrorProbe<E> {
    fn job_error_kind(self) -> BoxedTag {
        BoxedTag
    }
}

/// Picks [`OtherTag`], for every other type.
pub trait OtherKind {
    fn job_error_kind(self) -> OtherTag;
}

impl<E> OtherKind for ErrorProbe<E> {
    fn job_error_kind(self) -> OtherTag {
        OtherTag
    }
}

pub struct IntoTag;

impl IntoTag {
    pub fn convert<E: Into<JobError>>(self, e: E) -> JobError {
        e.into()
    }
}

pub struct BoxedTag;

impl BoxedTag {
    pub fn convert<E: Into<Box<dyn std::error::Error + Send + Sync>>>(self, e: E) -> JobError {
        JobError::retryable(e)
    }
}

pub struct OtherTag;

impl OtherTag {
    pub fn convert<E: JobErrorType>(self, e: E) -> JobError {
        e.into_job_error()
    }
}

/// The error types of a job function that do not convert into
/// `Box<dyn Error + Send + Sync>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job's error type: return `Result<_, E>` with `E: std::error::Error + Send + Sync + 'static`, `anyhow::Error`, `JobError`, or `Box<dyn Error + Send + Sync>`",
    label = "not an error type a job can return",
    note = "implement `std::error::Error` for it (e.g. with `thiserror`), or map it with `JobError::retryable(..)` or `JobError::permanent(..)` inside the job"
)]
pub trait JobErrorType {
    fn into_job_error(self) -> JobError;
}

// `IntoTag` takes `JobError` first; the impl is here so that the error
// for an unsupported type lists it among the types that work.
impl JobErrorType for JobError {
    fn into_job_error(self) -> JobError {
        self
    }
}

// The glue converts the error as soon as the function's future completes,
// before anything else is awaited, so a non-`Send` box is never held across
// an `.await` of the job's future. It cannot be stored as it is (a stored
// error is `Send + Sync`): its messages are copied instead.
impl JobErrorType for Box<dyn std::error::Error> {
    fn into_job_error(self) -> JobError {
        JobError::retryable(Detached::new(&*self))
    }
}

impl JobErrorType for Box<dyn std::error::Error + Send> {
    fn into_job_error(self) -> JobError {
        JobError::retryable(Detached::new(&*self))
    }
}

/// The messages of an error that is not `Send + Sync`, and of its chain of
/// sources, in an error that is: it shows and chains as the original did.
#[derive(Debug)]
struct Detached {
    message: String,
    source: Option<Box<Detached>>,
}

impl Detached {
    fn new(e: &dyn std::error::Error) -> Self {
        Detached { message: e.to_string(), source: e.source().map(|s| Box::new(Detached::new(s))) }
    }
}

impl std::fmt::Display for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Detached {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|d| d as &(dyn std::error::Error + 'static))
    }
}

// ---- payload fields ------------------------------------------------------

/// A payload field's type: serialized into storage and decoded by workers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job payload field: it must implement `serde::Serialize` and `serde::Deserialize`",
    label = "not serde: every parameter other than `JobContext` is stored in the job's payload",
    note = "derive `Serialize, Deserialize` for it, or pass an id and load the value inside the job"
)]
pub trait PayloadField {}
impl<T: serde::Serialize + serde::de::DeserializeOwned> PayloadField for T {}

pub fn assert_payload_field<T: PayloadField>() {}

/// The serializing half of [`PayloadField`], for [`serialize_field`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job payload field: it must implement `serde::Serialize`",
    label = "not `Serialize`: every parameter other than `JobContext` is stored in the job's payload",
    note = "derive `Serialize, Deserialize` for it, or pass an id and load the value inside the job"
)]
pub trait PayloadSerialize {
    fn serialize_payload<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}
impl<T: serde::Serialize + ?Sized> PayloadSerialize for T {
    fn serialize_payload<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize(s)
    }
}

/// The deserializing half of [`PayloadField`], for [`deserialize_field`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job payload field: it must implement `serde::Deserialize`",
    label = "not `Deserialize`: every parameter other than `JobContext` is decoded from the job's payload",
    note = "derive `Serialize, Deserialize` for it, or pass an id and load the value inside the job"
)]
pub trait PayloadDeserialize: Sized {
    fn deserialize_payload<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}
impl<T: serde::de::DeserializeOwned> PayloadDeserialize for T {
    fn deserialize_payload<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d)
    }
}

/// `#[serde(serialize_with)]` of a payload field without serde attributes of
/// its own: the same output as the field's `Serialize`, but a field type
/// that is not serde is reported once, on the parameter, with the message
/// above (instead of several errors from inside the derive).
pub fn serialize_field<T: PayloadSerialize + ?Sized, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    v.serialize_payload(s)
}

/// `#[serde(deserialize_with)]` counterpart of [`serialize_field`].
pub fn deserialize_field<'de, T: PayloadDeserialize, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize_payload(d)
}

// ---- validators ----------------------------------------------------------

/// Text that `email`, `url` and `pattern` can check.
#[diagnostic::on_unimplemented(
    message = "`email`, `url` and `pattern` validate text, not `{Self}`",
    label = "this rule needs text",
    note = "use these rules on `String`, `&str` or `Cow<str>` (or `Option` of them); use `range` for numbers"
)]
pub trait AsText {
    fn as_text(&self) -> &str;
}
impl AsText for String {
    fn as_text(&self) -> &str {
        self
    }
}
impl AsText for str {
    fn as_text(&self) -> &str {
        self
    }
}
impl AsText for std::borrow::Cow<'_, str> {
    fn as_text(&self) -> &str {
        self
    }
}
impl<T: AsText + ?Sized> AsText for Box<T> {
    fn as_text(&self) -> &str {
        (**self).as_text()
    }
}

/// A value with a length, for `length` and `non_empty`.
#[diagnostic::on_unimplemented(
    message = "`length` and `non_empty` need a value with a length, not `{Self}`",
    label = "this rule needs text or a collection",
    note = "use them on text or collections (`String`, `Vec<T>`, maps, sets); use `range` for numbers"
)]
pub trait HasLength {
    /// Characters for text, elements for collections.
    fn length(&self) -> u64;
    /// `characters` or `items`, for messages.
    fn unit(&self) -> &'static str {
        "items"
    }
}
macro_rules! text_len {
    ($($t:ty),*) => {$(
        impl HasLength for $t {
            fn length(&self) -> u64 { self.chars().count() as u64 }
            fn unit(&self) -> &'static str { "characters" }
        }
    )*};
}
text_len!(String, str, std::borrow::Cow<'_, str>);
macro_rules! coll_len {
    ($([$($g:tt)*] $t:ty),*) => {$(
        impl<$($g)*> HasLength for $t {
            fn length(&self) -> u64 { self.len() as u64 }
        }
    )*};
}
coll_len!([T] Vec<T>, [T] [T], [T] VecDeque<T>, [T] BTreeSet<T>, [T, S] HashSet<T, S>, [K, V] BTreeMap<K, V>, [K, V, S] HashMap<K, V, S>);
impl<T: HasLength + ?Sized> HasLength for Box<T> {
    fn length(&self) -> u64 {
        (**self).length()
    }
    fn unit(&self) -> &'static str {
        (**self).unit()
    }
}

/// A number, for `range`.
#[diagnostic::on_unimplemented(
    message = "`range` needs a number, not `{Self}`",
    label = "this rule needs a number",
    note = "use `range` on integer or float types; use `length` for text and collections"
)]
pub trait RangeValue: PartialOrd + std::fmt::Display + Copy {}
macro_rules! numbers {
    ($($t:ty),*) => {$( impl RangeValue for $t {} )*};
}
numbers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);

#[cfg(feature = "validate")]
pub fn email<T: AsText + ?Sized>(errs: &mut ValidationError, field: &str, v: &T) {
    use validator::ValidateEmail;
    if !v.as_text().validate_email() {
        errs.push(field, "email", format!("`{}` is not an email address", shorten(v.as_text())));
    }
}

#[cfg(feature = "validate")]
pub fn url<T: AsText + ?Sized>(errs: &mut ValidationError, field: &str, v: &T) {
    use validator::ValidateUrl;
    if !v.as_text().validate_url() {
        errs.push(field, "url", format!("`{}` is not an absolute URL", shorten(v.as_text())));
    }
}

#[cfg(feature = "validate")]
pub fn pattern<T: AsText + ?Sized>(errs: &mut ValidationError, field: &str, v: &T, re: &Regex) {
    if !re.is_match(v.as_text()) {
        errs.push(field, "pattern", format!("`{}` does not match `{}`", shorten(v.as_text()), re.as_str()));
    }
}

pub fn non_empty<T: HasLength + ?Sized>(errs: &mut ValidationError, field: &str, v: &T) {
    if v.length() == 0 {
        errs.push(field, "non_empty", "must not be empty");
    }
}

pub fn length<T: HasLength + ?Sized>(
    errs: &mut ValidationError,
    field: &str,
    v: &T,
    min: Option<u64>,
    max: Option<u64>,
) {
    let n = v.length();
    let unit = v.unit();
    if let Some(min) = min.filter(|m| n < *m) {
        errs.push(field, "length", format!("has {n} {unit}, at least {min} required"));
    } else if let Some(max) = max.filter(|m| n > *m) {
        errs.push(field, "length", format!("has {n} {unit}, at most {max} allowed"));
    }
}

pub fn range<T: RangeValue>(errs: &mut ValidationError, field: &str, v: &T, min: Option<T>, max: Option<T>) {
    let v = *v;
    // NaN is outside every range.
    let below = min.is_some_and(|m| v < m || v.partial_cmp(&m).is_none());
    let above = max.is_some_and(|m| v > m || v.partial_cmp(&m).is_none());
    match (below || above, min, max) {
        (false, _, _) => {}
        (true, Some(a), Some(b)) => errs.push(field, "range", format!("{v} is not between {a} and {b}")),
        (true, Some(a), None) => errs.push(field, "range", format!("{v} is less than {a}")),
        (true, None, Some(b)) => errs.push(field, "range", format!("{v} is greater than {b}")),
        (true, None, None) => {}
    }
}

/// Reports a `range` rule on a type that is not a number, once, on the rule.
pub fn assert_range_value<T: RangeValue>(_: &T) {}

/// Holds a field for the `range` rule: `(&&RangeProbe(v)).range_check(..)`
/// runs [`range`] when the field is a number ([`RangeCheck`]) and does
/// nothing otherwise ([`RangeSkip`]), so that a non-number is reported by
/// [`assert_range_value`] alone, without type errors on the bounds.
pub struct RangeProbe<'a, T: ?Sized>(pub &'a T);

pub trait RangeCheck {
    type Value;
    fn range_check(self, errs: &mut ValidationError, field: &str, min: Option<Self::Value>, max: Option<Self::Value>);
}

impl<T: RangeValue> RangeCheck for &&RangeProbe<'_, T> {
    type Value = T;
    fn range_check(self, errs: &mut ValidationError, field: &str, min: Option<T>, max: Option<T>) {
        range(errs, field, self.0, min, max)
    }
}

pub trait RangeSkip {
    fn range_check<B>(self, errs: &mut ValidationError, field: &str, min: Option<B>, max: Option<B>);
}

impl<T: ?Sized> RangeSkip for &RangeProbe<'_, T> {
    fn range_check<B>(self, _: &mut ValidationError, _: &str, _: Option<B>, _: Option<B>) {}
}

pub fn custom<T: ?Sized>(errs: &mut ValidationError, field: &str, v: &T, f: impl FnOnce(&T) -> Result<(), String>) {
    if let Err(m) = f(v) {
        errs.push(field, "custom", m);
    }
}

/// Builds a regex the macro already compiled once at compile time.
#[cfg(feature = "validate")]
pub fn compiled_regex(src: &'static str) -> Regex {
    match Regex::new(src) {
        Ok(r) => r,
        // The #[job] macro compiled this pattern with the same crate and
        // rejected the build if it failed, so this cannot happen.
        Err(e) => panic!("pattern `{src}` checked at compile time failed: {e}"),
    }
}

/// At most 64 characters of a value, for messages.
#[cfg(feature = "validate")]
fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(61).collect();
        t.push_str("...");
        t
    }
}
