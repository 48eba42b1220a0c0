//! OpenTelemetry across processes (feature `otel`): a job enqueued inside a
//! span of this process runs in another process, whose job span belongs to
//! this span's trace, as its child.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use jobs_core::prelude::*;
use jobs_redis::testing::RedisServer;
use jobs_redis::RedisQueue;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_otel-worker");

/// The worker binary's job, enqueued from here (registered there only, so
/// its function is never called here).
#[allow(dead_code)]
#[job(name = "otel.traced", queue = "otel", register = false)]
async fn traced(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_span_continues_the_producers_trace_in_another_process() {
    let server = RedisServer::start();
    let q = RedisQueue::connect(&server.url()).await.unwrap();
    let provider = SdkTracerProvider::builder().with_simple_exporter(InMemorySpanExporter::default()).build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("producer")));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // Built inside the producer's span, on this thread: the propagator
    // writes the headers when the job is built, before any await.
    let (job, trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("produce");
        let _in = span.enter();
        let job = Traced { n: 7 }.into_new_job(JobOptions::new()).unwrap();
        let sc = span.context().span().span_context().clone();
        (job, sc.trace_id(), sc.span_id())
    });
    assert!(job.headers.contains_key("traceparent"), "traceparent in {:?}", job.headers);
    let id = q.enqueue_many(vec![job]).await.unwrap().remove(0);

    let out = tokio::process::Command::new(WORKER_EXE)
        .args([server.url(), "otel".to_owned(), id.to_string()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the worker failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let spans: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(' ').collect()).collect();
    let job_span = spans.iter().find(|s| s[0] == "job").unwrap_or_else(|| panic!("no job span in {stdout}"));
    assert_eq!(job_span[1], trace_id.to_string(), "the job span is in the producer's trace: {stdout}");
    assert_eq!(job_span[3], span_id.to_string(), "the job span's parent is the producer's span: {stdout}");
}
