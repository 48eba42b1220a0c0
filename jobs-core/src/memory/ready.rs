//! A queue's pending jobs in `MemoryQueue`: the ungrouped ones by priority,
//! and each group's by priority, with the groups served in turn
//! (`JobOptions::group`, `#[job(group = .., concurrency = ..)]`).
//!
//! A queue without groups is four FIFO lists taken in priority order. Once
//! a grouped job arrived, fetches take turns: each group with pending jobs
//! and a free slot (fewer running than its concurrency) is in the turn
//! once, and so are the ungrouped jobs (as `None`); each turn yields one job,
//! the group's most urgent and oldest. The cost of a turn does not depend
//! on how many groups exist: idle and full groups are out of the turn until
//! a job arrives or a slot frees.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::queue::JobGroup;
use crate::vocab::JobId;

/// One group: its pending jobs, how many run, its bound.
#[derive(Default)]
struct Group {
    lists: [VecDeque<JobId>; 4],
    running: u32,
    limit: Option<u32>,
}

impl Group {
    fn pending(&self) -> usize {
        self.lists.iter().map(VecDeque::len).sum()
    }

    fn has_room(&self) -> bool {
        self.limit.is_none_or(|l| self.running < l)
    }
}

/// The pending jobs of one queue.
#[derive(Default)]
pub(super) struct Ready {
    plain: [VecDeque<JobId>; 4],
    groups: HashMap<String, Group>,
    turn: VecDeque<Option<String>>,
    on: HashSet<String>,
}

fn pop_first(lists: &mut [VecDeque<JobId>; 4]) -> Option<(JobId, usize)> {
    lists.iter_mut().enumerate().find_map(|(rank, l)| l.pop_front().map(|id| (id, rank)))
}

impl Ready {
    /// Makes job `id` of priority `rank` pending, last in line (or first,
    /// `front`: a job handed back was taken before those behind it).
    pub(super) fn push(&mut self, id: JobId, rank: usize, group: Option<&JobGroup>, front: bool) {
        let list = match group {
            None => &mut self.plain[rank],
            Some(g) => {
                if self.turn.is_empty() {
                    // The queue's first group: its ungrouped jobs take turns too.
                    self.turn.push_back(None);
                }
                let entry = self.groups.entry(g.key.clone()).or_default();
                entry.limit = g.concurrency;
                &mut entry.lists[rank]
            }
        };
        if front {
            list.push_front(id);
        } else {
            list.push_back(id);
        }
        if let Some(g) = group {
            self.offer(&g.key);
        }
    }

    /// Takes job `id` out (cancelled, or moved by a keyed replace); linear
    /// in its list's length.
    pub(super) fn remove(&mut self, id: &JobId, rank: usize, group: Option<&JobGroup>) {
        let list = match group {
            None => &mut self.plain[rank],
            Some(g) => match self.groups.get_mut(&g.key) {
                Some(grp) => &mut grp.lists[rank],
                None => return,
            },
        };
        list.retain(|x| x != id);
        if let Some(g) = group {
            self.tidy(&g.key);
        }
    }

    /// The next job to lease, with its rank and group; `started` or
    /// `offer` must follow for a grouped one (leased, or not after all).
    pub(super) fn pop(&mut self) -> Option<(JobId, usize, Option<String>)> {
        if self.turn.is_empty() {
            return pop_first(&mut self.plain).map(|(id, rank)| (id, rank, None));
        }
        let mut idle = 0;
        while idle < self.turn.len() {
            match self.turn.pop_front()? {
                None => {
                    self.turn.push_back(None);
                    if let Some((id, rank)) = pop_first(&mut self.plain) {
                        return Some((id, rank, None));
                    }
                    idle += 1;
                }
                Some(key) => {
                    let Some(grp) = self.groups.get_mut(&key).filter(|g| g.has_room()) else {
                        self.on.remove(&key);
                        continue;
                    };
                    let Some((id, rank)) = pop_first(&mut grp.lists) else {
                        self.on.remove(&key);
                        continue;
                    };
                    // Still in the turn when it has more jobs and, once this
                    // one runs, a slot left.
                    if grp.pending() > 0 && grp.limit.is_none_or(|l| grp.running + 1 < l) {
                        self.turn.push_back(Some(key.clone()));
                    } else {
                        self.on.remove(&key);
                    }
                    return Some((id, rank, Some(key)));
                }
            }
        }
        None
    }

    /// A job of `group` was leased: it holds a slot.
    pub(super) fn started(&mut self, group: &str) {
        self.groups.entry(group.to_owned()).or_default().running += 1;
    }

    /// A running job of `group` ended: its slot is free. Whether the group
    /// came back into the turn (pools waiting for a slot can take it).
    pub(super) fn ended(&mut self, group: &str) -> bool {
        if let Some(g) = self.groups.get_mut(group) {
            g.running = g.running.saturating_sub(1);
        }
        let back = self.offer(group);
        self.tidy(group);
        back
    }

    /// Puts `group` in the turn when it has pending jobs and a free slot
    /// and is not in it yet; whether it went in.
    pub(super) fn offer(&mut self, group: &str) -> bool {
        let eligible = self.groups.get(group).is_some_and(|g| g.pending() > 0 && g.has_room());
        if eligible && self.on.insert(group.to_owned()) {
            self.turn.push_back(Some(group.to_owned()));
            return true;
        }
        false
    }

    /// Forgets a group with nothing pending or running (and so out of the
    /// turn), keeping memory bounded by the live groups.
    fn tidy(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(|g| g.pending() == 0 && g.running == 0) && !self.on.contains(group) {
            self.groups.remove(group);
        }
    }

    /// The groups with the most pending jobs, at most `limit` of them.
    pub(super) fn busiest(&self, limit: usize) -> Vec<crate::queue::GroupInfo> {
        let mut all: Vec<crate::queue::GroupInfo> = self
            .groups
            .iter()
            .filter(|(_, g)| g.pending() > 0)
            .map(|(key, g)| crate::queue::GroupInfo {
                key: key.clone(),
                pending: g.pending() as u64,
                running: u64::from(g.running),
                concurrency: g.limit,
            })
            .collect();
        all.sort_by(|a, b| b.pending.cmp(&a.pending).then_with(|| b.key.cmp(&a.key)));
        all.truncate(limit);
        all
    }

    /// Pending jobs in all.
    pub(super) fn len(&self) -> usize {
        self.plain.iter().map(VecDeque::len).sum::<usize>() + self.groups.values().map(Group::pending).sum::<usize>()
    }

    /// Every pending job: the ungrouped ones by priority, then each group's
    /// by priority, the groups in the order of [`Ready::busiest`].
    pub(super) fn iter(&self) -> impl Iterator<Item = &JobId> {
        let mut groups: Vec<(&String, &Group)> = self.groups.iter().filter(|(_, g)| g.pending() > 0).collect();
        groups.sort_by(|a, b| b.1.pending().cmp(&a.1.pending()).then_with(|| b.0.cmp(a.0)));
        self.plain.iter().flatten().chain(groups.into_iter().flat_map(|(_, g)| g.lists.iter().flatten()))
    }
}
