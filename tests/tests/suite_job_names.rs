//! A program's own job may carry the name of one of the conformance suite's
//! jobs: the two clash only once a test asks for the suite's jobs, and then
//! a pool refuses to start, naming both definitions.
#![allow(clippy::unwrap_used)]

use jobs_core::prelude::*;

#[job(name = "conformance.sized_result")]
async fn sized_result() -> Result<(), JobError> {
    Ok(())
}

#[tokio::test]
async fn a_job_named_like_a_suite_job_clashes_only_once_a_test_asks() {
    let own = jobs_core::backend::registry().unwrap()["conformance.sized_result"];
    assert!(own.file.ends_with("suite_job_names.rs"), "{}", own.location());
    let pool = WorkerPool::builder(MemoryQueue::new()).queues(["default"]).start().unwrap();
    pool.shutdown().await.unwrap();

    jobs_core::testing::use_suite_jobs();
    let err = WorkerPool::builder(MemoryQueue::new()).start().err().expect("the clash is refused");
    let text = err.to_string();
    assert!(text.starts_with("two jobs are named `conformance.sized_result`: "), "{text}");
    assert!(text.contains("jobs-core/src/testing/jobs.rs:"), "{text}");
    assert!(text.contains("tests/tests/suite_job_names.rs:9"), "{text}");
    // The function stays callable as written.
    sized_result().await.unwrap();
}
