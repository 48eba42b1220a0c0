//! The definition side of a job: [`Job`], [`JobExt`] and [`JobOptions`].

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ValidationError};
mod group;
mod handle;

use crate::parse::validate_queue_name;
use crate::payload::PayloadFormat;
use crate::queue::{CallerId, IfExists, JobGroup, JobKey, JobQueue, KeyMode, NewJob};
use crate::vocab::{Headers, JobId, Priority};
pub use group::GroupKey;
pub use handle::{JobHandle, ResultSource, WaitError};

/// A job type: implemented by the payload struct that `#[job]` generates.
///
/// You rarely implement it by hand; the attribute fills every item from its
/// keys. The constants are the job's defaults; [`JobOptions`] override them
/// per enqueue.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name stored with each job and used to find its handler
    /// (`name = ".."`, default the function's name).
    const NAME: &'static str;
    /// What the job function returns on success (its `Ok` type): stored as
    /// the job's result and handed to whoever waits for it
    /// ([`JobHandle::wait`](crate::JobHandle::wait)).
    type Output;
    /// The default queue (`queue = ".."`, default `"default"`).
    const QUEUE: &'static str;
    /// The default priority (`priority = ".."`, default normal).
    const PRIORITY: Priority;
    /// Retries after the first attempt (`retries = N` means N + 1 attempts);
    /// `None` lets the pool's or configuration's default apply, else 3.
    const MAX_RETRIES: Option<u32>;
    /// How long one attempt may run before it counts as failed.
    const TIMEOUT: Option<Duration>;
    /// The default deduplication window (`unique_for = ".."`).
    const UNIQUE_FOR: Option<Duration> = None;
    /// The default expiry (`expires = ".."`): see [`JobOptions::expires_in`].
    const EXPIRES: Option<Duration> = None;
    /// How many jobs of one group run at once, across every pool
    /// (`concurrency = N`); `None`: no bound per group.
    const CONCURRENCY: Option<u32> = None;
    /// How many jobs of one group start per window, across every pool
    /// (`rate = "50/1s"`); `None`: no bound per group.
    const RATE: Option<crate::queue::Rate> = None;
    /// Payload fields marked `#[redact]` (as serialized): stored and given
    /// to the job as written, shown as `"[redacted]"` by every view of the
    /// job (API, dashboard, command line, logs).
    const REDACTED: &'static [&'static str] = &[];

    /// Checks the payload against the rules declared with `#[validate(..)]`.
    fn validate(&self) -> Result<(), ValidationError>;

    /// The group this payload puts the job in (`group = field`): jobs of
    /// one group are limited together and served in turn with other
    /// groups. `None`: no group.
    fn group(&self) -> Option<String> {
        None
    }
}

/// Per-enqueue options. Each one set here wins over the attribute, which wins
/// over the pool or configuration, which wins over the built-in default.
///
/// ```
/// use std::time::Duration;
/// use jobs_core::{JobOptions, Priority};
/// let opts = JobOptions::new()
///     .priority(Priority::Critical)
///     .delay(Duration::from_secs(300))
///     .queue("urgent")
///     .max_retries(5);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOptions {
    pub(crate) priority: Option<Priority>,
    pub(crate) run_at: Option<RunAt>,
    pub(crate) queue: Option<String>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) unique_for: Option<Duration>,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) caller_id: Option<String>,
    pub(crate) if_exists: IfExists,
    pub(crate) key: Option<JobKey>,
    pub(crate) group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RunAt {
    Delay(Duration),
    At(SystemTime),
}

impl JobOptions {
    /// No overrides: the job's attribute and the pool decide.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs the job at this priority.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = Some(p);
        self
    }
    /// Runs the job no earlier than `d` from the moment it is enqueued, as
    /// the backend's clock counts it. At most 100 years
    /// ([`MAX_JOB_DURATION`](crate::backend::MAX_JOB_DURATION)): a longer delay makes
    /// the enqueue fail with [`Error::InvalidArgument`].
    pub fn delay(mut self, d: Duration) -> Self {
        self.run_at = Some(RunAt::Delay(d));
        self
    }
    /// Runs the job no earlier than `when` (a `SystemTime` or a chrono `DateTime`).
    /// At most the end of the year 9999
    /// ([`MAX_SCHEDULED_AT_SECS`](crate::backend::MAX_SCHEDULED_AT_SECS)): a later
    /// time makes the enqueue fail with [`Error::InvalidArgument`].
    pub fn scheduled_at(mut self, when: impl Into<SystemTime>) -> Self {
        self.run_at = Some(RunAt::At(when.into()));
        self
    }
    /// Sends the job to another queue than its attribute's.
    pub fn queue(mut self, q: &str) -> Self {
        self.queue = Some(q.to_owned());
        self
    }
    /// Retries after the first attempt (N + 1 attempts in all).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
    /// How long one attempt may run. At most 100 years
    /// ([`MAX_JOB_DURATION`](crate::backend::MAX_JOB_DURATION)): a longer timeout makes
    /// the enqueue fail with [`Error::InvalidArgument`].
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// While a job of the same name with the same payload was enqueued less
    /// than `window` ago and has not finished, enqueueing returns its id and
    /// writes nothing. At most 100 years
    /// ([`MAX_JOB_DURATION`](crate::backend::MAX_JOB_DURATION)): a longer window makes
    /// the enqueue fail with [`Error::InvalidArgument`].
    pub fn unique_for(mut self, window: Duration) -> Self {
        self.unique_for = Some(window);
        self
    }
    /// A job not started within `d` of when it is due expires: the worker
    /// that would take it ends it [`JobStatus::Expired`](crate::JobStatus::Expired)
    /// instead, and it never runs. "Due" is now, or the end of its
    /// [`delay`](Self::delay), or its [`scheduled_at`](Self::scheduled_at)
    /// time: `delay(1h).expires_in(10m)` runs between one hour and one hour
    /// ten minutes from now, or not at all.
    ///
    /// "Started" means an attempt of it counted: a job handed back at
    /// shutdown, whose worker died before its handler started, or that
    /// snoozed ([`JobError::retry_in`](crate::JobError::retry_in)) can still
    /// expire; once an attempt failed, its retries run whatever the time (it
    /// did start). Times are the backend's clock. Must be more than zero
    /// and at most 100 years ([`MAX_JOB_DURATION`](crate::backend::MAX_JOB_DURATION)),
    /// else the enqueue fails with [`Error::InvalidArgument`].
    ///
    /// ```
    /// # use jobs_core::prelude::*;
    /// # use std::time::Duration;
    /// let options = JobOptions::new().expires_in(Duration::from_secs(600));
    /// # let _ = options;
    /// ```
    pub fn expires_in(mut self, d: Duration) -> Self {
        self.expires_in = Some(d);
        self
    }

    /// Gives the job an id of the caller's choosing (an order number, a
    /// webhook delivery id), unique in its queue for as long as the job is
    /// stored: while a job with this id is waiting, running, or ended and
    /// kept for its retention, enqueueing another one with it writes nothing
    /// and returns the stored job's id ([`IfExists::ReturnExisting`], the
    /// default) or fails with [`Error::IdExists`] ([`fail_if_exists`](Self::fail_if_exists)).
    /// Once the stored job is deleted (past its retention), the id can be
    /// used again. 1 to 256 bytes; two jobs of one batch may not share an
    /// id ([`Error::InvalidArgument`]).
    ///
    /// The job's [`JobId`] stays a generated one; [`JobInfo::caller_id`](crate::JobInfo::caller_id)
    /// shows the caller's id.
    ///
    /// ```
    /// # use jobs_core::prelude::*;
    /// # #[job(crate = jobs_core)]
    /// # async fn charge(order: u64) -> Result<(), JobError> { Ok(()) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
    /// let queue = MemoryQueue::new();
    /// let first = Charge { order: 42 }.enqueue_with(&queue, JobOptions::new().id("order-42")).await?;
    /// let again = Charge { order: 42 }.enqueue_with(&queue, JobOptions::new().id("order-42")).await?;
    /// assert_eq!(first, again);
    /// let refused = Charge { order: 42 }.enqueue_with(&queue, JobOptions::new().id("order-42").fail_if_exists()).await;
    /// assert!(matches!(refused, Err(jobs_core::Error::IdExists { .. })));
    /// # Ok(()) }
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.caller_id = Some(id.into());
        self
    }

    /// With [`id`](Self::id): when a job with the id is stored already, the
    /// enqueue fails with [`Error::IdExists`] instead of returning its id.
    /// Without an id, it changes nothing.
    pub fn fail_if_exists(mut self) -> Self {
        self.if_exists = IfExists::Fail;
        self
    }

    /// Gives the job a key: at most one job of this name with this key
    /// waits in the queue (pending or scheduled, no attempt started yet).
    /// When one is waiting, [`KeyMode::Keep`] leaves it and returns its id;
    /// [`KeyMode::Replace`] replaces its payload, headers, priority,
    /// retries, timeout, due time and expiry with this job's and returns its
    /// id (debounce). Once the waiting job starts, the key is free again.
    /// 1 to 256 bytes; two jobs of one batch may not share a name and key
    /// ([`Error::InvalidArgument`]).
    ///
    /// ```
    /// # use jobs_core::prelude::*;
    /// # use std::time::Duration;
    /// # #[job(crate = jobs_core)]
    /// # async fn reindex(user: u64, reason: String) -> Result<(), JobError> { Ok(()) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
    /// let queue = MemoryQueue::new();
    /// // Debounce: one reindex per user, 5 s after the last change.
    /// let debounce = || JobOptions::new().key("user-7", KeyMode::Replace).delay(Duration::from_secs(5));
    /// let a = Reindex { user: 7, reason: "name".into() }.enqueue_with(&queue, debounce()).await?;
    /// let b = Reindex { user: 7, reason: "email".into() }.enqueue_with(&queue, debounce()).await?;
    /// assert_eq!(a, b);
    /// let info = queue.job(&a).await?.expect("stored");
    /// assert_eq!(info.payload["reason"], "email");
    /// # Ok(()) }
    /// ```
    pub fn key(mut self, key: impl Into<String>, mode: KeyMode) -> Self {
        self.key = Some(JobKey { key: key.into(), mode });
        self
    }
}

impl JobOptions {
    /// Puts the job in this group, whatever its payload says (`group =
    /// field`): jobs of one group are limited together (the job's
    /// `concurrency`) and served in turn with the other groups of the
    /// queue. 1 to 128 bytes.
    pub fn group(mut self, key: impl Into<String>) -> Self {
        self.group = Some(key.into());
        self
    }
}

/// Enqueueing, for every [`Job`]. Each call validates the payload first and
/// writes nothing when it is invalid.
///
/// ```
/// # use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)]
/// # async fn ping(#[validate(length(min = 1))] host: String) -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
/// let queue = MemoryQueue::new();
/// let id = Ping { host: "example.org".into() }.enqueue(&queue).await?;
/// assert_eq!(id.queue(), "default");
/// assert!(Ping { host: String::new() }.enqueue(&queue).await.is_err());
/// # Ok(()) }
/// ```
pub trait JobExt: Job {
    /// Enqueues the job with its attribute's settings.
    fn enqueue<Q: JobQueue + ?Sized>(self, queue: &Q) -> impl std::future::Future<Output = Result<JobId, Error>> + Send
    where
        Self: Sized,
    {
        self.enqueue_with(queue, JobOptions::new())
    }

    /// Enqueues the job with per-call overrides.
    fn enqueue_with<Q: JobQueue + ?Sized>(
        self,
        queue: &Q,
        options: JobOptions,
    ) -> impl std::future::Future<Output = Result<JobId, Error>> + Send
    where
        Self: Sized,
    {
        let job = self.into_new_job_as(options, queue.payload_format());
        async move {
            let job = job?;
            let mut ids = queue.enqueue_many(vec![job]).await?;
            ids.pop().ok_or_else(|| Error::Backend("enqueue returned no id".into()))
        }
    }

    /// Enqueues the job and returns a typed handle to it: wait for its
    /// result, read its status, cancel it (see [`JobHandle`]).
    fn submit<Q: JobQueue + ResultSource + Clone>(
        self,
        queue: &Q,
    ) -> impl std::future::Future<Output = Result<JobHandle<Self>, Error>> + Send
    where
        Self: Sized,
    {
        self.submit_with(queue, JobOptions::new())
    }

    /// [`JobExt::submit`] with per-call overrides.
    fn submit_with<Q: JobQueue + ResultSource + Clone>(
        self,
        queue: &Q,
        options: JobOptions,
    ) -> impl std::future::Future<Output = Result<JobHandle<Self>, Error>> + Send
    where
        Self: Sized,
    {
        let enqueued = self.enqueue_with(queue, options);
        async move { Ok(JobHandle::new(queue, enqueued.await?)) }
    }

    /// Enqueues a batch of jobs of this type with their attribute's
    /// settings, in one call of the backend: every job is validated and
    /// encoded first, and when one is refused nothing is written and the
    /// error is [`Error::InvalidBatchItem`] with its index. The backend
    /// stores the batch all or nothing too (a full queue or a refused
    /// priority fails it whole; see [`JobQueue::enqueue_many`]). Returns the
    /// ids in the order of `jobs`; an empty batch calls nothing.
    ///
    /// ```
    /// # use jobs_core::prelude::*;
    /// # #[job(crate = jobs_core)]
    /// # async fn ping(#[validate(length(min = 1))] host: String) -> Result<(), JobError> { Ok(()) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs_core::Error> {
    /// let queue = MemoryQueue::new();
    /// let hosts = ["a.example", "b.example"];
    /// let ids = Ping::enqueue_all(&queue, hosts.map(|h| Ping { host: h.into() })).await?;
    /// assert_eq!(ids.len(), 2);
    /// let err = Ping::enqueue_all(&queue, [Ping { host: "c.example".into() }, Ping { host: String::new() }]).await;
    /// assert!(matches!(err, Err(jobs_core::Error::InvalidBatchItem { index: 1, .. })));
    /// # Ok(()) }
    /// ```
    fn enqueue_all<Q: JobQueue + ?Sized, I: IntoIterator<Item = Self>>(
        queue: &Q,
        jobs: I,
    ) -> impl std::future::Future<Output = Result<Vec<JobId>, Error>> + Send
    where
        Self: Sized,
    {
        Self::enqueue_all_with(queue, jobs, JobOptions::new())
    }

    /// [`JobExt::enqueue_all`] with the same per-call overrides for every
    /// job of the batch.
    fn enqueue_all_with<Q: JobQueue + ?Sized, I: IntoIterator<Item = Self>>(
        queue: &Q,
        jobs: I,
        options: JobOptions,
    ) -> impl std::future::Future<Output = Result<Vec<JobId>, Error>> + Send
    where
        Self: Sized,
    {
        // Built before the future so that the iterator need not be `Send`.
        let format = queue.payload_format();
        let batch: Result<Vec<NewJob>, Error> = jobs
            .into_iter()
            .enumerate()
            .map(|(index, job)| {
                job.into_new_job_as(options.clone(), format)
                    .map_err(|e| Error::InvalidBatchItem { index, source: Box::new(e) })
            })
            .collect();
        async move {
            let batch = batch?;
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            queue.enqueue_many(batch).await
        }
    }

    /// Enqueues the job to run at `when`.
    fn schedule_at<Q: JobQueue + ?Sized>(
        self,
        queue: &Q,
        when: impl Into<SystemTime>,
    ) -> impl std::future::Future<Output = Result<JobId, Error>> + Send
    where
        Self: Sized,
    {
        self.enqueue_with(queue, JobOptions::new().scheduled_at(when))
    }

    /// Validates and serializes the job into what a backend stores, without
    /// writing anything: the building block of batch enqueues
    /// ([`JobQueue::enqueue_many`]).
    fn into_new_job(self, options: JobOptions) -> Result<NewJob, Error>
    where
        Self: Sized,
    {
        self.into_new_job_as(options, PayloadFormat::Json)
    }

    /// [`JobExt::into_new_job`] with the payload encoded in `format` (a
    /// backend's [`JobQueue::payload_format`]), so that the backend stores
    /// it as given and the worker decodes it without transcoding.
    fn into_new_job_as(self, options: JobOptions, format: PayloadFormat) -> Result<NewJob, Error>
    where
        Self: Sized,
    {
        self.validate()?;
        let (format, payload) = format.encode(&self).map_err(|e| Error::Serialize(e.to_string()))?;
        let queue = options.queue.as_deref().unwrap_or(Self::QUEUE);
        validate_queue_name(queue)?;
        if options.expires_in.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidArgument(format!(
                "`expires_in` of zero for job `{}`: it would expire before any worker could take it; \
                 give it some time, or no expiry",
                Self::NAME
            )));
        }
        let now = SystemTime::now();
        Ok(NewJob {
            id: JobId::new(queue),
            name: Self::NAME.to_owned(),
            payload,
            format,
            priority: options.priority.unwrap_or(Self::PRIORITY),
            max_retries: options.max_retries.or(Self::MAX_RETRIES),
            timeout: options.timeout.or(Self::TIMEOUT),
            // A delay travels as a duration: the backend adds it to its own
            // clock, whatever this host's clock says.
            run_at: match options.run_at {
                Some(RunAt::Delay(d)) => Some(crate::queue::When::In(d)),
                Some(RunAt::At(t)) => Some(crate::queue::When::At(t)),
                None => None,
            },
            unique_for: options.unique_for.or(Self::UNIQUE_FOR),
            // Counted from when the job is due, on the clock that decides
            // when that is.
            expires: options.expires_in.or(Self::EXPIRES).map(|d| match options.run_at {
                Some(RunAt::Delay(delay)) => crate::queue::When::In(delay.saturating_add(d)),
                Some(RunAt::At(t)) => crate::queue::When::At(t.checked_add(d).unwrap_or(t)),
                None => crate::queue::When::In(d),
            }),
            caller_id: options.caller_id.map(|id| CallerId { id, if_exists: options.if_exists }),
            key: options.key,
            group: options.group.or_else(|| self.group()).map(|key| JobGroup {
                key,
                concurrency: Self::CONCURRENCY,
                rate: Self::RATE,
            }),
            enqueued_at: now,
            headers: {
                let mut h = Headers::new();
                crate::trace::propagator().inject(&mut h);
                crate::redact::mark(&mut h, Self::REDACTED);
                h
            },
        })
    }
}

impl<J: Job> JobExt for J {}
