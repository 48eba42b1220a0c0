//! The conformance suite's jobs are linked into every binary built with the
//! `testing` feature (in a workspace build, feature unification turns it on
//! for programs too), yet they are not in the link-time registry: a program
//! that did not ask for them neither sees nor runs them, nor adds their
//! schedules. This binary never calls `jobs_core::testing::run` or
//! `test_pool` before its checks: those ask.
#![allow(clippy::unwrap_used)]

use jobs_core::backend::JobDescriptor;
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

/// Whether `d` is among the definitions this program knows.
fn known(d: &'static JobDescriptor) -> bool {
    jobs_core::backend::descriptors().any(|k| std::ptr::eq(k, d))
}

/// The suite's jobs that declare a schedule.
fn suite_schedules() -> Vec<&'static str> {
    jobs_core::testing::jobs::descriptors().into_iter().filter(|d| d.cron.is_some()).map(|d| d.name).collect()
}

#[test]
fn suite_jobs_stay_out_of_the_registry_until_a_test_asks() {
    let suite = jobs_core::testing::jobs::descriptors();
    assert_eq!(suite_schedules(), ["conformance.nightly"]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for d in suite {
            assert!(!known(d), "{} is visible before a test asks", d.name);
        }
        let registry = jobs_core::backend::registry().unwrap();
        assert!(registry.contains_key("an_application_job"));
        for d in suite {
            assert!(!registry.contains_key(d.name), "{} is in the registry before a test asks", d.name);
        }
        let q = MemoryQueue::new();
        let pool = WorkerPool::builder(q.clone()).queues(["suite_jobs"]).start().unwrap();
        let schedules = schedules_once(&q, "an_application_job").await;
        assert!(!schedules.iter().any(|s| s.starts_with("conformance.")), "{schedules:?}");
        pool.shutdown().await.unwrap();

        jobs_core::testing::use_suite_jobs();
        let registry = jobs_core::backend::registry().unwrap();
        for d in suite {
            assert!(known(d), "{} is not visible once a test asked", d.name);
            assert!(std::ptr::eq(registry[d.name], d), "{} is not the suite's in the registry", d.name);
        }
        let count = jobs_core::backend::descriptors().count();
        jobs_core::testing::use_suite_jobs();
        assert_eq!(jobs_core::backend::descriptors().count(), count, "asking twice adds nothing");
        let pool = WorkerPool::builder(q.clone()).queues(["suite_jobs"]).start().unwrap();
        let schedules = schedules_once(&q, "conformance.nightly").await;
        for name in suite_schedules() {
            assert!(schedules.iter().any(|s| s == name), "{name} is not stored: {schedules:?}");
        }
        pool.shutdown().await.unwrap();
    });
}
