//! Two linked jobs with one name: a pool refuses to start, naming both.

use jobs_core::prelude::*;

#[job(name = "shared.name")]
async fn first() -> Result<(), JobError> {
    Ok(())
}

mod other {
    use jobs_core::prelude::*;

    #[job(name = "shared.name")]
    pub async fn second() -> Result<(), JobError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_pool_refuses_duplicate_job_names_naming_both_definitions() {
    let err = WorkerPool::builder(MemoryQueue::new()).start().err().expect("duplicate names refused");
    let text = err.to_string();
    assert!(text.starts_with("two jobs are named `shared.name`: "), "{text}");
    assert!(text.contains("tests/tests/duplicate_names.rs:6 and tests/tests/duplicate_names.rs:14"), "{text}");
    assert!(text.ends_with("give one of them `#[job(name = \"..\")]`"), "{text}");
    // The functions stay callable as written.
    first().await.unwrap();
    other::second().await.unwrap();
}
