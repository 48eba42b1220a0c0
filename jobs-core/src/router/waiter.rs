//! A waiter over queues of several backends: it wakes when any of theirs
//! does.

use std::time::Duration;

use crate::error::Error;
use crate::queue::{BoxFuture, Waiter};

/// Every backend's waiter for its queues of the fetch loop.
pub(super) struct AnyWaiter(pub(super) Vec<Box<dyn Waiter>>);

impl Waiter for AnyWaiter {
    fn arm(&mut self) {
        for w in &mut self.0 {
            w.arm();
        }
    }

    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let waits = self.0.iter_mut().map(|w| w.wait(timeout)).collect();
        Box::pin(super::join::first(waits))
    }
}
