//! Workflows and batches: jobs that wait for other jobs, and callbacks that
//! fire once a set of jobs has ended.
//!
//! A [`Workflow`] is a graph of named steps, each a typed job; a step's job
//! is enqueued only once every step it depends on succeeded (or ended, for
//! an edge marked [`OnFailure::Continue`]). A [`Batch`] is a set of jobs
//! that may grow while it is open, with an `on_success` and an
//! `on_complete` job enqueued exactly once when its last job ends. Both are
//! stored by the backend's [`FlowStore`]; see `docs/workflows.md`.

mod batch;
pub(crate) mod book;
mod model;
mod place;
pub(crate) mod relay;
mod run;
mod store;
mod workflow;

pub use batch::Batch;
pub use model::{
    FlowInfo, FlowKind, FlowMember, FlowStatus, FlowSummary, MemberEnd, MemberInfo, MemberStatus, NewFlow, OnFailure,
    Release, DEPS_HEADER, FLOWS_KEPT, FLOW_HEADER, MAX_FLOW_ID_LEN, MAX_MEMBER_NAME_LEN,
};
pub use place::DependencyError;
pub(crate) use place::FlowPlace;
pub use run::FlowRun;
pub use store::FlowStore;
pub use workflow::{Step, Workflow};

use crate::error::Error;

/// Why a flow call was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A flow with this id is stored already.
    #[error("a workflow or batch with id `{0}` is stored already: choose another id, or follow that one with `FlowRun::open`")]
    Exists(String),
    /// No flow with this id is stored (never, or past its retention).
    #[error("no workflow or batch `{0}`")]
    NotFound(String),
    /// Members are added to batches only.
    #[error("`{0}` is a workflow: jobs are added to batches only; declare every step before enqueueing the workflow")]
    NotABatch(String),
    /// The batch has ended: it takes no more jobs.
    #[error("batch `{flow}` has ended ({}): it takes no more jobs; start another batch", status.as_str())]
    Ended {
        /// The batch.
        flow: String,
        /// How it ended.
        status: model::FlowStatus,
    },
    /// Two members share a name.
    #[error("workflow `{flow}` has two steps named `{member}`: give each step its own name")]
    DuplicateMember {
        /// The flow.
        flow: String,
        /// The name used twice.
        member: String,
    },
    /// A step depends on a name that is no step of the workflow.
    #[error("step `{member}` of workflow `{flow}` depends on `{dependency}`, which is not a step of it")]
    UnknownDependency {
        /// The flow.
        flow: String,
        /// The step.
        member: String,
        /// The unknown name.
        dependency: String,
    },
    /// The dependencies form a cycle.
    #[error("the steps of workflow `{flow}` depend on each other in a cycle: {}; remove one of these dependencies", path.join(" -> "))]
    Cycle {
        /// The flow.
        flow: String,
        /// The cycle, its first step repeated at the end.
        path: Vec<String>,
    },
    /// A flow id outside the rules.
    #[error("invalid workflow or batch id `{0}`: use 1 to 128 letters, digits, `_`, `-`, `.` or `:`")]
    InvalidId(String),
    /// A step name outside the rules.
    #[error("invalid step name `{0}`: use 1 to 100 letters, digits, `_`, `-`, `.` or `:` (`/` joins a nested workflow's name to its steps')")]
    InvalidMemberName(String),
    /// An edge policy names an edge that was not declared.
    #[error("workflow `{flow}`: step `{member}` does not depend on `{dependency}`, so no failure policy can be set for that edge")]
    NoSuchEdge {
        /// The flow.
        flow: String,
        /// The step.
        member: String,
        /// The dependency it does not have.
        dependency: String,
    },
    /// A workflow without steps.
    #[error("workflow `{0}` has no steps: add one with `.step(..)`")]
    Empty(String),
    /// The backend stores no workflows or batches.
    #[error("this backend stores no workflows or batches (use MemoryQueue or RedisQueue)")]
    Unsupported,
    /// A wait's time ran out before the flow ended.
    #[error("workflow or batch `{flow}` had not ended after {waited:?} ({ended} of {total} ended)")]
    TimedOut {
        /// The flow.
        flow: String,
        /// How long the wait lasted.
        waited: std::time::Duration,
        /// Members ended by then.
        ended: u64,
        /// Members in all.
        total: u64,
    },
}

impl From<FlowError> for Error {
    fn from(e: FlowError) -> Self {
        Error::Flow(Box::new(e))
    }
}

/// Checks a flow id: 1 to [`MAX_FLOW_ID_LEN`] bytes of letters, digits,
/// `_`, `-`, `.` or `:`.
pub fn validate_flow_id(id: &str) -> Result<(), FlowError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_FLOW_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(FlowError::InvalidId(id.to_owned()))
    }
}

/// Checks a member name: as a flow id, `/` allowed too (nested workflows),
/// `@` reserved for callbacks.
pub(crate) fn validate_member_name(name: &str) -> Result<(), FlowError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MEMBER_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(FlowError::InvalidMemberName(name.to_owned()))
    }
}

/// The caller id a member's job is enqueued with: the same for every
/// release of the member, so a release enqueued twice stores one job.
pub(crate) fn member_caller_id(flow: &str, member: &str) -> crate::queue::CallerId {
    crate::queue::CallerId { id: format!("flow:{flow}/{member}"), if_exists: crate::queue::IfExists::ReturnExisting }
}

/// Makes `job` member `member` of flow `flow`: its caller id and, for a
/// member whose end the flow waits for (not a callback), its flow header.
pub(crate) fn mark_member(job: &mut crate::queue::NewJob, flow: &str, member: &str, tracked: bool) {
    job.caller_id = Some(member_caller_id(flow, member));
    if tracked {
        job.headers.insert(FLOW_HEADER.to_owned(), format!("{flow} {member}"));
    }
}

/// The store of `queue`, or [`FlowError::Unsupported`].
pub(crate) fn store_of<Q: crate::queue::JobQueue + ?Sized>(
    queue: &Q,
) -> Result<std::sync::Arc<dyn FlowStore>, FlowError> {
    queue.flow_store().ok_or(FlowError::Unsupported)
}
