//! [`FlowStore`]: the port's capability for workflows and batches.

use std::time::Duration;

use super::model::{FlowInfo, FlowKind, FlowMember, FlowSummary, MemberEnd, NewFlow, Release};
use crate::error::Error;
use crate::queue::{BoxFuture, QueueInspect, Waiter};
use crate::vocab::JobId;

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
    /// [`FlowError::Exists`](super::FlowError::Exists) when a flow with the
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

    /// Cancels a flow: members not yet released never run; the jobs of
    /// released members not ended are cancelled. `false` when no such flow
    /// is stored or it had ended.
    fn cancel_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Cancels jobs (of a cancelled flow's late releases).
    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<(), Error>>;

    /// A stored flow with its members.
    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>>;

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
