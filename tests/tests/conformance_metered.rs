//! The conformance suite through the metrics wrapper: `Metered` must forward
//! every port call (a call it forgot would fall back to a default body).

jobs_core::conformance_suite!(|| async { jobs_core::JobMetrics::new().instrument(jobs_core::MemoryQueue::new()) });

mod workflows {
    jobs_core::conformance_suite!(|| async { jobs_core::JobMetrics::new().instrument(jobs_core::MemoryQueue::new()) }; workflows);
}
