//! The span that enqueued a job is linked to the job's span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_core::prelude::*;
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[job(name = "trace.linked", queue = "trace")]
async fn linked() -> Result<(), JobError> {
    Ok(())
}

/// Records (span name, id of the span it follows) pairs; the enqueuing span
/// has usually closed by then, so it is known by id only.
#[derive(Clone, Default)]
struct Links(Arc<Mutex<Vec<(String, u64)>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Links {
    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        let Some(a) = ctx.span(span) else { return };
        self.0.lock().expect("not poisoned").push((a.name().to_owned(), follows.into_u64()));
    }
}

#[test]
fn the_enqueuing_span_is_followed_by_the_job_span() {
    let links = Links::default();
    let subscriber = tracing_subscriber::registry().with(links.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let request = rt.block_on(async {
        let queue = MemoryQueue::new();
        let (id, request) = {
            let span = tracing::info_span!("signup_request");
            let _entered = span.enter();
            (Linked {}.enqueue(&queue).await.unwrap(), span.id().unwrap().into_u64())
        };
        let header = queue.job(&id).await.unwrap().unwrap().headers[jobs_core::backend::SPAN_HEADER].clone();
        assert!(header.starts_with(&format!("{}:", std::process::id())), "{header}");
        let pool = WorkerPool::builder(queue.clone()).queues(["trace"]).scheduler(false).start().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while queue.job(&id).await.unwrap().unwrap().status != jobs_core::JobStatus::Succeeded {
            assert!(std::time::Instant::now() < deadline, "job did not run");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pool.shutdown().await.unwrap();
        assert_eq!(header, format!("{}:{request}", std::process::id()));
        request
    });
    let seen = links.0.lock().unwrap().clone();
    assert!(seen.iter().any(|(a, b)| a == "job" && *b == request), "{seen:?}");
}
