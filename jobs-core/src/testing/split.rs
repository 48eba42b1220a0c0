//! A router for running the suite over a [`QueueRouter`]: two backends,
//! the suite's queues spread between them.

use crate::router::QueueRouter;

/// `a` (the default backend) and `b` behind one [`QueueRouter`] that sends
/// about half of all queue names to `b`, by a hash of the name: every case
/// runs on both backends, and cases with several queues often span them.
///
/// ```text
/// jobs_core::conformance_suite!(|| async { split_router(MemoryQueue::new(), MemoryQueue::new()) });
/// ```
pub fn split_router<B>(a: B, b: B) -> QueueRouter<B> {
    QueueRouter::builder("a", a)
        .backend("b", b)
        .route_with(half)
        .build()
        .expect("two backends of distinct names and no routes are a valid router")
}

/// `Some("b")` for about half of all queue names (FNV-1a, odd or even).
fn half(queue: &str) -> Option<&str> {
    let hash = queue.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % 2 == 1).then_some("b")
}
