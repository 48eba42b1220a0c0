//! The conformance suite's jobs are linked into every binary built with the
//! `testing` feature (in a workspace build, feature unification turns it on
//! for programs too), yet a program that did not ask for them neither runs
//! them nor adds their schedules. This binary never calls
//! `jobs_core::testing::run` or `test_pool` before its checks: those ask.
#![allow(clippy::unwrap_used)]

use jobs_core::prelude::*;
use jobs_core::{MemoryQueue, Scheduler};

#[jobs_core::job(queue = "suite_jobs", cron = "0 0 4 * * *")]
async fn an_application_job() -> Result<(), JobError> {
    Ok(())
}

/// The names of the stored schedules, once `name` is among them (the pool
/// adds the attribute schedules in the background).
async fn schedules_once(q: &MemoryQueue, name: &str) -> Vec<String> {
    jobs_core::testing::eventually_some("the schedule is stored", || async {
        let names: Vec<String> = Scheduler::new(q.clone()).list().await.unwrap().into_iter().map(|s| s.name).collect();
        names.iter().any(|n| n == name).then_some(names)
    })
    .await
}

fn suite_names() -> Vec<&'static str> {
    jobs_core::backend::descriptors().map(|d| d.name).filter(|n| n.starts_with("conformance.")).collect()
}

#[test]
fn suite_jobs_stay_hidden_until_a_test_asks() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        assert_eq!(suite_names(), Vec::<&str>::new(), "no suite job is visible before a test asks");
        assert!(jobs_core::backend::registry().unwrap().contains_key("an_application_job"));
        let q = MemoryQueue::new();
        let pool = WorkerPool::builder(q.clone()).queues(["suite_jobs"]).start().unwrap();
        let schedules = schedules_once(&q, "an_application_job").await;
        assert!(!schedules.iter().any(|s| s.starts_with("conformance.")), "{schedules:?}");
        pool.shutdown().await.unwrap();

        jobs_core::testing::use_suite_jobs();
        assert!(suite_names().contains(&"conformance.nightly"), "{:?}", suite_names());
        let pool = WorkerPool::builder(q.clone()).queues(["suite_jobs"]).start().unwrap();
        schedules_once(&q, "conformance.nightly").await;
        pool.shutdown().await.unwrap();
    });
}
