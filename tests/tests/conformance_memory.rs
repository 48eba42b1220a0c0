//! The backend conformance suite against the embedded MemoryQueue.

jobs_core::conformance_suite!(|| async { jobs_core::MemoryQueue::new() });

mod workflows {
    jobs_core::conformance_suite!(|| async { jobs_core::MemoryQueue::new() }; workflows);
}
