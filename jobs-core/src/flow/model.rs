//! What a flow store keeps and hands back: the records of workflows and
//! batches, the members' ends and the releases they cause.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::queue::NewJob;
use crate::vocab::{JobId, JobStatus};

/// The header a flow member's job carries: `<flow id> <member name>`. A
/// backend that sees it on an enqueued job records the job's end for the
/// flow (in the same atomic step as the end).
pub const FLOW_HEADER: &str = "jobs-flow";

/// The header a released workflow step carries: the results of the steps it
/// depends on, a JSON object from step name to the step's result (`null`
/// for a step that returned nothing or did not succeed).
pub const DEPS_HEADER: &str = "jobs-deps";

/// The longest flow id, in bytes.
pub const MAX_FLOW_ID_LEN: usize = 128;

/// The longest member (step) name, in bytes.
pub const MAX_MEMBER_NAME_LEN: usize = 100;

/// Ended flows a store keeps (the oldest ended ones are deleted past it).
pub const FLOWS_KEPT: usize = 10_000;

/// A workflow or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    /// Steps with dependencies ([`Workflow`](crate::Workflow)).
    Workflow,
    /// Jobs with callbacks ([`Batch`](crate::Batch)).
    Batch,
}

impl FlowKind {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowKind::Workflow => "workflow",
            FlowKind::Batch => "batch",
        }
    }
}

/// Where a flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    /// Some member has not ended (or a batch is still open).
    Running,
    /// Every member succeeded.
    Succeeded,
    /// Every member ended, and some did not succeed.
    Failed,
    /// Cancelled: no member not yet running will run.
    Cancelled,
}

impl FlowStatus {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Running => "running",
            FlowStatus::Succeeded => "succeeded",
            FlowStatus::Failed => "failed",
            FlowStatus::Cancelled => "cancelled",
        }
    }

    /// Succeeded, failed or cancelled.
    pub const fn is_ended(self) -> bool {
        !matches!(self, FlowStatus::Running)
    }
}

/// Where one member of a flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Waits for steps it depends on.
    Waiting,
    /// Ready: its job is being enqueued.
    Releasing,
    /// Its job is in its queue (pending, running, retrying).
    Released,
    /// Its job succeeded.
    Succeeded,
    /// Its job ended dead.
    Dead,
    /// Its job expired before it ran.
    Expired,
    /// Cancelled: by the flow's cancel, by a dependency that did not
    /// succeed, or its job was cancelled.
    Cancelled,
}

impl MemberStatus {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Waiting => "waiting",
            MemberStatus::Releasing => "releasing",
            MemberStatus::Released => "released",
            MemberStatus::Succeeded => "succeeded",
            MemberStatus::Dead => "dead",
            MemberStatus::Expired => "expired",
            MemberStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the member has ended.
    pub const fn is_ended(self) -> bool {
        matches!(self, MemberStatus::Succeeded | MemberStatus::Dead | MemberStatus::Expired | MemberStatus::Cancelled)
    }

    /// The member status a job's final status gives (`None` for a status
    /// that is not final).
    pub const fn of_job(status: JobStatus) -> Option<MemberStatus> {
        Some(match status {
            JobStatus::Succeeded => MemberStatus::Succeeded,
            JobStatus::Dead => MemberStatus::Dead,
            JobStatus::Expired => MemberStatus::Expired,
            JobStatus::Cancelled => MemberStatus::Cancelled,
            _ => return None,
        })
    }
}

/// What a step does when a step it depends on ends without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The step is cancelled, and so are the steps that depend on it
    /// (unless their own edge says to continue).
    #[default]
    Cancel,
    /// The step runs once the dependency ended, whatever its end.
    Continue,
}

/// One member as a store receives it: its name, its job (with its final
/// id, caller id and headers) and the members it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowMember {
    /// Unique in its flow.
    pub name: String,
    /// The job to enqueue once the member is released.
    pub job: NewJob,
    /// The members it depends on, each with what it does when that one
    /// does not succeed. Every name is a member of the same call or of the
    /// flow already.
    pub after: Vec<(String, OnFailure)>,
}

/// A new flow: its record and its first members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFlow {
    /// Its id, unique among stored flows.
    pub id: String,
    /// Workflow or batch.
    pub kind: FlowKind,
    /// Its members (a batch may start empty).
    pub members: Vec<FlowMember>,
    /// A batch that is closed: it ends once its members have; an open one
    /// waits for more. A workflow is always closed.
    pub closed: bool,
    /// Enqueued once, when every member succeeded.
    pub on_success: Option<NewJob>,
    /// Enqueued once, when every member ended.
    pub on_complete: Option<NewJob>,
}

/// A member's job that ended, read from its queue's record of ended flow
/// members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEnd {
    /// The flow.
    pub flow: String,
    /// The member.
    pub member: String,
    /// Its job.
    pub job: JobId,
    /// How it ended.
    pub status: MemberStatus,
    /// Its result (JSON), when it succeeded with one.
    pub result: Option<String>,
}

/// A member that became ready (or a callback due): enqueue `job`, then
/// report it with [`FlowStore::members_released`](super::FlowStore::members_released).
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The flow.
    pub flow: String,
    /// The member, or `@on_success` / `@on_complete` for a callback.
    pub member: String,
    /// The job, with its flow headers set.
    pub job: NewJob,
}

/// A flow as [`FlowStore::flows`](super::FlowStore::flows) lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSummary {
    /// Its id.
    pub id: String,
    /// Workflow or batch.
    pub kind: FlowKind,
    /// Where it is.
    pub status: FlowStatus,
    /// A batch that takes no more members.
    pub closed: bool,
    /// Its members (callbacks not counted).
    pub total: u64,
    /// Members ended.
    pub ended: u64,
    /// Members succeeded.
    pub succeeded: u64,
    /// When it was stored.
    pub created_at: SystemTime,
    /// When it ended.
    pub ended_at: Option<SystemTime>,
}

/// One member, as [`FlowInfo`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its name.
    pub name: String,
    /// Its job's id (the job exists in its queue once released).
    pub job: JobId,
    /// Its job's name.
    pub job_name: String,
    /// Where it is.
    pub status: MemberStatus,
    /// The members it depends on, each with its failure policy.
    pub after: Vec<(String, OnFailure)>,
    /// When it was released (its job enqueued).
    pub released_at: Option<SystemTime>,
    /// When it ended.
    pub ended_at: Option<SystemTime>,
}

/// Everything a store holds about a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    /// Counts and state.
    #[serde(flatten)]
    pub summary: FlowSummary,
    /// Its members in the order they were added.
    pub members: Vec<MemberInfo>,
    /// Its callbacks: `@on_success` / `@on_complete` with their job and
    /// status (`waiting` until the flow ends).
    pub callbacks: Vec<MemberInfo>,
}

impl FlowInfo {
    /// Members by dependency level: level 0 depends on nothing, level n on
    /// some member of level n - 1 (and none deeper): how the dashboard lays
    /// a workflow out.
    pub fn levels(&self) -> Vec<Vec<&MemberInfo>> {
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        // Members are stored with their dependencies before them.
        for m in &self.members {
            let l = m.after.iter().filter_map(|(d, _)| level.get(d.as_str())).map(|l| l + 1).max().unwrap_or(0);
            level.insert(&m.name, l);
        }
        let mut out: Vec<Vec<&MemberInfo>> = Vec::new();
        for m in &self.members {
            let l = level[m.name.as_str()];
            if out.len() <= l {
                out.resize_with(l + 1, Vec::new);
            }
            out[l].push(m);
        }
        out
    }
}
