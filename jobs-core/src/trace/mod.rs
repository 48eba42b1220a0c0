//! Linking the code that enqueued a job to the job's own span.
//!
//! At enqueue the current [`TracePropagator`] writes the caller's trace
//! context into the job's [`Headers`]; when the job runs, it reads them back
//! onto the job's span. The default links spans within one process
//! (`Span::follows_from`) and records where the job came from on the span's
//! `enqueued_by` field in every process. With the `otel` feature the default
//! is `OtelPropagator`, which also writes and reads the W3C `traceparent`
//! header, so a job's span continues the producer's trace in any process.

#[cfg(feature = "otel")]
mod otel;

use std::sync::OnceLock;

#[cfg(feature = "otel")]
pub use otel::OtelPropagator;

use crate::error::Error;
use crate::vocab::Headers;

/// The header the default propagator writes: `PID:SPAN_ID` of the span that
/// was current when the job was enqueued.
pub const SPAN_HEADER: &str = "jobs.enqueued_by";

/// Carries a trace context from the enqueuing code to the job's span.
pub trait TracePropagator: Send + Sync + 'static {
    /// Writes the current context into a job's headers (at enqueue).
    fn inject(&self, headers: &mut Headers);
    /// Links the job's span to the context in its headers (before it runs).
    fn extract(&self, headers: &Headers, span: &tracing::Span);
}

/// The default: an in-process `follows_from` link, and the producer's
/// `PID:SPAN_ID` recorded on the job span as `enqueued_by`.
///
/// `tracing` reuses the id of a closed span, so once the enqueuing span has
/// closed the in-process link may point at a newer span with the same id;
/// the `enqueued_by` field stays exact. Cross-process links need a
/// propagator with globally unique trace ids (OpenTelemetry).
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanLink;

impl TracePropagator for SpanLink {
    fn inject(&self, headers: &mut Headers) {
        if let Some(id) = tracing::Span::current().id() {
            headers.insert(SPAN_HEADER.to_owned(), format!("{}:{}", std::process::id(), id.into_u64()));
        }
    }

    fn extract(&self, headers: &Headers, span: &tracing::Span) {
        let Some(value) = headers.get(SPAN_HEADER) else { return };
        span.record("enqueued_by", value.as_str());
        let Some((pid, id)) = value.split_once(':') else { return };
        let here = std::process::id().to_string();
        if pid == here {
            if let Some(id) = id.parse::<u64>().ok().and_then(tracing::Id::from_non_zero_u64_opt) {
                span.follows_from(id);
            }
        }
    }
}

trait NonZeroId {
    fn from_non_zero_u64_opt(v: u64) -> Option<tracing::Id>;
}

impl NonZeroId for tracing::Id {
    fn from_non_zero_u64_opt(v: u64) -> Option<tracing::Id> {
        std::num::NonZeroU64::new(v).map(tracing::Id::from_non_zero_u64)
    }
}

static PROPAGATOR: OnceLock<Box<dyn TracePropagator>> = OnceLock::new();

/// Installs the propagator for this process, once, before enqueueing or
/// starting pools.
pub fn set_trace_propagator(p: impl TracePropagator) -> Result<(), Error> {
    PROPAGATOR.set(Box::new(p)).map_err(|_| Error::InvalidArgument("a trace propagator is already installed".into()))
}

pub(crate) fn propagator() -> &'static dyn TracePropagator {
    PROPAGATOR.get_or_init(default_propagator).as_ref()
}

/// [`SpanLink`], or with the `otel` feature
/// `OtelPropagator` (which links in-process too).
fn default_propagator() -> Box<dyn TracePropagator> {
    #[cfg(feature = "otel")]
    return Box::new(OtelPropagator);
    #[cfg(not(feature = "otel"))]
    Box::new(SpanLink)
}
