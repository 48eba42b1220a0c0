//! A running job's place in a flow, read from its headers:
//! [`JobContext::dependency`], [`JobContext::flow`] and
//! [`JobContext::batch`].

use serde::de::DeserializeOwned;

use super::Batch;
use crate::context::JobContext;
use crate::job::Job;

/// Why [`JobContext::dependency`] has no value. With `?` in a job body it
/// fails the attempt (retryable); `.map_err(JobError::permanent)` makes it
/// final.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DependencyError {
    /// The running job is no workflow step.
    #[error("job is not a workflow step: `dependency` reads the results of the steps a step depends on")]
    NotAStep,
    /// The step does not depend on a step of this name.
    #[error("step `{step}` does not depend on `{name}`: only the steps it declared in `step_after` can be read")]
    NotADependency {
        /// The running step.
        step: String,
        /// The name asked for.
        name: String,
    },
    /// The dependency ended without a result: it did not succeed (its edge
    /// said to continue), or it returned nothing.
    #[error("step `{name}` has no result: it did not succeed, or returned nothing")]
    NoResult {
        /// The dependency.
        name: String,
    },
    /// The stored result does not decode as the job's output type.
    #[error("the result of step `{name}` does not decode as the output of job `{job}`: {error}")]
    Decode {
        /// The dependency.
        name: String,
        /// The job type asked for.
        job: &'static str,
        /// The decoder's message.
        error: String,
    },
}

impl JobContext {
    /// The typed result of step `name`, one of the steps this workflow step
    /// depends on: its job type `J`'s output as it returned it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use jobs_core::prelude::*;
    ///
    /// #[job(crate = jobs_core)]
    /// async fn fetch_file(url: String) -> Result<u64, JobError> {
    ///     Ok(url.len() as u64) // the file's size
    /// }
    ///
    /// #[job(crate = jobs_core)]
    /// async fn parse_file(ctx: JobContext) -> Result<String, JobError> {
    ///     let size = ctx.dependency::<FetchFile>("fetch")?;
    ///     Ok(format!("{size} bytes parsed"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = MemoryQueue::new();
    /// let pool = WorkerPool::builder(queue.clone()).start()?;
    /// let run = Workflow::new("import-1")
    ///     .step("fetch", FetchFile { url: "https://example.com/a.csv".into() })
    ///     .step_after("parse", ParseFile {}, ["fetch"])
    ///     .enqueue(&queue)
    ///     .await?;
    /// let done = run.wait(Duration::from_secs(10)).await?;
    /// assert_eq!(done.status, FlowStatus::Succeeded);
    /// assert_eq!(run.result::<ParseFile>("parse").await?, Some("25 bytes parsed".to_owned()));
    /// pool.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn dependency<J: Job>(&self, name: &str) -> Result<J::Output, DependencyError>
    where
        J::Output: DeserializeOwned,
    {
        let place = self.flow_place().ok_or(DependencyError::NotAStep)?;
        let not_dep = || DependencyError::NotADependency { step: place.member.clone(), name: name.to_owned() };
        let deps = place.deps.as_deref().ok_or_else(not_dep)?;
        let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(deps).map_err(|_| not_dep())?;
        let value = map.remove(name).ok_or_else(not_dep)?;
        // A unit output is stored as no result at all.
        let value = match value {
            serde_json::Value::Null => {
                return serde_json::from_value(serde_json::Value::Null)
                    .map_err(|_| DependencyError::NoResult { name: name.to_owned() });
            }
            v => v,
        };
        serde_json::from_value(value).map_err(|e| DependencyError::Decode {
            name: name.to_owned(),
            job: J::NAME,
            error: e.to_string(),
        })
    }

    /// The flow this job belongs to and its name in it (`None` outside
    /// any workflow or batch).
    pub fn flow(&self) -> Option<(&str, &str)> {
        self.flow_place().map(|p| (p.flow.as_str(), p.member.as_str()))
    }

    /// The batch this job belongs to, to add more jobs to it from inside
    /// (`None` outside any batch; adding to a workflow fails with
    /// [`FlowError::NotABatch`](super::FlowError::NotABatch)). The batch
    /// cannot end while this job runs, so what it adds is waited for too.
    pub fn batch(&self) -> Option<Batch> {
        self.flow_place().map(|p| Batch::with_id(p.flow.as_str()))
    }
}
