//! Waiting for one call per backend at once: a fan-out over `n` servers
//! costs the slowest round trip, not the sum of them.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::queue::BoxFuture;

/// Runs every future at once; their outputs in the order given.
pub(super) async fn join_all<'a, T: Send + 'a>(futures: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    let mut slots: Vec<(Option<BoxFuture<'a, T>>, Option<T>)> = futures.into_iter().map(|f| (Some(f), None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, out) in &mut slots {
            if let Some(f) = future {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    // Every slot is filled once the loop above saw no future pending.
    slots.into_iter().filter_map(|(_, out)| out).collect()
}

/// The first future to finish, of several polled at once.
pub(super) async fn first<'a, T: Send + 'a>(mut futures: Vec<BoxFuture<'a, T>>) -> T {
    std::future::poll_fn(|cx| {
        for f in &mut futures {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    })
    .await
}
