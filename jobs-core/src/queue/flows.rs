//! Workflows and batches at the port: what a flow store keeps and hands
//! back, and [`FlowStore`], the capability that stores them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{BoxFuture, QueueInspect, Waiter};
use crate::error::Error;

use super::NewJob;
use crate::error::FlowError;
use crate::vocab::{FlowStatus, JobId, JobStatus};

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
/// report it with [`FlowStore::members_released`].
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The flow.
    pub flow: String,
    /// The member, or `@on_success` / `@on_complete` for a callback.
    pub member: String,
    /// The job, with its flow headers set.
    pub job: NewJob,
}

/// A flow as [`FlowStore::flows`] lists it.
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
    /// When it was released: its job handed out to be enqueued (the last
    /// time, when a relay died before reporting it).
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

/// A cancelled flow's released members, each its name and job: the jobs
/// to cancel ([`FlowStore::mark_cancelled`]).
pub type CancelledMembers = Vec<(String, JobId)>;

/// The callbacks' member names.
pub const ON_SUCCESS: &str = "@on_success";
/// See [`ON_SUCCESS`].
pub const ON_COMPLETE: &str = "@on_complete";

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
fn member_caller_id(flow: &str, member: &str) -> super::CallerId {
    super::CallerId { id: format!("flow:{flow}/{member}"), if_exists: super::IfExists::ReturnExisting }
}

/// Makes `job` member `member` of flow `flow`: its caller id and, for a
/// member whose end the flow waits for (not a callback), its flow header.
pub(crate) fn mark_member(job: &mut NewJob, flow: &str, member: &str, tracked: bool) {
    job.caller_id = Some(member_caller_id(flow, member));
    if tracked {
        job.headers.insert(FLOW_HEADER.to_owned(), format!("{flow} {member}"));
    }
}

/// Workflows and batches: their records, and the hand-off from a member's
/// end in its queue to the release of what waited for it.
///
/// A member's end is recorded in its queue's storage in the same atomic
/// step as the end itself (the job carries [`FLOW_HEADER`](super::FLOW_HEADER)).
/// A relay (every worker pool runs one) takes those records
/// ([`take_ended`](Self::take_ended)), applies them to the flow
/// ([`members_ended`](Self::members_ended), which does nothing for a member
/// it has recorded already), enqueues what they released (each release's
/// job has a caller id derived from the flow and member, so enqueueing it
/// twice stores it once), reports the releases
/// ([`members_released`](Self::members_released)) and only then
/// acknowledges the records ([`ack_ended`](Self::ack_ended)). A relay that
/// dies anywhere in between leaves the records to be taken again once their
/// claim lapses, and the releases to [`stale_releases`](Self::stale_releases):
/// every step is idempotent, so each end is applied once and each member
/// released once, whatever crashes.
///
/// It reads jobs too ([`QueueInspect`]): a run reads its steps' results.
pub trait FlowStore: QueueInspect {
    /// Stores a new flow with its first members, all or nothing; returns the
    /// members released at once (those that depend on nothing). Fails with
    /// [`FlowError::Exists`](crate::FlowError::Exists) when a flow with the
    /// id is stored.
    fn create_flow(&self, flow: NewFlow) -> BoxFuture<'_, Result<Vec<Release>, Error>>;

    /// Adds members to a batch that has not ended (and closes it when
    /// `close`), all or nothing; returns the members released.
    fn add_members<'a>(
        &'a self,
        flow: &'a str,
        members: Vec<FlowMember>,
        close: bool,
    ) -> BoxFuture<'a, Result<Vec<Release>, Error>>;

    /// Closes a batch: it ends once every member has. Returns the callbacks
    /// released when every member had ended already.
    fn close_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Vec<Release>, Error>>;

    /// Applies ended members to their flows, each once: a member ended
    /// already, or of a flow no longer stored, changes nothing. Returns what
    /// became ready (dependants, callbacks).
    fn members_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<Vec<Release>, Error>>;

    /// Records that the releases' jobs are enqueued. Returns the jobs of
    /// those whose flow was cancelled meanwhile: cancel them.
    fn members_released<'a>(&'a self, released: &'a [Release]) -> BoxFuture<'a, Result<Vec<JobId>, Error>>;

    /// Releases not reported within `older_than` (their relay died): at
    /// most `max`, to enqueue again.
    fn stale_releases(&self, older_than: Duration, max: usize) -> BoxFuture<'_, Result<Vec<Release>, Error>>;

    /// Takes up to `max` ended flow members recorded by `queues`, hiding
    /// them from other takers for `claim`.
    fn take_ended<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        claim: Duration,
    ) -> BoxFuture<'a, Result<Vec<MemberEnd>, Error>>;

    /// Forgets ended members once applied.
    fn ack_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<(), Error>>;

    /// Marks a flow cancelled: members not yet released end cancelled and
    /// never run. Returns the released members (name, job) whose jobs are
    /// to be cancelled, or `None` when no such flow is stored or it had
    /// ended. [`cancel_flow`](Self::cancel_flow) is the whole cancel.
    fn mark_cancelled<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Option<CancelledMembers>, Error>>;

    /// Cancels a flow: members not yet released never run; the jobs of
    /// released members not ended are cancelled (see [`cancel_released`]).
    /// `false` when no such flow is stored or it had ended.
    fn cancel_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let Some(members) = self.mark_cancelled(flow).await? else { return Ok(false) };
            cancel_released(self, flow, &members).await?;
            Ok(true)
        })
    }

    /// Cancels jobs (of a cancelled flow); returns those that ended
    /// cancelled at once (they were waiting: a running one ends when its
    /// worker stops it; unknown and ended ones are skipped).
    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>, Error>>;

    /// A stored flow with its members.
    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>>;

    /// A stored flow's state and counts, without its members: what a wait
    /// reads on every notice, whatever the flow's size.
    fn flow_summary<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowSummary>, Error>>;

    /// A stored flow with up to `limit` of its members from position
    /// `offset` in the order they were added, and its callbacks: what a
    /// page showing a large flow reads. The summary counts every member.
    ///
    /// The provided body reads the whole flow ([`FlowStore::flow`]); a
    /// store overrides it to read only the page.
    fn flow_page<'a>(
        &'a self,
        id: &'a str,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        Box::pin(async move {
            Ok(self.flow(id).await?.map(|mut info| {
                info.members = info.members.into_iter().skip(offset).take(limit).collect();
                info
            }))
        })
    }

    /// One member of a stored flow by name (a callback by `@on_success` or
    /// `@on_complete`); `None` when the flow or the member is not stored.
    ///
    /// The provided body reads the whole flow ([`FlowStore::flow`]); a
    /// store overrides it to read only the member.
    fn flow_member<'a>(&'a self, id: &'a str, member: &'a str) -> BoxFuture<'a, Result<Option<MemberInfo>, Error>> {
        Box::pin(async move {
            Ok(self
                .flow(id)
                .await?
                .and_then(|info| info.members.into_iter().chain(info.callbacks).find(|m| m.name == member)))
        })
    }

    /// Stored flows, newest first, a page at a time; only of `kind` when
    /// given.
    fn flows(
        &self,
        kind: Option<FlowKind>,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<FlowSummary>, Error>>;

    /// A waiter woken when a flow ends or members ended (to wait for a
    /// flow without polling: arm, read, wait).
    fn flow_waiter(&self) -> Result<Box<dyn Waiter>, Error>;
}

/// Where a job stands in a flow (also sent to a sandbox child with the
/// attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowPlace {
    pub(crate) flow: String,
    pub(crate) member: String,
    /// The dependencies' results, as the release wrote them (JSON object).
    pub(crate) deps: Option<String>,
}

impl FlowPlace {
    /// `None` for a job outside any flow.
    pub(crate) fn from_headers(headers: &crate::vocab::Headers) -> Option<FlowPlace> {
        let (flow, member) = headers.get(FLOW_HEADER)?.split_once(' ')?;
        Some(FlowPlace { flow: flow.to_owned(), member: member.to_owned(), deps: headers.get(DEPS_HEADER).cloned() })
    }
}

/// Cancels `jobs` one by one with the backend's own cancel, for
/// [`FlowStore::cancel_jobs`] implementations: returns those that ended
/// cancelled at once; unknown and ended jobs are skipped.
pub async fn cancel_each<A: super::QueueAdmin + ?Sized>(admin: &A, jobs: &[JobId]) -> Result<Vec<JobId>, Error> {
    let mut ended = Vec::new();
    for id in jobs {
        match admin.cancel(id).await {
            Ok(super::CancelResult::Cancelled) => ended.push(id.clone()),
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ended)
}

/// The second half of a flow's cancel ([`FlowStore::cancel_flow`]): cancels the jobs of its released `members` (name, job)
/// and applies the ends of those that ended at once, so the flow ends
/// without waiting for a relay of their queues (a pool may serve none of
/// them).
pub async fn cancel_released<S: FlowStore + ?Sized>(
    store: &S,
    flow: &str,
    members: &[(String, JobId)],
) -> Result<(), Error> {
    if members.is_empty() {
        return Ok(());
    }
    let jobs: Vec<JobId> = members.iter().map(|(_, j)| j.clone()).collect();
    let ended = store.cancel_jobs(&jobs).await?;
    let ends: Vec<MemberEnd> = members
        .iter()
        .filter(|(_, j)| ended.contains(j))
        .map(|(m, j)| MemberEnd {
            flow: flow.to_owned(),
            member: m.clone(),
            job: j.clone(),
            status: MemberStatus::Cancelled,
            result: None,
        })
        .collect();
    if !ends.is_empty() {
        store.members_ended(&ends).await?;
    }
    Ok(())
}

/// A flow store through a shared pointer (a router's backends).
impl<S: FlowStore + ?Sized> FlowStore for std::sync::Arc<S> {
    fn create_flow(&self, flow: NewFlow) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        (**self).create_flow(flow)
    }
    fn add_members<'a>(
        &'a self,
        flow: &'a str,
        members: Vec<FlowMember>,
        close: bool,
    ) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        (**self).add_members(flow, members, close)
    }
    fn close_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        (**self).close_flow(flow)
    }
    fn members_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        (**self).members_ended(ends)
    }
    fn members_released<'a>(&'a self, released: &'a [Release]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        (**self).members_released(released)
    }
    fn stale_releases(&self, older_than: Duration, max: usize) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        (**self).stale_releases(older_than, max)
    }
    fn take_ended<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        claim: Duration,
    ) -> BoxFuture<'a, Result<Vec<MemberEnd>, Error>> {
        (**self).take_ended(queues, max, claim)
    }
    fn ack_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<(), Error>> {
        (**self).ack_ended(ends)
    }
    fn mark_cancelled<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Option<CancelledMembers>, Error>> {
        (**self).mark_cancelled(flow)
    }
    fn cancel_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        (**self).cancel_flow(flow)
    }
    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        (**self).cancel_jobs(jobs)
    }
    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        (**self).flow(id)
    }
    fn flow_summary<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowSummary>, Error>> {
        (**self).flow_summary(id)
    }

    fn flow_page<'a>(
        &'a self,
        id: &'a str,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        (**self).flow_page(id, offset, limit)
    }

    fn flow_member<'a>(&'a self, id: &'a str, member: &'a str) -> BoxFuture<'a, Result<Option<MemberInfo>, Error>> {
        (**self).flow_member(id, member)
    }
    fn flows(
        &self,
        kind: Option<FlowKind>,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<FlowSummary>, Error>> {
        (**self).flows(kind, offset, limit)
    }
    fn flow_waiter(&self) -> Result<Box<dyn Waiter>, Error> {
        (**self).flow_waiter()
    }
}
