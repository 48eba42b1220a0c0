//! [`Hooked`]: a queue handle whose enqueues pass producer-side hooks.

use std::sync::Arc;
use std::time::SystemTime;

use crate::error::Error;
use crate::queue::{
    forward_fns, BoxFuture, JobQueue, NewJob, PoolPresence, QueueAdmin, QueueEvents, QueueHistory, QueueInspect,
    ScheduleStore,
};
use crate::vocab::JobId;

/// Why an [`EnqueueHook`] refused a job: any error type of the
/// application's, kept as the source of [`Error::EnqueueRefused`] (downcast
/// it there to tell your own refusals apart).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Sees every job enqueued through a [`Hooked`] queue before it is stored:
/// it may change it (stamp a header, lower a priority) or refuse it.
///
/// A closure `Fn(&mut NewJob) -> Result<(), HookError>` is a hook.
pub trait EnqueueHook: Send + Sync + 'static {
    /// Called once per job, in the order the hooks were added. An error
    /// refuses the whole batch the job came in: nothing of it is stored.
    fn before_enqueue(&self, job: &mut NewJob) -> Result<(), HookError>;
}

impl<F> EnqueueHook for F
where
    F: Fn(&mut NewJob) -> Result<(), HookError> + Send + Sync + 'static,
{
    fn before_enqueue(&self, job: &mut NewJob) -> Result<(), HookError> {
        self(job)
    }
}

/// A queue whose every enqueue passes its [`EnqueueHook`]s first: jobs
/// enqueued by the application, by running jobs through
/// [`JobContext::queue_handle`](crate::JobContext::queue_handle) when a pool
/// runs on it, and the ticks of schedules its pools fire. Every other call
/// passes through unchanged; it is a backend wherever its inner queue is.
///
/// ```
/// use jobs_core::hooks::Hooked;
/// use jobs_core::{MemoryQueue, NewJob};
///
/// let queue = Hooked::new(MemoryQueue::new()).hook(|job: &mut NewJob| {
///     job.headers.insert("tenant".into(), "acme".into());
///     Ok(())
/// });
/// # let _ = queue;
/// ```
#[derive(Clone)]
pub struct Hooked<Q> {
    inner: Q,
    hooks: Arc<Vec<Arc<dyn EnqueueHook>>>,
}

impl<Q> std::fmt::Debug for Hooked<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked").field("hooks", &self.hooks.len()).finish_non_exhaustive()
    }
}

impl<Q: JobQueue> Hooked<Q> {
    /// Wraps `queue`, with no hooks yet.
    pub fn new(queue: Q) -> Self {
        Hooked { inner: queue, hooks: Arc::default() }
    }

    /// Adds a hook, run after those added before it.
    pub fn hook(mut self, hook: impl EnqueueHook) -> Self {
        Arc::make_mut(&mut self.hooks).push(Arc::new(hook));
        self
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The wrapped queue, unwrapped.
    pub fn into_inner(self) -> Q {
        self.inner
    }
}

/// Runs every hook on every job; the first refusal refuses the batch.
fn apply(hooks: &[Arc<dyn EnqueueHook>], jobs: &mut [NewJob]) -> Result<(), Error> {
    for (index, job) in jobs.iter_mut().enumerate() {
        for hook in hooks {
            // A panicking hook refuses the batch rather than unwinding
            // through the caller's enqueue.
            let source = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.before_enqueue(job))) {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => "the enqueue hook panicked".into(),
            };
            return Err(Error::EnqueueRefused { index, name: job.name.clone(), source });
        }
    }
    Ok(())
}

impl<Q: JobQueue> JobQueue for Hooked<Q> {
    fn enqueue_many(&self, mut jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            apply(&self.hooks, &mut jobs)?;
            self.inner.enqueue_many(jobs).await
        })
    }
    forward_fns!(s => &s.inner; fetch, finish, extend_leases, report_progress, waiter, now, payload_format, presence, flow_store);

    /// The backend's schedule store, hooked: a fired tick is an enqueue.
    fn schedule_store(&self) -> Option<Arc<dyn ScheduleStore>> {
        let store = self.inner.schedule_store()?;
        Some(Arc::new(Hooked { inner: store, hooks: self.hooks.clone() }))
    }
}

impl<Q: ScheduleStore> ScheduleStore for Hooked<Q> {
    forward_fns!(s => &s.inner; put_schedule, schedules, remove_schedule, set_schedule_paused);

    /// A tick's job passes the hooks like any enqueue; a refused one is
    /// not recorded, and the scheduler tries the tick again later.
    fn fire_schedule<'a>(
        &'a self,
        name: &'a str,
        tick: SystemTime,
        mut job: Option<NewJob>,
    ) -> BoxFuture<'a, Result<Option<JobId>, Error>> {
        Box::pin(async move {
            if let Some(j) = job.as_mut() {
                apply(&self.hooks, std::slice::from_mut(j))?;
            }
            self.inner.fire_schedule(name, tick, job).await
        })
    }
}

impl<Q: PoolPresence> PoolPresence for Hooked<Q> {
    forward_fns!(s => &s.inner; report_pool, remove_pool, pools);
}

impl<Q: QueueInspect> QueueInspect for Hooked<Q> {
    forward_fns!(s => &s.inner; job, stats, dead_jobs, list_jobs, groups);
}

impl<Q: QueueAdmin> QueueAdmin for Hooked<Q> {
    forward_fns!(s => &s.inner; cancel, retry_dead, purge_dead, pause, resume, set_policy, policy, breaker, set_breaker, set_group_breaker);
}

impl<Q: QueueHistory> QueueHistory for Hooked<Q> {
    forward_fns!(s => &s.inner; throughput);
}

impl<Q: QueueEvents> QueueEvents for Hooked<Q> {
    forward_fns!(s => &s.inner; listen, read_events, event_waiter, event_hub);
}
