//! The backend conformance suite against the embedded MemoryQueue.

jobs_core::conformance_suite!(|| async { jobs_core::MemoryQueue::new() });
