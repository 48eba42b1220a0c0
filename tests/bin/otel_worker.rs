//! The worker process of the OpenTelemetry test (`tests/tests/otel.rs`):
//! runs a pool on Redis until job `ID` has succeeded, with spans exported to
//! an in-memory exporter, then prints every finished span, one a line:
//! `name trace_id span_id parent_span_id`.
//!
//! `otel-worker REDIS_URL QUEUE ID`

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::JobHandle;
use jobs_redis::RedisQueue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The traced job (the test enqueues its twin, which registers nothing).
#[job(name = "otel.traced", queue = "otel")]
async fn traced(n: u32) -> Result<u32, JobError> {
    tracing::info!(n, "the traced job runs");
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, queue, id] = args.as_slice() else {
        return Err("usage: otel-worker REDIS_URL QUEUE ID".into());
    };
    let id: JobId = id.parse()?;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-worker")))
        .init();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let q = RedisQueue::connect(url).await?;
        let pool = WorkerPool::builder(q.clone()).queues([queue.as_str()]).scheduler(false).start()?;
        JobHandle::<Traced>::new(&q, id).wait(Duration::from_secs(60)).await?;
        pool.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    provider.force_flush()?;
    for s in exporter.get_finished_spans()? {
        println!("{} {} {} {}", s.name, s.span_context.trace_id(), s.span_context.span_id(), s.parent_span_id);
    }
    Ok(())
}
