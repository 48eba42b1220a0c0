//! `Data<T>` parameters: a job receives the pool's shared value by type, and
//! a pool that lacks one refuses to start, naming the job and the type.

use jobs_core::backend::{descriptors, PayloadFormat, RunError};
use jobs_core::prelude::*;
use std::sync::Mutex;

/// What the jobs of this file send through: the pool's mailer.
struct Mailer {
    from: &'static str,
    sent: Mutex<Vec<String>>,
}

/// Settings shared with the jobs.
struct Settings {
    greeting: &'static str,
}

#[job(queue = "data_param")]
async fn greet(
    mailer: Data<Mailer>,
    ctx: JobContext,
    settings: Data<Settings>,
    to: String,
) -> Result<String, JobError> {
    let line = format!("{} {} -> {to} (attempt {})", settings.greeting, mailer.from, ctx.attempt());
    mailer.sent.lock().map_err(|_| JobError::permanent("poisoned"))?.push(line.clone());
    Ok(line)
}

fn mailer() -> Mailer {
    Mailer { from: "app@example.com", sent: Mutex::new(Vec::new()) }
}

#[test]
fn a_pool_without_the_data_a_job_takes_refuses_to_start() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let e = WorkerPool::builder(MemoryQueue::new()).data(mailer()).start().map(|_| ()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("job `greet`"), "{msg}");
        assert!(msg.contains("takes `Data<data_param::Settings>`"), "{msg}");
        assert!(msg.contains("WorkerPoolBuilder::data"), "{msg}");
    });
}

#[test]
fn a_job_receives_each_value_by_type() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let queue = MemoryQueue::new();
        let pool = WorkerPool::builder(queue.clone())
            .queues(["data_param"])
            .scheduler(false)
            .extensions({
                let mut e = jobs_core::Extensions::default();
                e.insert(Settings { greeting: "hello from" });
                e
            })
            .data(mailer())
            .start()
            .unwrap();
        let id = Greet { to: "ann@example.com".into() }.enqueue(&queue).await.unwrap();
        let info = jobs_core::testing::wait_status(&queue, &id, jobs_core::JobStatus::Succeeded).await;
        pool.shutdown().await.unwrap();
        assert_eq!(info.result, Some(serde_json::json!("hello from app@example.com -> ann@example.com (attempt 1)")));
    });
}

#[test]
fn the_glue_hands_over_the_context_s_value_or_fails_permanently_without_it() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let d = descriptors().find(|d| d.name == "greet").expect("linked");
        assert_eq!(d.data.len(), 2);
        let payload = br#"{"to":"bob@example.com"}"#;
        let ctx = JobContext::for_test("greet").with_data(mailer()).with_data(Settings { greeting: "hi" });
        let probe = ctx.clone();
        (d.run)(ctx, PayloadFormat::Json, payload).await.unwrap();
        let sent = probe.data::<Mailer>().unwrap().sent.lock().unwrap().clone();
        assert_eq!(sent, ["hi app@example.com -> bob@example.com (attempt 1)"]);

        let without = JobContext::for_test("greet").with_data(mailer());
        let e = (d.run)(without, PayloadFormat::Json, payload).await.unwrap_err();
        assert!(matches!(e, RunError::MissingData { type_name } if type_name.ends_with("Settings")), "{e}");
        assert!(!e.is_retryable());
    });
}
