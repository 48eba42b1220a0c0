//! Limits: a payload past the backend's limit (default 512 KiB,
//! `jobs_core::backend::DEFAULT_MAX_PAYLOAD`) is refused at enqueue with a clear
//! error, writing nothing; one at the limit is stored.
//!
//! The other limits have their tests where they live: `max_jobs` in the
//! conformance case `max_jobs_refuses_but_never_a_retry` (every backend),
//! the dead-letter bounds by count and age in `jobs-core/src/memory/tests.rs`
//! and `jobs-redis/tests/redis.rs`.

use jobs_chaos::{Fsync, RedisProc};
use jobs_core::backend::{check_payload_sizes, DEFAULT_MAX_PAYLOAD};
use jobs_core::prelude::*;
use jobs_core::NewJob;

/// A job whose payload is one string.
#[job(name = "limits.blob", queue = "limits")]
async fn blob(data: String) -> Result<(), JobError> {
    let _ = data;
    Ok(())
}

fn sized(bytes: usize) -> NewJob {
    // `{"data":"…"}` is 11 bytes around the string.
    let job = Blob { data: "x".repeat(bytes - 11) }.into_new_job(JobOptions::new()).expect("valid");
    assert_eq!(job.payload.len(), bytes);
    job
}

#[test]
fn the_helper_refuses_past_the_limit() {
    assert!(check_payload_sizes(&[sized(DEFAULT_MAX_PAYLOAD)], DEFAULT_MAX_PAYLOAD).is_ok());
    let err = check_payload_sizes(&[sized(100), sized(DEFAULT_MAX_PAYLOAD + 1)], DEFAULT_MAX_PAYLOAD).unwrap_err();
    assert!(
        matches!(err, jobs_core::Error::PayloadTooLarge { size, limit } if size == DEFAULT_MAX_PAYLOAD + 1 && limit == DEFAULT_MAX_PAYLOAD)
    );
    assert!(err.to_string().contains("larger than the limit of 524288 bytes"), "{err}");
}

/// What every backend must do with a batch holding one payload too large.
async fn refuses_large_payloads<Q: JobQueue + QueueInspect>(q: &Q) {
    let at_limit = q.enqueue_many(vec![sized(DEFAULT_MAX_PAYLOAD)]).await.expect("a payload at the limit is stored");
    assert!(q.job(&at_limit[0]).await.expect("read").is_some());
    let small = sized(100);
    let small_id = small.id.clone();
    let err = q
        .enqueue_many(vec![small, sized(DEFAULT_MAX_PAYLOAD + 1)])
        .await
        .expect_err("a payload past the limit is refused");
    assert!(matches!(err, jobs_core::Error::PayloadTooLarge { .. }), "{err}");
    assert!(q.job(&small_id).await.expect("read").is_none(), "nothing of the refused batch was written");
    let err = Blob { data: "y".repeat(DEFAULT_MAX_PAYLOAD) }.enqueue(q).await.expect_err("refused");
    assert!(err.to_string().contains("larger than the limit"), "{err}");
}

#[test]
fn memory_queue_refuses_large_payloads() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(refuses_large_payloads(&MemoryQueue::new()));
}

#[test]
fn redis_queue_refuses_large_payloads() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async {
        let redis =
            tokio::task::block_in_place(|| RedisProc::start_temp(Fsync::Everysec)).expect("redis-server starts");
        let q = jobs_chaos::connect(&redis.url()).await;
        refuses_large_payloads(&q).await;
    });
}
