//! [`OtelPropagator`]: W3C trace context in a job's headers (feature
//! `otel`).

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{SpanLink, TracePropagator};
use crate::vocab::Headers;

/// Carries the enqueuing span's OpenTelemetry context to the job's span,
/// across processes: at enqueue the global text map propagator
/// (`opentelemetry::global::set_text_map_propagator`, usually
/// `TraceContextPropagator`, which writes `traceparent` and `tracestate`)
/// writes the current span's context into the job's headers; before the
/// job runs, the worker reads it back and makes it the parent of the job's
/// span (`tracing-opentelemetry`'s `set_parent`), so the job's span belongs
/// to the producer's trace. It also does what [`SpanLink`] does (the
/// `enqueued_by` field), so logs without OpenTelemetry keep the link.
///
/// With the feature on, it is the default propagator. It needs the
/// application to install a `tracing-opentelemetry` layer and a text map
/// propagator; without them it writes nothing and links nothing.
///
/// ```
/// # fn main() -> Result<(), jobs_core::Error> {
/// // With the `otel` feature this is already the default; installing it
/// // by hand says so in code.
/// jobs_core::set_trace_propagator(jobs_core::OtelPropagator)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct OtelPropagator;

struct Inject<'a>(&'a mut Headers);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct Extract<'a>(&'a Headers);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

impl TracePropagator for OtelPropagator {
    fn inject(&self, headers: &mut Headers) {
        SpanLink.inject(headers);
        let cx = tracing::Span::current().context();
        if cx.span().span_context().is_valid() {
            opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Inject(headers)));
        }
    }

    fn extract(&self, headers: &Headers, span: &tracing::Span) {
        SpanLink.extract(headers, span);
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Extract(headers)));
        // Only a context that names a span: an empty one would make the job
        // span the root of a trace of its own for nothing.
        if cx.span().span_context().is_valid() {
            if let Err(e) = span.set_parent(cx) {
                tracing::debug!(error = %e, "the job span could not take the producer's trace context");
            }
        }
    }
}
