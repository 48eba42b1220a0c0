//! The backend conformance suite over a `QueueRouter` of two `MemoryQueue`s:
//! a rule sends about half of the suite's queues (by a hash of the name) to
//! the second backend, so every case runs on both and the cases with
//! several queues often span them.
#![allow(clippy::unwrap_used)]

use jobs_core::{MemoryQueue, QueueRouter};

/// `Some("b")` for about half of all queue names.
fn half(queue: &str) -> Option<&str> {
    let hash = queue.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % 2 == 1).then_some("b")
}

jobs_core::conformance_suite!(|| async {
    QueueRouter::builder("a", MemoryQueue::new()).backend("b", MemoryQueue::new()).route_with(half).build().unwrap()
});
