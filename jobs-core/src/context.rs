//! [`JobContext`]: what a running job knows about itself.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::data::Data;
use crate::vocab::JobId;

/// Handed to a job function that declares a parameter of this type (at any
/// position). Cheap to clone.
///
/// ```
/// use jobs_core::prelude::*;
/// #[job(crate = jobs_core)]
/// async fn long_export(ctx: JobContext, rows: u64) -> Result<(), JobError> {
///     for _ in 0..rows {
///         tokio::select! {
///             _ = ctx.cancelled() => return Err(JobError::permanent("cancelled")),
///             _ = tokio::task::yield_now() => {}
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
    data: Arc<Extensions>,
    /// This attempt's own values, put there by layers: `None` until one does,
    /// so an attempt without layers allocates nothing for them.
    ext: Option<Arc<Extensions>>,
    queue: Option<Arc<dyn crate::queue::JobQueue>>,
    /// This attempt's progress writer; `None` outside a pool.
    progress: Option<Arc<crate::progress::Reporter>>,
    /// The job's place in a workflow or batch; `None` outside one.
    flow: Option<Arc<crate::queue::FlowPlace>>,
    /// Where a sandbox child sends its job's progress (to the pool, whose
    /// writer stores it).
    #[cfg(all(unix, feature = "sandbox"))]
    progress_sink: Option<ProgressSink>,
}

/// A sandbox child's way to hand its job's progress to the pool.
#[cfg(all(unix, feature = "sandbox"))]
pub(crate) type ProgressSink = Arc<dyn Fn(f32, String) + Send + Sync>;

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").field("inner", &self.inner).field("data", &self.data.0.len()).finish()
    }
}

/// Values shared with every job of a pool, one per type
/// ([`WorkerPoolBuilder::data`](crate::WorkerPoolBuilder::data)).
#[derive(Default, Clone)]
pub struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Extensions {
    /// Adds (or replaces) the value of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Adds (or replaces) the value of type `T` that `value` already shares
    /// (an application that keeps its own handle to it).
    pub fn insert_shared<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.0.insert(TypeId::of::<T>(), value);
    }

    /// The value of type `T`, if one was added.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref::<T>())
    }

    /// The value of type `T` as a [`Data`], if one was added.
    pub fn shared<T: Send + Sync + 'static>(&self) -> Option<Data<T>> {
        let v = Arc::clone(self.0.get(&TypeId::of::<T>())?);
        v.downcast::<T>().ok().map(Data::new)
    }

    /// Whether a value of the type `id` was added.
    pub fn contains(&self, id: TypeId) -> bool {
        self.0.contains_key(&id)
    }

    /// Adds every value of `other`, replacing those of the same type.
    pub fn extend(&mut self, other: Extensions) {
        self.0.extend(other.0);
    }
}

#[derive(Debug)]
struct Inner {
    id: JobId,
    name: String,
    attempt: u32,
    max_retries: u32,
    enqueued_at: SystemTime,
    cancel: CancellationToken,
}

impl JobContext {
    /// Builds a context; the worker pool does this for each attempt. Tests of
    /// job functions can use it to call a job function directly.
    pub fn new(
        id: JobId,
        name: impl Into<String>,
        attempt: u32,
        max_retries: u32,
        enqueued_at: SystemTime,
        cancel: CancellationToken,
    ) -> Self {
        JobContext {
            inner: Arc::new(Inner { id, name: name.into(), attempt, max_retries, enqueued_at, cancel }),
            data: Arc::default(),
            ext: None,
            queue: None,
            progress: None,
            flow: None,
            #[cfg(all(unix, feature = "sandbox"))]
            progress_sink: None,
        }
    }

    /// Gives the job the pool's shared values and queue handle (a test's
    /// context may have no queue).
    pub(crate) fn with_pool(mut self, data: Arc<Extensions>, queue: Option<Arc<dyn crate::queue::JobQueue>>) -> Self {
        self.data = data;
        self.queue = queue;
        self
    }

    /// Sends the job's progress to `sink` (a sandbox child's channel to the
    /// pool), after the same check of its arguments.
    #[cfg(all(unix, feature = "sandbox"))]
    pub(crate) fn with_progress_sink(mut self, sink: ProgressSink) -> Self {
        self.progress_sink = Some(sink);
        self
    }

    /// Places the job in its workflow or batch (from its headers).
    pub(crate) fn with_headers(self, headers: &crate::vocab::Headers) -> Self {
        self.with_flow_place(crate::queue::FlowPlace::from_headers(headers))
    }

    /// Places the job in its workflow or batch (`None`: in none).
    pub(crate) fn with_flow_place(mut self, place: Option<crate::queue::FlowPlace>) -> Self {
        self.flow = place.map(Arc::new);
        self
    }

    /// The job's place in a workflow or batch.
    pub(crate) fn flow_place(&self) -> Option<&crate::queue::FlowPlace> {
        self.flow.as_deref()
    }

    /// Gives the job its attempt's progress writer.
    pub(crate) fn with_progress(mut self, reporter: Arc<crate::progress::Reporter>) -> Self {
        self.progress = Some(reporter);
        self
    }

    /// Adds a shared value, as a pool's [`data`](crate::WorkerPoolBuilder::data)
    /// does: for calling a job function in a test.
    pub fn with_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.data).insert(value);
        self
    }

    /// A value the pool shares with its jobs (a database pool, a mailer,
    /// settings), by type; `None` when the pool was given none of that type.
    ///
    /// ```
    /// # use jobs_core::JobContext;
    /// struct Mailer { host: String }
    /// let ctx = JobContext::for_test("send").with_data(Mailer { host: "smtp.local".into() });
    /// assert_eq!(ctx.data::<Mailer>().unwrap().host, "smtp.local");
    /// assert!(ctx.data::<String>().is_none());
    /// ```
    pub fn data<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.data.get::<T>()
    }

    /// The pool's shared value of type `T` as a [`Data`] (what a `Data<T>`
    /// parameter receives); `None` when the pool was given none of that type.
    pub fn shared<T: Send + Sync + 'static>(&self) -> Option<Data<T>> {
        self.data.shared::<T>()
    }

    /// A value a [layer](crate::hooks::JobLayer) added to this attempt (a
    /// tenant read from the job's headers, a request id), by type; `None`
    /// when none of that type was added.
    ///
    /// ```
    /// # use jobs_core::JobContext;
    /// struct Tenant(String);
    /// let mut ctx = JobContext::for_test("send");
    /// ctx.extensions_mut().insert(Tenant("acme".into()));
    /// assert_eq!(ctx.extension::<Tenant>().unwrap().0, "acme");
    /// ```
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.ext.as_ref()?.get::<T>()
    }

    /// This attempt's own values, to add to (layers do, through
    /// [`Attempt::extensions_mut`](crate::hooks::Attempt::extensions_mut)).
    /// Clones of the context made before a change do not see it.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        Arc::make_mut(self.ext.get_or_insert_with(Arc::default))
    }

    /// The queue this job was taken from, to enqueue follow-up jobs (a
    /// campaign fanning out per recipient); `None` outside a pool.
    pub fn queue_handle(&self) -> Option<&Arc<dyn crate::queue::JobQueue>> {
        self.queue.as_ref()
    }

    /// A context for calling a job function outside a pool (in a test):
    /// attempt 1 of 4, on queue `default`, never cancelled.
    pub fn for_test(name: &str) -> Self {
        Self::new(JobId::new("default"), name, 1, 3, SystemTime::now(), CancellationToken::new())
    }

    /// This job's id.
    pub fn job_id(&self) -> &JobId {
        &self.inner.id
    }

    /// This job's name.
    pub fn job_name(&self) -> &str {
        &self.inner.name
    }

    /// The queue it was taken from.
    pub fn queue(&self) -> &str {
        self.inner.id.queue()
    }

    /// This attempt, 1-based.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    /// Whether this is the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.inner.attempt > self.inner.max_retries
    }

    /// When the job was enqueued.
    pub fn enqueued_at(&self) -> SystemTime {
        self.inner.enqueued_at
    }

    /// Resolves when the job is cancelled, or when the pool shuts down past
    /// its grace period: finish quickly and return.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// Reports how far the job is: `fraction` done (0.0 to 1.0) and a short
    /// note (cut to [`MAX_PROGRESS_NOTE`](crate::backend::MAX_PROGRESS_NOTE)
    /// bytes at a character boundary). Stored on the job
    /// ([`JobInfo::progress`](crate::JobInfo::progress)) and recorded as a
    /// [`Progress`](crate::EventKind::Progress) event.
    ///
    /// Call it as often as is convenient: the first value is written at
    /// once, then at most one per the pool's
    /// [`progress_interval`](crate::WorkerPoolBuilder::progress_interval)
    /// (default 250 ms), always the latest, and the last one before the
    /// attempt's end is reported. Outside a pool (a test's context) it only
    /// checks its arguments.
    ///
    /// Errors: [`ProgressError::InvalidFraction`](crate::ProgressError::InvalidFraction)
    /// for NaN or a value outside 0..=1;
    /// [`LeaseLost`](crate::ProgressError::LeaseLost) once this worker's
    /// lease was taken over (stop: the result will be refused too);
    /// [`Ended`](crate::ProgressError::Ended) after the attempt's end;
    /// [`Backend`](crate::ProgressError::Backend) when the backend failed
    /// (the value is kept and written later). A job that treats progress as
    /// best effort ignores the error.
    ///
    /// ```
    /// use jobs_core::prelude::*;
    /// #[job(crate = jobs_core)]
    /// async fn transcode(ctx: JobContext, frames: u32) -> Result<(), JobError> {
    ///     for i in 0..frames {
    ///         // .. one frame ..
    ///         ctx.progress((i + 1) as f32 / frames as f32, format!("frame {}", i + 1)).await?;
    ///     }
    ///     Ok(())
    /// }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = JobContext::for_test("transcode");
    /// assert!(ctx.progress(f32::NAN, "").await.is_err());
    /// assert!(ctx.progress(0.5, "half").await.is_ok());
    /// # }
    /// ```
    pub async fn progress(&self, fraction: f32, note: impl Into<String>) -> Result<(), crate::ProgressError> {
        match &self.progress {
            Some(reporter) => reporter.report(fraction, note.into()).await,
            None if crate::queue::valid_fraction(fraction) => {
                #[cfg(all(unix, feature = "sandbox"))]
                if let Some(sink) = &self.progress_sink {
                    sink(fraction, note.into());
                }
                Ok(())
            }
            None => Err(crate::ProgressError::InvalidFraction(fraction)),
        }
    }

    /// Whether [`JobContext::cancelled`] has resolved.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }
}
