//! [`Data`]: a pool's shared value, taken by a job function as a parameter.

use std::any::TypeId;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A value the worker pool shares with its jobs (a database pool, a mailer,
/// settings), received by declaring a parameter of type `Data<T>` (at any
/// position). It is not part of the payload: the pool hands it over, and
/// [`WorkerPool::start`](crate::WorkerPoolBuilder::start) refuses to start,
/// naming the job and the type, when a linked job takes a `Data<T>` that the
/// pool was not given ([`WorkerPoolBuilder::data`](crate::WorkerPoolBuilder::data)).
///
/// ```
/// use jobs_core::prelude::*;
///
/// pub struct Mailer {
///     pub from: String,
/// }
///
/// #[job(crate = jobs_core)]
/// async fn send_welcome(mailer: Data<Mailer>, to: String) -> Result<(), JobError> {
///     println!("{} -> {to}", mailer.from);
///     Ok(())
/// }
///
/// # fn main() -> Result<(), jobs_core::Error> {
/// let pool = WorkerPool::builder(MemoryQueue::new()).data(Mailer { from: "app@example.com".into() });
/// # drop(pool); Ok(()) }
/// ```
pub struct Data<T: ?Sized>(Arc<T>);

impl<T: ?Sized> Data<T> {
    /// Wraps a shared value (as the pool does).
    pub fn new(value: Arc<T>) -> Self {
        Data(value)
    }

    /// The shared value itself.
    pub fn into_inner(self) -> Arc<T> {
        self.0
    }
}

impl<T: ?Sized> Clone for Data<T> {
    fn clone(&self) -> Self {
        Data(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for Data<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> AsRef<T> for Data<T> {
    fn as_ref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Data<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Data").field(&&*self.0).finish()
    }
}

/// What a pool can share with its jobs: a value every worker task may use
/// at once.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shared with jobs: `Data<T>` needs `T: Send + Sync + 'static`",
    label = "not `Send + Sync + 'static`: every worker task of the pool may use it at once",
    note = "wrap it in a type that is (e.g. `Mutex<..>` for state, an owned value instead of a borrow)"
)]
pub trait PoolData: Send + Sync + 'static {}

impl<T: Send + Sync + 'static> PoolData for T {}

/// A shared value a job takes: its type, for the pool's check at start.
#[derive(Debug, Clone, Copy)]
pub struct DataNeed {
    /// The value's type id.
    pub type_id: fn() -> TypeId,
    /// The value's type name, for the error.
    pub type_name: fn() -> &'static str,
}

impl DataNeed {
    /// The need for a value of type `T`.
    pub const fn of<T: PoolData>() -> DataNeed {
        DataNeed { type_id: TypeId::of::<T>, type_name: std::any::type_name::<T> }
    }
}
