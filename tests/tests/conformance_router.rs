//! The backend conformance suite over a `QueueRouter` of two `MemoryQueue`s,
//! the suite's queues spread between them.

use jobs_core::testing::split_router;
use jobs_core::MemoryQueue;

jobs_core::conformance_suite!(|| async { split_router(MemoryQueue::new(), MemoryQueue::new()) });

mod workflows {
    use super::*;

    jobs_core::conformance_suite!(|| async { split_router(MemoryQueue::new(), MemoryQueue::new()) }; workflows);
}
