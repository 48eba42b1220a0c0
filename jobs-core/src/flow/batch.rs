//! [`Batch`]: a set of jobs with callbacks fired once it has ended.

use super::{relay, store_of, FlowRun};
use crate::error::Error;
use crate::error::FlowError;
use crate::job::{Job, JobExt, JobOptions};
use crate::queue::{mark_member, validate_flow_id, FlowKind, FlowMember, NewFlow, ON_COMPLETE, ON_SUCCESS};
use crate::queue::{JobQueue, NewJob};
use crate::vocab::JobId;

/// A set of jobs with an `on_success` job (enqueued once, when every job of
/// the batch succeeded) and an `on_complete` job (enqueued once, when every
/// job ended, whatever its end).
///
/// A batch is stored by its first [`add`](Self::add) (or
/// [`create`](Self::create)) and stays open: jobs can be added to it,
/// also from inside its own jobs ([`JobContext::batch`](crate::JobContext::batch)).
/// It ends only once it is closed ([`close`](Self::close), or
/// [`add_and_close`](Self::add_and_close)) and every job of it ended. A
/// cancelled batch fires neither callback.
///
/// ```
/// # use std::time::Duration;
/// use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)] async fn send_invoice(customer: u64) -> Result<(), JobError> { Ok(()) }
/// # #[job(crate = jobs_core)] async fn report_done(run: String) -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = MemoryQueue::new();
/// let pool = WorkerPool::builder(queue.clone()).start()?;
/// let batch = Batch::new().on_complete(ReportDone { run: "invoices".into() });
/// batch.add(&queue, (1..=3).map(|customer| SendInvoice { customer })).await?;
/// batch.add(&queue, [SendInvoice { customer: 4 }]).await?;
/// let run = batch.close(&queue).await?;
/// let done = run.wait(Duration::from_secs(10)).await?;
/// assert_eq!((done.status, done.total, done.succeeded), (FlowStatus::Succeeded, 4, 4));
/// pool.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    id: String,
    /// The callbacks as built (an error kept as its message, so that the
    /// batch stays `Clone`; it is reported by the first call that stores).
    on_success: Option<Result<NewJob, String>>,
    on_complete: Option<Result<NewJob, String>>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    /// A new batch with a generated id (`batch-<ulid>`).
    pub fn new() -> Self {
        Batch::with_id(format!("batch-{}", ulid::Ulid::new()))
    }

    /// A new batch with this id (1 to 128 letters, digits, `_`, `-`, `.`,
    /// `:`), unique among stored workflows and batches; or, for one stored
    /// earlier, a handle to add jobs to it or close it (its callbacks are
    /// the stored ones).
    pub fn with_id(id: impl Into<String>) -> Self {
        Batch { id: id.into(), on_success: None, on_complete: None }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Enqueued once, when every job of the batch succeeded.
    pub fn on_success<J: Job>(self, job: J) -> Self {
        self.on_success_with(job, JobOptions::new())
    }

    /// [`on_success`](Self::on_success) with options.
    pub fn on_success_with<J: Job>(mut self, job: J, options: JobOptions) -> Self {
        self.on_success = Some(job.into_new_job(options).map_err(|e| e.to_string()));
        self
    }

    /// Enqueued once, when every job of the batch ended.
    pub fn on_complete<J: Job>(self, job: J) -> Self {
        self.on_complete_with(job, JobOptions::new())
    }

    /// [`on_complete`](Self::on_complete) with options.
    pub fn on_complete_with<J: Job>(mut self, job: J, options: JobOptions) -> Self {
        self.on_complete = Some(job.into_new_job(options).map_err(|e| e.to_string()));
        self
    }

    /// Stores the batch, open and empty. Fails with
    /// [`FlowError::Exists`] when the id is in use.
    pub async fn create<Q: JobQueue + ?Sized>(&self, queue: &Q) -> Result<FlowRun, Error> {
        validate_flow_id(&self.id)?;
        let store = store_of(queue)?;
        let releases = store.create_flow(self.new_flow(Vec::new(), false)?).await?;
        relay::release(queue, &*store, releases).await?;
        Ok(FlowRun::new(self.id.clone(), store))
    }

    /// Adds jobs to the batch (storing it, open, on first use) and enqueues
    /// them; returns their ids. Fails with [`FlowError::Ended`] once the
    /// batch has ended.
    pub async fn add<Q: JobQueue + ?Sized, J: Job>(
        &self,
        queue: &Q,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>, Error> {
        self.add_with(queue, jobs, JobOptions::new(), false).await
    }

    /// Adds jobs and closes the batch in one step.
    pub async fn add_and_close<Q: JobQueue + ?Sized, J: Job>(
        &self,
        queue: &Q,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<(Vec<JobId>, FlowRun), Error> {
        let ids = self.add_with(queue, jobs, JobOptions::new(), true).await?;
        Ok((ids, FlowRun::new(self.id.clone(), store_of(queue)?)))
    }

    /// [`add`](Self::add) with options for every job, closing the batch
    /// after when `close`.
    pub async fn add_with<Q: JobQueue + ?Sized, J: Job>(
        &self,
        queue: &Q,
        jobs: impl IntoIterator<Item = J>,
        options: JobOptions,
        close: bool,
    ) -> Result<Vec<JobId>, Error> {
        let format = queue.payload_format();
        let mut members = Vec::new();
        for (index, job) in jobs.into_iter().enumerate() {
            let mut new = job
                .into_new_job_as(options.clone(), format)
                .map_err(|e| Error::InvalidBatchItem { index, source: Box::new(e) })?;
            let name = new.id.ulid().to_string();
            mark_member(&mut new, &self.id, &name, true);
            members.push(FlowMember { name, job: new, after: Vec::new() });
        }
        let ids = members.iter().map(|m| m.job.id.clone()).collect();
        self.store(queue, members, close).await?;
        Ok(ids)
    }

    /// Closes the batch: it ends once every job of it ended (at once when
    /// they all have).
    pub async fn close<Q: JobQueue + ?Sized>(&self, queue: &Q) -> Result<FlowRun, Error> {
        let store = store_of(queue)?;
        let releases = match store.close_flow(&self.id).await {
            Err(Error::Flow(e)) if matches!(*e, FlowError::NotFound(_)) => {
                // Closed before anything was added: stored empty and closed.
                self.store(queue, Vec::new(), true).await?;
                Vec::new()
            }
            other => other?,
        };
        relay::release(queue, &*store, releases).await?;
        Ok(FlowRun::new(self.id.clone(), store))
    }

    /// Adds `members` to the stored batch, storing it first when it is not.
    async fn store<Q: JobQueue + ?Sized>(&self, queue: &Q, members: Vec<FlowMember>, close: bool) -> Result<(), Error> {
        validate_flow_id(&self.id)?;
        let store = store_of(queue)?;
        let mut members = Some(members);
        // Added when stored; created when not (another producer may create
        // it between the two: then added again).
        for _ in 0..2 {
            match store.add_members(&self.id, members.clone().unwrap_or_default(), close).await {
                Err(Error::Flow(e)) if matches!(*e, FlowError::NotFound(_)) => {}
                other => return relay::release(queue, &*store, other?).await,
            }
            let flow = self.new_flow(members.take().unwrap_or_default(), close)?;
            let kept = flow.members.clone();
            match store.create_flow(flow).await {
                Err(Error::Flow(e)) if matches!(*e, FlowError::Exists(_)) => members = Some(kept),
                other => return relay::release(queue, &*store, other?).await,
            }
        }
        Err(FlowError::Exists(self.id.clone()).into())
    }

    fn new_flow(&self, members: Vec<FlowMember>, closed: bool) -> Result<NewFlow, Error> {
        Ok(NewFlow {
            id: self.id.clone(),
            kind: FlowKind::Batch,
            members,
            closed,
            on_success: self.callback(&self.on_success, ON_SUCCESS)?,
            on_complete: self.callback(&self.on_complete, ON_COMPLETE)?,
        })
    }

    fn callback(&self, job: &Option<Result<NewJob, String>>, name: &str) -> Result<Option<NewJob>, Error> {
        match job {
            None => Ok(None),
            Some(Err(e)) => Err(Error::InvalidArgument(format!("the batch's `{}` job: {e}", &name[1..]))),
            Some(Ok(job)) => {
                let mut job = job.clone();
                mark_member(&mut job, &self.id, name, false);
                Ok(Some(job))
            }
        }
    }
}
