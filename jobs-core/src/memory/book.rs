//! The flows of [`MemoryQueue`](crate::MemoryQueue): the same rules as the
//! Redis scripts, on maps behind the queue's lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use crate::error::FlowError;
use crate::queue::{
    CancelledMembers, FlowInfo, FlowKind, FlowMember, FlowSummary, MemberEnd, MemberInfo, MemberStatus, NewFlow,
    NewJob, OnFailure, Release, DEPS_HEADER, FLOWS_KEPT, ON_COMPLETE, ON_SUCCESS,
};
use crate::vocab::{FlowStatus, JobId};

/// Every flow of one store.
#[derive(Default)]
pub(crate) struct FlowBook {
    flows: HashMap<String, Flow>,
    /// (created, id): the listing's order.
    order: BTreeSet<(SystemTime, String)>,
    /// (ended, id): what retention deletes first.
    ended: BTreeSet<(SystemTime, String)>,
    /// Releases handed out and not reported: (flow, member) → when.
    outstanding: BTreeMap<(String, String), SystemTime>,
    /// Bumped when members end or a flow ends (the flow waiter).
    pub(crate) changes: u64,
}

struct Flow {
    kind: FlowKind,
    status: FlowStatus,
    closed: bool,
    cancelled: bool,
    created_at: SystemTime,
    ended_at: Option<SystemTime>,
    ended: u64,
    succeeded: u64,
    members: Vec<Member>,
    index: HashMap<String, usize>,
    /// `@on_success`, `@on_complete`, when given.
    callbacks: Vec<Member>,
}

struct Member {
    name: String,
    job: NewJob,
    after: Vec<(String, OnFailure)>,
    /// Its dependants, by position, with their edge's policy.
    kids: Vec<(usize, OnFailure)>,
    left: usize,
    status: MemberStatus,
    result: Option<String>,
    released_at: Option<SystemTime>,
    ended_at: Option<SystemTime>,
}

impl Member {
    fn new(name: String, job: NewJob, after: Vec<(String, OnFailure)>) -> Self {
        Member {
            left: after.len(),
            name,
            job,
            after,
            kids: Vec::new(),
            status: MemberStatus::Waiting,
            result: None,
            released_at: None,
            ended_at: None,
        }
    }

    fn info(&self) -> MemberInfo {
        MemberInfo {
            name: self.name.clone(),
            job: self.job.id.clone(),
            job_name: self.job.name.clone(),
            status: self.status,
            after: self.after.clone(),
            released_at: self.released_at,
            ended_at: self.ended_at,
        }
    }
}

impl Flow {
    fn summary(&self, id: &str) -> FlowSummary {
        FlowSummary {
            id: id.to_owned(),
            kind: self.kind,
            status: self.status,
            closed: self.closed,
            total: self.members.len() as u64,
            ended: self.ended,
            succeeded: self.succeeded,
            created_at: self.created_at,
            ended_at: self.ended_at,
        }
    }

    /// Adds members (their dependencies checked first: nothing is added
    /// when one names an unknown member or a later one); returns the
    /// positions of those ready at once.
    fn add(&mut self, id: &str, members: Vec<FlowMember>) -> Result<Vec<usize>, FlowError> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            if self.index.contains_key(&m.name) || names.insert(&m.name, i).is_some() {
                return Err(FlowError::DuplicateMember { flow: id.to_owned(), member: m.name.clone() });
            }
            for (dep, _) in &m.after {
                let known = self.index.contains_key(dep) || names.get(dep.as_str()).is_some_and(|&j| j < i);
                if !known {
                    return Err(FlowError::UnknownDependency {
                        flow: id.to_owned(),
                        member: m.name.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
        }
        let mut ready = Vec::new();
        for m in members {
            let at = self.members.len();
            let mut member = Member::new(m.name, m.job, m.after);
            for (dep, policy) in member.after.clone() {
                let d = self.index[&dep];
                self.members[d].kids.push((at, policy));
                // A dependency that ended already counts at once.
                let status = self.members[d].status;
                if status.is_ended() {
                    if status == MemberStatus::Succeeded || policy == OnFailure::Continue {
                        member.left -= 1;
                    } else {
                        member.status = MemberStatus::Cancelled;
                    }
                }
            }
            self.index.insert(member.name.clone(), at);
            let cancelled = member.status == MemberStatus::Cancelled;
            member.status = MemberStatus::Waiting;
            self.members.push(member);
            if cancelled {
                self.end_member(at, MemberStatus::Cancelled, None, None, &mut ready);
            } else if self.members[at].left == 0 {
                self.members[at].status = MemberStatus::Releasing;
                ready.push(at);
            }
        }
        Ok(ready)
    }

    /// Records member `at`'s end.
    fn set_end(&mut self, at: usize, status: MemberStatus, result: Option<String>, now: Option<SystemTime>) {
        let m = &mut self.members[at];
        m.status = status;
        m.result = result;
        m.ended_at = now;
        self.ended += 1;
        if status == MemberStatus::Succeeded {
            self.succeeded += 1;
        }
    }

    /// Ends member `at` (not ended) and the dependants it cancels; fills
    /// `ready` with the dependants it released.
    fn end_member(
        &mut self,
        at: usize,
        status: MemberStatus,
        result: Option<String>,
        now: Option<SystemTime>,
        ready: &mut Vec<usize>,
    ) {
        self.set_end(at, status, result, now);
        let mut work = vec![at];
        while let Some(i) = work.pop() {
            let status = self.members[i].status;
            for (k, policy) in self.members[i].kids.clone() {
                let kid = &mut self.members[k];
                // Ended, released, or cancelled through another path.
                if kid.status != MemberStatus::Waiting {
                    continue;
                }
                if status == MemberStatus::Succeeded || policy == OnFailure::Continue {
                    kid.left -= 1;
                    if kid.left == 0 {
                        kid.status = MemberStatus::Releasing;
                        ready.push(k);
                    }
                } else {
                    self.set_end(k, MemberStatus::Cancelled, None, now);
                    work.push(k);
                }
            }
        }
    }

    /// Ends the flow when closed and every member ended; returns the
    /// callbacks due.
    fn check_end(&mut self, now: SystemTime) -> Vec<usize> {
        if self.status.is_ended() || !self.closed || self.ended < self.members.len() as u64 {
            return Vec::new();
        }
        self.status = if self.cancelled {
            FlowStatus::Cancelled
        } else if self.succeeded == self.members.len() as u64 {
            FlowStatus::Succeeded
        } else {
            FlowStatus::Failed
        };
        self.ended_at = Some(now);
        let mut due = Vec::new();
        for (i, cb) in self.callbacks.iter_mut().enumerate() {
            let fires = match cb.name.as_str() {
                ON_SUCCESS => self.status == FlowStatus::Succeeded,
                _ => self.status != FlowStatus::Cancelled,
            };
            if fires {
                cb.status = MemberStatus::Releasing;
                due.push(i);
            } else {
                cb.status = MemberStatus::Cancelled;
            }
        }
        due
    }

    /// The release of member `at`, with its dependencies' results.
    fn release(&self, id: &str, at: usize) -> Release {
        let m = &self.members[at];
        let mut job = m.job.clone();
        if !m.after.is_empty() {
            let deps: serde_json::Map<String, serde_json::Value> = m
                .after
                .iter()
                .map(|(d, _)| {
                    let r = self.members[self.index[d]].result.as_deref();
                    let v = r.and_then(|r| serde_json::from_str(r).ok()).unwrap_or(serde_json::Value::Null);
                    (d.clone(), v)
                })
                .collect();
            job.headers.insert(DEPS_HEADER.to_owned(), serde_json::Value::Object(deps).to_string());
        }
        Release { flow: id.to_owned(), member: m.name.clone(), job }
    }
}

impl FlowBook {
    fn out(&mut self, id: &str, positions: &[usize], callbacks: &[usize], now: SystemTime) -> Vec<Release> {
        let Some(flow) = self.flows.get(id) else { return Vec::new() };
        let mut out: Vec<Release> = positions.iter().map(|&at| flow.release(id, at)).collect();
        out.extend(callbacks.iter().map(|&i| {
            let cb = &flow.callbacks[i];
            Release { flow: id.to_owned(), member: cb.name.clone(), job: cb.job.clone() }
        }));
        for r in &out {
            self.outstanding.insert((r.flow.clone(), r.member.clone()), now);
        }
        if let Some(flow) = self.flows.get_mut(id) {
            for &at in positions {
                flow.members[at].released_at = Some(now);
            }
            for &i in callbacks {
                flow.callbacks[i].released_at = Some(now);
            }
        }
        out
    }

    pub(crate) fn create(&mut self, new: NewFlow, now: SystemTime) -> Result<Vec<Release>, FlowError> {
        if self.flows.contains_key(&new.id) {
            return Err(FlowError::Exists(new.id));
        }
        let callbacks = [(ON_SUCCESS, new.on_success), (ON_COMPLETE, new.on_complete)]
            .into_iter()
            .filter_map(|(n, j)| j.map(|j| Member::new(n.to_owned(), j, Vec::new())))
            .collect();
        let mut flow = Flow {
            kind: new.kind,
            status: FlowStatus::Running,
            closed: new.closed || new.kind == FlowKind::Workflow,
            cancelled: false,
            created_at: now,
            ended_at: None,
            ended: 0,
            succeeded: 0,
            members: Vec::new(),
            index: HashMap::new(),
            callbacks,
        };
        let ready = flow.add(&new.id, new.members)?;
        let due = flow.check_end(now);
        self.order.insert((now, new.id.clone()));
        self.flows.insert(new.id.clone(), flow);
        self.after_end(&new.id, now);
        Ok(self.out(&new.id, &ready, &due, now))
    }

    pub(crate) fn add(
        &mut self,
        id: &str,
        members: Vec<FlowMember>,
        close: bool,
        now: SystemTime,
    ) -> Result<Vec<Release>, FlowError> {
        let flow = self.flows.get_mut(id).ok_or_else(|| FlowError::NotFound(id.to_owned()))?;
        if flow.kind != FlowKind::Batch {
            return Err(FlowError::NotABatch(id.to_owned()));
        }
        if flow.status.is_ended() {
            return Err(FlowError::Ended { flow: id.to_owned(), status: flow.status });
        }
        let ready = flow.add(id, members)?;
        flow.closed |= close;
        let due = flow.check_end(now);
        self.after_end(id, now);
        Ok(self.out(id, &ready, &due, now))
    }

    pub(crate) fn close(&mut self, id: &str, now: SystemTime) -> Result<Vec<Release>, FlowError> {
        let flow = self.flows.get_mut(id).ok_or_else(|| FlowError::NotFound(id.to_owned()))?;
        flow.closed = true;
        let due = flow.check_end(now);
        self.after_end(id, now);
        Ok(self.out(id, &[], &due, now))
    }

    /// Bookkeeping once `check_end` ran: the retention index, the waiter.
    fn after_end(&mut self, id: &str, now: SystemTime) {
        if let Some(flow) = self.flows.get(id) {
            if flow.status.is_ended() && flow.ended_at == Some(now) && self.ended.insert((now, id.to_owned())) {
                self.changes += 1;
                self.trim();
            }
        }
    }

    /// Deletes the oldest ended flows past [`FLOWS_KEPT`].
    fn trim(&mut self) {
        while self.ended.len() > FLOWS_KEPT {
            let Some((_, id)) = self.ended.pop_first() else { break };
            if let Some(flow) = self.flows.remove(&id) {
                self.order.remove(&(flow.created_at, id.clone()));
            }
            self.outstanding.retain(|(f, _), _| *f != id);
        }
    }

    pub(crate) fn ended_members(&mut self, ends: &[MemberEnd], now: SystemTime) -> Vec<Release> {
        let mut out = Vec::new();
        for e in ends {
            let Some(flow) = self.flows.get_mut(&e.flow) else { continue };
            let Some(&at) = flow.index.get(&e.member) else { continue };
            if flow.members[at].status.is_ended() || !e.status.is_ended() {
                continue;
            }
            let mut ready = Vec::new();
            flow.end_member(at, e.status, e.result.clone(), Some(now), &mut ready);
            let due = flow.check_end(now);
            self.changes += 1;
            self.after_end(&e.flow, now);
            out.extend(self.out(&e.flow, &ready, &due, now));
        }
        out
    }

    pub(crate) fn released(&mut self, released: &[Release]) -> Vec<JobId> {
        let mut cancel = Vec::new();
        for r in released {
            let handed_out = self.outstanding.remove(&(r.flow.clone(), r.member.clone())).is_some();
            let Some(flow) = self.flows.get_mut(&r.flow) else { continue };
            let m = match flow.index.get(&r.member) {
                Some(&at) => &mut flow.members[at],
                None => match flow.callbacks.iter_mut().find(|c| c.name == r.member) {
                    Some(c) => c,
                    None => continue,
                },
            };
            match m.status {
                MemberStatus::Releasing => m.status = MemberStatus::Released,
                // Cancelled while it was being enqueued (or its job was
                // cancelled already: cancelling it again changes nothing).
                MemberStatus::Cancelled if handed_out => cancel.push(m.job.id.clone()),
                _ => {}
            }
        }
        cancel
    }

    pub(crate) fn stale(&mut self, older_than: Duration, max: usize, now: SystemTime) -> Vec<Release> {
        let cutoff = now.checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let stale: Vec<(String, String)> =
            self.outstanding.iter().filter(|(_, &at)| at <= cutoff).take(max).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        for (f, m) in stale {
            let Some(flow) = self.flows.get(&f) else {
                self.outstanding.remove(&(f, m));
                continue;
            };
            let release = match flow.index.get(&m) {
                // Cancelled while being released: handed out again so
                // that the report tells the relay to cancel it.
                Some(&at) if matches!(flow.members[at].status, MemberStatus::Releasing | MemberStatus::Cancelled) => {
                    Some(flow.release(&f, at))
                }
                None => flow
                    .callbacks
                    .iter()
                    .find(|c| c.name == m && c.status == MemberStatus::Releasing)
                    .map(|c| Release { flow: f.clone(), member: m.clone(), job: c.job.clone() }),
                _ => None,
            };
            match release {
                Some(r) => {
                    self.outstanding.insert((f, m), now);
                    out.push(r);
                }
                None => {
                    self.outstanding.remove(&(f, m));
                }
            }
        }
        out
    }

    /// Cancels a flow; `None` when unknown or ended, else the released
    /// members (name, job) whose jobs to cancel.
    pub(crate) fn cancel(&mut self, id: &str, now: SystemTime) -> Option<CancelledMembers> {
        let flow = self.flows.get_mut(id)?;
        if flow.status.is_ended() {
            return None;
        }
        flow.cancelled = true;
        flow.closed = true;
        let mut jobs = Vec::new();
        for at in 0..flow.members.len() {
            let m = &mut flow.members[at];
            match m.status {
                MemberStatus::Released => jobs.push((m.name.clone(), m.job.id.clone())),
                MemberStatus::Waiting | MemberStatus::Releasing => {
                    m.status = MemberStatus::Cancelled;
                    m.ended_at = Some(now);
                    flow.ended += 1;
                }
                _ => {}
            }
        }
        // A cancelled flow fires no callback: nothing is released.
        flow.check_end(now);
        self.changes += 1;
        self.after_end(id, now);
        Some(jobs)
    }

    pub(crate) fn summary(&self, id: &str) -> Option<FlowSummary> {
        self.flows.get(id).map(|f| f.summary(id))
    }

    pub(crate) fn info(&self, id: &str) -> Option<FlowInfo> {
        self.page(id, 0, usize::MAX)
    }

    /// The flow with `limit` of its members from `offset` (see
    /// `FlowStore::flow_page`).
    pub(crate) fn page(&self, id: &str, offset: usize, limit: usize) -> Option<FlowInfo> {
        let flow = self.flows.get(id)?;
        Some(FlowInfo {
            summary: flow.summary(id),
            members: flow.members.iter().skip(offset).take(limit).map(Member::info).collect(),
            callbacks: flow.callbacks.iter().map(Member::info).collect(),
        })
    }

    /// One member or callback of the flow, by name.
    pub(crate) fn member(&self, id: &str, name: &str) -> Option<MemberInfo> {
        let flow = self.flows.get(id)?;
        match flow.index.get(name) {
            Some(&i) => flow.members.get(i).map(Member::info),
            None => flow.callbacks.iter().find(|m| m.name == name).map(Member::info),
        }
    }

    pub(crate) fn list(&self, kind: Option<FlowKind>, offset: usize, limit: usize) -> Vec<FlowSummary> {
        self.order
            .iter()
            .rev()
            .filter_map(|(_, id)| self.flows.get(id).map(|f| (id, f)))
            .filter(|(_, f)| kind.is_none_or(|k| f.kind == k))
            .skip(offset)
            .take(limit)
            .map(|(id, f)| f.summary(id))
            .collect()
    }
}
