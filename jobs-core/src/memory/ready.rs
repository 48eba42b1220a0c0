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
//!
//! With `QueuePolicy::group_breaker`, each group has a breaker of its own:
//! one that opens holds its group out of the turn for the cool-down (as a
//! rate does), the group's next job is its probe, and no other job of the
//! group starts while the probe runs.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::SystemTime;

use super::breaker::BreakerRun;
use crate::queue::{Breaker, GroupBreakerInfo, JobGroup, Rate};
use crate::vocab::JobId;

/// One group: its pending jobs, how many run, its bounds, its recent
/// starts (for its rate).
#[derive(Default)]
struct Group {
    lists: [VecDeque<JobId>; 4],
    running: u32,
    limit: Option<u32>,
    rate: Option<Rate>,
    starts: Starts,
}

/// The start times of the current window of a rate, oldest first.
#[derive(Default)]
pub(super) struct Starts(VecDeque<SystemTime>);

impl Starts {
    /// When the next start is allowed under `rate`: `None` for now. Starts
    /// that left the window are dropped.
    pub(super) fn wait(&mut self, rate: &Rate, now: SystemTime) -> Option<SystemTime> {
        while self.0.front().is_some_and(|t| *t + rate.per <= now) {
            self.0.pop_front();
        }
        self.next_start(rate, now)
    }

    /// When the next start is allowed under `rate` (`None`: now), without
    /// dropping the starts that left the window.
    pub(super) fn next_start(&self, rate: &Rate, now: SystemTime) -> Option<SystemTime> {
        let mut live = self.0.iter().filter(|t| **t + rate.per > now);
        let oldest = live.next();
        oldest.filter(|_| 1 + live.count() >= rate.limit as usize).map(|t| *t + rate.per)
    }

    /// How many more may start now under `rate`.
    pub(super) fn room(&mut self, rate: &Rate, now: SystemTime) -> usize {
        self.wait(rate, now);
        (rate.limit as usize).saturating_sub(self.0.len())
    }

    /// Records a start at `now`.
    pub(super) fn push(&mut self, now: SystemTime) {
        self.0.push_back(now);
    }
}

impl Group {
    fn pending(&self) -> usize {
        self.lists.iter().map(VecDeque::len).sum()
    }
}

/// The queue's own bounds for every group (`QueuePolicy::group_concurrency`
/// and `group_rate`), which override the jobs' own when set.
#[derive(Default, Clone, Copy)]
struct Overrides {
    limit: Option<u32>,
    rate: Option<Rate>,
}

impl Overrides {
    fn limit(&self, g: &Group) -> Option<u32> {
        self.limit.or(g.limit)
    }

    fn rate(&self, g: &Group) -> Option<Rate> {
        self.rate.or(g.rate)
    }

    fn has_room(&self, g: &Group) -> bool {
        self.limit(g).is_none_or(|l| g.running < l)
    }
}

/// The pending jobs of one queue.
#[derive(Default)]
pub(super) struct Ready {
    plain: [VecDeque<JobId>; 4],
    groups: HashMap<String, Group>,
    turn: VecDeque<Option<String>>,
    on: HashSet<String>,
    /// Groups out of the turn for their rate, by when they may start
    /// again, and the same as a set.
    throttled: BTreeSet<(SystemTime, String)>,
    held: HashSet<String>,
    overrides: Overrides,
    /// The queue's `group_breaker`, and the breakers of the groups that
    /// count failures or are not closed (a group's entry outlives the
    /// group's jobs: an open breaker stays open while the group is idle).
    group_breaker: Option<Breaker>,
    breakers: HashMap<String, BreakerRun>,
    /// Times a group's breaker opened.
    pub(super) group_breakers_opened: u64,
    /// Times a group reached its concurrency with jobs still pending, and
    /// times one was held back by its rate (counters, as in `QueueCounts`).
    pub(super) limited: u64,
    pub(super) rate_held: u64,
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
                entry.rate = g.rate;
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

    /// Whether the queue serves groups in turn: it has held a grouped job
    /// (its ungrouped jobs' place in the turn stays from then on).
    pub(super) fn takes_turns(&self) -> bool {
        !self.turn.is_empty()
    }

    /// Sets the queue's bounds for every group (`None`: each job's own);
    /// a group that has room under them comes back into the turn.
    pub(super) fn set_overrides(&mut self, limit: Option<u32>, rate: Option<Rate>) {
        self.overrides = Overrides { limit, rate };
        let keys: Vec<String> = self.groups.keys().cloned().collect();
        for k in keys {
            self.offer(&k);
        }
    }

    /// Takes job `id` out (cancelled, or moved by a keyed replace); linear
    /// in its list's length.
    pub(super) fn remove(&mut self, id: &JobId, rank: usize, group: Option<&JobGroup>, now: SystemTime) {
        let list = match group {
            None => &mut self.plain[rank],
            Some(g) => match self.groups.get_mut(&g.key) {
                Some(grp) => &mut grp.lists[rank],
                None => return,
            },
        };
        list.retain(|x| x != id);
        if let Some(g) = group {
            self.tidy(&g.key, now);
        }
    }

    /// The next job to lease at `now`, with its rank and group; `started`
    /// or `offer` must follow for a grouped one (leased, or not after
    /// all). A group past its rate leaves the turn until it may start again.
    pub(super) fn pop(&mut self, now: SystemTime) -> Option<(JobId, usize, Option<String>)> {
        while let Some((t, key)) = self.throttled.first().cloned() {
            if t > now {
                break;
            }
            self.throttled.pop_first();
            self.held.remove(&key);
            self.offer(&key);
        }
        let over = self.overrides;
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
                    let Some(grp) = self.groups.get_mut(&key) else {
                        self.on.remove(&key);
                        continue;
                    };
                    let probing = self.breakers.get(&key).is_some_and(BreakerRun::is_probing);
                    if probing || !over.has_room(grp) {
                        if grp.pending() > 0 && !probing {
                            self.limited += 1;
                        }
                        self.on.remove(&key);
                        continue;
                    }
                    let rate = over.rate(grp);
                    if let Some(t) = rate.and_then(|r| grp.starts.wait(&r, now)) {
                        self.rate_held += 1;
                        self.on.remove(&key);
                        self.held.insert(key.clone());
                        self.throttled.insert((t, key));
                        continue;
                    }
                    let Some((id, rank)) = pop_first(&mut grp.lists) else {
                        self.on.remove(&key);
                        continue;
                    };
                    if rate.is_some() {
                        grp.starts.push(now);
                    }
                    // Still in the turn when it has more jobs and, once this
                    // one runs, a slot left (none beside a breaker's probe).
                    let probe = self.breakers.get(&key).is_some_and(BreakerRun::is_open);
                    let room_left = !probe && over.limit(grp).is_none_or(|l| grp.running + 1 < l);
                    if grp.pending() > 0 && room_left {
                        self.turn.push_back(Some(key.clone()));
                    } else {
                        if grp.pending() > 0 && !probe {
                            // The rest of the group waits for a slot.
                            self.limited += 1;
                        }
                        self.on.remove(&key);
                    }
                    return Some((id, rank, Some(key)));
                }
            }
        }
        None
    }

    /// Job `id` of `group` was leased until `until`: it holds a slot, and
    /// is the group's probe when its breaker is open.
    pub(super) fn started(&mut self, group: &str, id: &JobId, until: SystemTime) {
        self.groups.entry(group.to_owned()).or_default().running += 1;
        if let Some(b) = self.breakers.get_mut(group).filter(|b| b.is_open()) {
            b.probe_started(id.clone(), until);
        }
    }

    /// Running job `id` of `group` ended: its slot is free (and when it
    /// was the group's probe and its verdict did not close or reopen the
    /// breaker, the next job is a probe). Whether the group came back into
    /// the turn (pools waiting for a slot can take it).
    pub(super) fn ended(&mut self, group: &str, id: &JobId, now: SystemTime) -> bool {
        if let Some(g) = self.groups.get_mut(group) {
            g.running = g.running.saturating_sub(1);
        }
        if let Some(b) = self.breakers.get_mut(group) {
            b.probe_ended(id, now);
        }
        let back = self.offer(group);
        self.tidy(group, now);
        back
    }

    /// Sets the queue's `group_breaker`; `None` closes every group's.
    pub(super) fn set_group_breaker(&mut self, config: Option<Breaker>) {
        self.group_breaker = config;
        if config.is_none() {
            let keys: Vec<String> = self.breakers.drain().map(|(k, _)| k).collect();
            for k in keys {
                self.offer(&k);
            }
        }
    }

    /// An attempt of job `id` of `group` failed at `now`: counted by the
    /// group's breaker, which may open (the group is held for the
    /// cool-down).
    pub(super) fn group_failed(&mut self, group: &str, id: &JobId, now: SystemTime) {
        let Some(config) = self.group_breaker else { return };
        let b = self.breakers.entry(group.to_owned()).or_default();
        let before = b.opened();
        b.failed(Some(&config), id, now);
        if b.opened() > before {
            self.group_breakers_opened += 1;
            self.hold(group, now + config.cooldown);
        }
    }

    /// Job `id` of `group` succeeded: when it was the group's probe, the
    /// breaker closes; whether it did (the group's jobs may start).
    pub(super) fn group_succeeded(&mut self, group: &str, id: &JobId) -> bool {
        let closed = self.breakers.get_mut(group).is_some_and(|b| b.succeeded(id));
        if closed {
            self.breakers.remove(group);
            self.offer(group);
        }
        closed
    }

    /// Opens `group`'s breaker until `until` by hand.
    pub(super) fn open_group_breaker(&mut self, group: &str, until: SystemTime) {
        self.breakers.entry(group.to_owned()).or_default().open(until);
        self.group_breakers_opened += 1;
        self.hold(group, until);
    }

    /// Closes `group`'s breaker by hand: its jobs start at once.
    pub(super) fn close_group_breaker(&mut self, group: &str) {
        if self.breakers.remove(group).is_some() {
            self.held.remove(group);
            self.throttled.retain(|(_, g)| g != group);
            self.offer(group);
        }
    }

    /// The groups whose breaker is not closed: how many, and at most
    /// `limit` of them.
    pub(super) fn open_breakers(&self, limit: usize) -> (u64, Vec<GroupBreakerInfo>) {
        let open = self.breakers.iter().filter(|(_, b)| b.is_open());
        let listed = open
            .clone()
            .take(limit)
            .map(|(k, b)| GroupBreakerInfo { group: k.clone(), state: b.state().clone() })
            .collect();
        (open.count() as u64, listed)
    }

    /// Holds `group` back until `until` (an upstream's "retry after"): out
    /// of the turn, and no job of it starts before then. Linear in the
    /// turn's length: a rare event.
    pub(super) fn hold(&mut self, group: &str, until: SystemTime) {
        self.on.remove(group);
        self.turn.retain(|m| m.as_deref() != Some(group));
        self.throttled.retain(|(_, g)| g != group);
        self.held.insert(group.to_owned());
        self.throttled.insert((until, group.to_owned()));
    }

    /// When a group held back by its rate may start again, the earliest.
    pub(super) fn next_allowed(&self) -> Option<SystemTime> {
        self.throttled.first().map(|(t, _)| *t)
    }

    /// Puts `group` in the turn when it has pending jobs and a free slot
    /// and is not in it yet (nor held back by its rate); whether it went in.
    pub(super) fn offer(&mut self, group: &str) -> bool {
        let over = self.overrides;
        let eligible = !self.held.contains(group)
            && !self.breakers.get(group).is_some_and(BreakerRun::is_probing)
            && self.groups.get(group).is_some_and(|g| g.pending() > 0 && over.has_room(g));
        if eligible && self.on.insert(group.to_owned()) {
            self.turn.push_back(Some(group.to_owned()));
            return true;
        }
        false
    }

    /// Forgets a group with nothing pending or running and no start in its
    /// rate's window (and so out of the turn), keeping memory bounded by
    /// the live groups.
    fn tidy(&mut self, group: &str, now: SystemTime) {
        let over = self.overrides;
        let idle = self.groups.get_mut(group).is_some_and(|g| {
            g.pending() == 0
                && g.running == 0
                && over.rate(g).is_none_or(|r| g.starts.room(&r, now) == r.limit as usize)
        });
        if idle && !self.on.contains(group) && !self.held.contains(group) {
            self.groups.remove(group);
        }
        let within = self.group_breaker.map(|b| b.within);
        if self.breakers.get_mut(group).is_some_and(|b| b.is_idle(within, now)) {
            self.breakers.remove(group);
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
                concurrency: self.overrides.limit(g),
                rate: self.overrides.rate(g),
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
