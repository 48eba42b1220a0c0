//! [`JobHandle`]: a typed view of one enqueued job, to wait for its result.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::Job;
use crate::error::Error;
use crate::events::Terminal;
use crate::queue::{CancelResult, JobInfo, QueueAdmin, QueueEvents, QueueInspect};
use crate::vocab::{JobId, JobStatus};

/// What a [`JobHandle`] needs of its backend: reading jobs, cancelling, and
/// events. Every full backend has it.
pub trait ResultSource: QueueInspect + QueueAdmin + QueueEvents {}

impl<T: QueueInspect + QueueAdmin + QueueEvents + ?Sized> ResultSource for T {}

/// One job seen from outside, typed by its job: its status, its result, a
/// wait for it, a cancel. Obtained from [`JobExt::submit`](crate::JobExt::submit)
/// (or [`JobHandle::new`] for a job enqueued earlier, by id); cloning is
/// cheap. The plain [`JobId`] stays available through [`JobHandle::id`].
///
/// ```
/// # use std::time::Duration;
/// # use jobs_core::prelude::*;
/// #[job(crate = jobs_core)]
/// async fn add(a: i64, b: i64) -> Result<i64, JobError> {
///     Ok(a + b)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = MemoryQueue::new();
/// let pool = WorkerPool::builder(queue.clone()).start()?;
/// let sum = Add { a: 2, b: 3 }.submit(&queue).await?;
/// assert_eq!(sum.wait(Duration::from_secs(10)).await?, 5);
/// pool.shutdown().await;
/// # Ok(()) }
/// ```
pub struct JobHandle<J: Job> {
    id: JobId,
    src: Arc<dyn ResultSource>,
    job: PhantomData<fn() -> J>,
}

impl<J: Job> Clone for JobHandle<J> {
    fn clone(&self) -> Self {
        JobHandle { id: self.id.clone(), src: self.src.clone(), job: PhantomData }
    }
}

impl<J: Job> fmt::Debug for JobHandle<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("job", &J::NAME).field("id", &self.id).finish()
    }
}

/// How a [`JobHandle::wait`] (or [`JobHandle::outcome`]) ends without the
/// job's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The job failed for good: it is in the dead-letter set.
    #[error("job `{id}` is dead after {attempts} attempt(s): {error}")]
    Dead {
        /// The job.
        id: JobId,
        /// Attempts it made.
        attempts: u32,
        /// Its last attempt's error.
        error: String,
    },
    /// The job was cancelled.
    #[error("job `{id}` was cancelled")]
    Cancelled {
        /// The job.
        id: JobId,
    },
    /// The job was not started before its expiry.
    #[error("job `{id}` expired before it started")]
    Expired {
        /// The job.
        id: JobId,
    },
    /// The job had not ended when the wait's time was up.
    #[error("job `{id}` had not ended after {waited:?} (it is {status})")]
    TimedOut {
        /// The job.
        id: JobId,
        /// How long the wait lasted.
        waited: Duration,
        /// Its status then.
        status: JobStatus,
    },
    /// The job is not stored (never was, or its retention ended).
    #[error("no job `{0}`: never enqueued, or removed after its retention period")]
    NotFound(JobId),
    /// The stored result does not decode as the job's output type (the job
    /// changed its `Ok` type since it ran).
    #[error("the result of job `{id}` does not decode as its output type: {error}")]
    Decode {
        /// The job.
        id: JobId,
        /// Why.
        error: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] Error),
}

impl<J: Job> JobHandle<J> {
    /// A handle for the job `id` of type `J` on `queue` (enqueued earlier,
    /// possibly by another process).
    pub fn new<Q: ResultSource + Clone>(queue: &Q, id: JobId) -> Self {
        JobHandle { id, src: Arc::new(queue.clone()), job: PhantomData }
    }

    /// Its id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Everything stored about the job (`None` once it was removed).
    pub async fn info(&self) -> Result<Option<JobInfo>, Error> {
        self.src.job(&self.id).await
    }

    /// Its status now.
    pub async fn status(&self) -> Result<JobStatus, Error> {
        match self.src.job(&self.id).await? {
            Some(info) => Ok(info.status),
            None => Err(Error::NotFound(self.id.clone())),
        }
    }

    /// Cancels it (see [`CancelResult`]).
    pub async fn cancel(&self) -> Result<CancelResult, Error> {
        self.src.cancel(&self.id).await
    }
}

impl<J: Job> JobHandle<J>
where
    J::Output: DeserializeOwned,
{
    /// How the job ended, without waiting: `Ok(None)` while it has not.
    pub async fn outcome(&self) -> Result<Option<J::Output>, WaitError> {
        match self.src.job(&self.id).await? {
            None => Err(WaitError::NotFound(self.id.clone())),
            Some(info) => self.ended(info),
        }
    }

    /// Waits until the job ends, at most `timeout`, and returns its value,
    /// or how it ended otherwise. A job that ended before the call returns
    /// at once. Waits do not poll: every handle of one backend shares one
    /// follower of the queue's events (see [`QueueEvents`]).
    pub async fn wait(&self, timeout: Duration) -> Result<J::Output, WaitError> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let src: Arc<dyn QueueEvents> = self.src.clone();
        loop {
            // Registered (recording on) before the job is read: an end after
            // the read is delivered; one before it is in what the read sees.
            let registered =
                tokio::time::timeout_at(deadline, crate::follow::register(self.src.event_hub(), &src, &self.id)).await;
            let rx = match registered {
                Ok(r) => Some(r?),
                Err(_) => None,
            };
            let Some(info) = self.src.job(&self.id).await? else {
                return Err(WaitError::NotFound(self.id.clone()));
            };
            let status = info.status;
            if let Some(v) = self.ended(info)? {
                return Ok(v);
            }
            let timed_out = || WaitError::TimedOut { id: self.id.clone(), waited: start.elapsed(), status };
            let Some(rx) = rx else { return Err(timed_out()) };
            match tokio::time::timeout_at(deadline, rx).await {
                // A final event, or a recheck: read the job again.
                Ok(Ok(Terminal::Final(_) | Terminal::Recheck)) | Ok(Err(_)) => {}
                Err(_) => return Err(timed_out()),
            }
        }
    }

    /// The value of an ended job, `None` while it runs or waits.
    fn ended(&self, info: JobInfo) -> Result<Option<J::Output>, WaitError> {
        let id = || self.id.clone();
        match info.status {
            JobStatus::Succeeded => {
                let v = info.result.unwrap_or(serde_json::Value::Null);
                serde_json::from_value(v).map(Some).map_err(|e| WaitError::Decode { id: id(), error: e.to_string() })
            }
            JobStatus::Dead => Err(WaitError::Dead {
                id: id(),
                attempts: info.attempts,
                error: info.last_error().unwrap_or("no error recorded").to_owned(),
            }),
            JobStatus::Cancelled => Err(WaitError::Cancelled { id: id() }),
            JobStatus::Expired => Err(WaitError::Expired { id: id() }),
            _ => Ok(None),
        }
    }
}
