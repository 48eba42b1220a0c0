//! `JobExt::enqueue_all`: a typed batch in one backend call, validated
//! whole before anything is written.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use jobs_core::prelude::*;
use jobs_core::{JobStatus, QueuePolicy};

const QUEUE: &str = "batch_test";

#[job(queue = "batch_test")]
async fn send_note(
    #[validate(email)] to: String,
    #[validate(range(min = 1, max = 10))] copies: u32,
) -> Result<(), JobError> {
    let _ = (to, copies);
    Ok(())
}

fn note(i: u32) -> SendNote {
    SendNote { to: format!("user{i}@example.org"), copies: 1 + i % 10 }
}

async fn pending(q: &MemoryQueue, queue: &str) -> u64 {
    q.stats().await.unwrap().queue(queue).pending
}

#[tokio::test]
async fn ids_come_back_in_order_and_every_job_is_written() {
    let q = MemoryQueue::new();
    let ids = SendNote::enqueue_all(&q, (0..20).map(note)).await.unwrap();
    assert_eq!(ids.len(), 20);
    for (i, id) in (0u32..).zip(&ids) {
        assert_eq!(id.queue(), QUEUE);
        let info = q.job(id).await.unwrap().expect("stored");
        assert_eq!(info.status, JobStatus::Pending);
        assert_eq!(info.payload["to"], format!("user{i}@example.org"));
    }
    let listed: Vec<JobId> =
        q.list_jobs(QUEUE, JobStatus::Pending, 0, 100).await.unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(listed, ids, "stored once each, taken in enqueue order");
}

#[tokio::test]
async fn one_invalid_job_refuses_the_batch_naming_its_index_and_fields() {
    let q = MemoryQueue::new();
    let mut batch: Vec<SendNote> = (0..5).map(note).collect();
    batch[3] = SendNote { to: "not-an-email".into(), copies: 11 };
    let err = SendNote::enqueue_all(&q, batch).await.expect_err("job 3 is invalid");
    let Error::InvalidBatchItem { index, source } = &err else { panic!("expected InvalidBatchItem, got {err:?}") };
    assert_eq!(*index, 3);
    let Error::Validation(v) = source.as_ref() else { panic!("expected a validation error, got {source:?}") };
    let broken: Vec<(&str, &str)> = v.errors.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect();
    assert_eq!(broken, [("to", "email"), ("copies", "range")]);
    let text = err.to_string();
    assert!(
        text.starts_with("job 3 of the batch (counting from 0): invalid job payload: field `to` (email)"),
        "{text}"
    );
    assert_eq!(q.stats().await.unwrap().queue(QUEUE), Default::default(), "nothing written");
    assert!(q.list_jobs(QUEUE, JobStatus::Pending, 0, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_batch_writes_nothing_and_returns_no_ids() {
    let q = MemoryQueue::new();
    let ids = SendNote::enqueue_all(&q, Vec::new()).await.unwrap();
    assert!(ids.is_empty());
    assert!(q.stats().await.unwrap().queues.is_empty(), "the backend saw no call");
}

#[tokio::test]
async fn options_apply_to_every_job_of_the_batch() {
    let q = MemoryQueue::new();
    let opts = JobOptions::new().queue("batch_test.urgent").priority(Priority::High);
    let ids = SendNote::enqueue_all_with(&q, (0..3).map(note), opts).await.unwrap();
    for id in &ids {
        assert_eq!(id.queue(), "batch_test.urgent");
        assert_eq!(q.job(id).await.unwrap().unwrap().priority, Priority::High);
    }
    assert_eq!(pending(&q, "batch_test.urgent").await, 3);
}

#[tokio::test]
async fn a_batch_the_queue_refuses_is_stored_not_at_all() {
    let q = MemoryQueue::new();
    q.set_policy(QUEUE, QueuePolicy { max_jobs: Some(4), priority_levels: vec![], ..Default::default() })
        .await
        .unwrap();
    SendNote::enqueue_all(&q, (0..2).map(note)).await.unwrap();
    let err = SendNote::enqueue_all(&q, (2..5).map(note)).await.expect_err("2 + 3 > max_jobs 4");
    assert!(matches!(err, Error::QueueFull { max_jobs: 4, .. }), "{err:?}");
    assert_eq!(pending(&q, QUEUE).await, 2, "none of the refused batch was stored");
}
