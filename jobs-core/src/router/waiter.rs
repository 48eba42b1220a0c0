//! A waiter over queues of several backends: it wakes when any of theirs
//! does.

use std::time::Duration;

use crate::error::Error;
use crate::queue::{BoxFuture, FetchRequest, Fetched, Waiter};

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

    /// Over one backend, its own (jobs handed over in one hop); over
    /// several, a wait.
    fn wait_fetch<'a>(
        &'a mut self,
        req: &'a FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Fetched>, Error>> {
        if self.0.len() == 1 {
            return self.0[0].wait_fetch(req, timeout);
        }
        Box::pin(async move { self.wait(timeout).await.map(|()| None) })
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<Fetched, Error>> {
        match self.0.as_mut_slice() {
            [one] => one.settle(),
            _ => Box::pin(async { Ok(Fetched::default()) }),
        }
    }
}
