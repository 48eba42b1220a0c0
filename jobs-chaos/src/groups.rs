//! The group checks of a run with [`ChaosConfig::groups`](crate::ChaosConfig::groups):
//! no group held more leases at once than its bound, none started more
//! jobs in a window than its rate, and no group's counts outlived its jobs.
//!
//! The checks read what Redis recorded, on its own clock, not the workers'
//! run logs (whose clocks may be skewed, and whose runs may outlive a lost
//! lease while their worker is stopped). An attempt in a job's record runs
//! from when a worker took it to when it ended or its lease was taken back:
//! the backend takes the group's slot in the same script that records the
//! start, and frees it in the one that records the end. A lease lost before
//! its handler started leaves no attempt and a re-leased attempt keeps only
//! its latest start, so the recorded spans lie within the slots' and the
//! peak they give is never above the true one. Likewise the recorded starts
//! are among the starts the rate counted (it counts each lease when it is
//! granted), so a window holding more of them than the rate allows is a
//! true breach.

use std::collections::{BTreeMap, HashMap};

use jobs_core::{JobInfo, Rate};
use serde::Serialize;

use crate::model::ms;

/// What the group checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupFindings {
    /// Groups with at least one recorded attempt.
    pub groups_seen: u64,
    /// Attempts of grouped jobs whose span was checked.
    pub attempts_checked: u64,
    /// The most leases one group held at once, over every group.
    pub most_at_once: u32,
    /// Groups that held more than their bound at once, with the instant
    /// (ms, server clock) and how many: each a failure.
    pub over_bound: Vec<String>,
    /// The most starts of one group in one window of the rate, over every
    /// group (a run with a group rate).
    pub most_in_window: u32,
    /// Groups that started more jobs in one window than their rate allows,
    /// with the window's start (ms, server clock) and how many: each a
    /// failure.
    pub over_rate: Vec<String>,
    /// Groups whose pending or running count is not zero once every job
    /// ended (`gpend`, `grun` of `jobs-redis`): each a failure, a leaked
    /// slot or a job the count lost.
    pub residue: Vec<String>,
}

/// The bound and rate checks over the attempts recorded in `infos`:
/// finished attempts for the spans against `bound`, every recorded start
/// against `rate` (when the run has one).
pub fn check(infos: &[Option<JobInfo>], bound: u32, rate: Option<Rate>) -> GroupFindings {
    // Per group, each recorded attempt's start and end (ms).
    let mut attempts: HashMap<&str, Vec<(u64, Option<u64>)>> = HashMap::new();
    for info in infos.iter().flatten() {
        let Some(g) = info.group.as_deref() else { continue };
        let a = info.attempt_log.iter().map(|a| (ms(a.started_at), a.finished_at.map(ms)));
        attempts.entry(g).or_default().extend(a);
    }
    let mut f = GroupFindings { groups_seen: attempts.len() as u64, ..GroupFindings::default() };
    let mut over_bound: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    let mut over_rate: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for (g, spans) in &attempts {
        let (peak, at) = most_at_once(spans);
        f.attempts_checked += spans.iter().filter(|(_, end)| end.is_some()).count() as u64;
        f.most_at_once = f.most_at_once.max(u32::try_from(peak).unwrap_or(u32::MAX));
        if peak > bound as usize {
            over_bound.insert(g, (at, peak));
        }
        if let Some(rate) = rate {
            let (most, from) = most_in_window(spans, u64::try_from(rate.per.as_millis()).unwrap_or(u64::MAX));
            f.most_in_window = f.most_in_window.max(u32::try_from(most).unwrap_or(u32::MAX));
            if most > rate.limit as usize {
                over_rate.insert(g, (from, most));
            }
        }
    }
    f.over_bound = over_bound
        .into_iter()
        .map(|(g, (at, n))| format!("group {g} held {n} leases at once at {at} ms (bound {bound})"))
        .collect();
    if let Some(rate) = rate {
        f.over_rate = over_rate
            .into_iter()
            .map(|(g, (at, n))| format!("group {g} started {n} jobs in the window from {at} ms (rate {rate})"))
            .collect();
    }
    f
}

/// The most finished spans of `spans` open at once, and the first instant
/// they were. Spans are half-open: a slot freed and taken again in the
/// same millisecond is not two at once, so ends sort first.
fn most_at_once(spans: &[(u64, Option<u64>)]) -> (usize, u64) {
    let mut events: Vec<(u64, i32)> = Vec::with_capacity(2 * spans.len());
    for &(start, end) in spans {
        if let Some(end) = end {
            events.extend([(start, 1), (end, -1)]);
        }
    }
    events.sort_unstable();
    let (mut held, mut most) = (0i32, (0usize, 0u64));
    for (at, d) in events {
        held += d;
        let n = usize::try_from(held).unwrap_or(0);
        if n > most.0 {
            most = (n, at);
        }
    }
    most
}

/// The most starts of `spans` within one window of `per` ms, and where
/// that window starts. Windows are half-open, as the backends count them:
/// a start exactly one window after another is in the next.
fn most_in_window(spans: &[(u64, Option<u64>)], per: u64) -> (usize, u64) {
    let mut starts: Vec<u64> = spans.iter().map(|(start, _)| *start).collect();
    starts.sort_unstable();
    let (mut first, mut most) = (0, (0usize, 0u64));
    for last in 0..starts.len() {
        while starts[last] >= starts[first].saturating_add(per) {
            first += 1;
        }
        if last - first + 1 > most.0 {
            most = (last - first + 1, starts[first]);
        }
    }
    most
}

/// The groups whose `gpend` or `grun` count is not zero, over the queue's
/// partitions (`jobs-redis` keeps both hashes per queue, with a field `''`
/// that is no group's; see its `scripts/groups.lua`).
pub(crate) async fn residue(url: &str, partitions: u16) -> Result<Vec<String>, redis::RedisError> {
    let counts = crate::worker::read_queue_hashes(url, partitions, &["gpend", "grun"]).await?;
    let mut out = Vec::new();
    for (all, what) in counts.into_iter().zip(["pending", "running"]) {
        let mut left: Vec<_> = all
            .into_iter()
            .filter(|(g, v)| !g.is_empty() && v.parse::<i64>() != Ok(0))
            .map(|(g, v)| format!("group {g} still counts {v} {what} after the drain"))
            .collect();
        left.sort();
        out.extend(left);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;
    use jobs_core::{AttemptInfo, JobInfo, JobStatus};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn job(group: &str, spans: &[(u64, u64)]) -> Option<JobInfo> {
        let mut info = crate::verify::tests::info(JobStatus::Succeeded, &[]);
        info.group = Some(group.to_owned());
        info.attempt_log = spans
            .iter()
            .zip(1..)
            .map(|((s, e), attempt)| AttemptInfo {
                attempt,
                started_at: at(*s),
                finished_at: Some(at(*e)),
                error: None,
                snoozed_for: None,
            })
            .collect();
        Some(info)
    }

    #[test]
    fn a_third_lease_of_a_group_bound_to_two_is_found_with_its_instant() {
        let infos = vec![job("a", &[(0, 100)]), job("a", &[(50, 150)]), job("a", &[(99, 120)]), job("b", &[(0, 500)])];
        let f = check(&infos, 2, None);
        assert_eq!((f.groups_seen, f.attempts_checked, f.most_at_once), (2, 4, 3));
        assert_eq!(f.over_bound, vec!["group a held 3 leases at once at 99 ms (bound 2)".to_owned()]);
    }

    #[test]
    fn a_window_with_one_start_too_many_is_found_and_a_start_one_window_later_is_not() {
        let rate: Rate = "2/1s".parse().unwrap();
        let infos = vec![job("a", &[(0, 1), (1_000, 1_001)]), job("a", &[(500, 501)]), job("b", &[(0, 1)])];
        let f = check(&infos, 3, Some(rate));
        assert_eq!(f.most_in_window, 2, "0 and 500, then 500 and 1000");
        assert!(f.over_rate.is_empty(), "{:?}", f.over_rate);
        let infos = vec![job("a", &[(0, 1), (999, 1_000)]), job("a", &[(500, 501)])];
        let f = check(&infos, 3, Some(rate));
        assert_eq!(f.most_in_window, 3);
        assert_eq!(f.over_rate, vec!["group a started 3 jobs in the window from 0 ms (rate 2/1s)".to_owned()]);
    }

    #[test]
    fn a_slot_freed_and_taken_in_the_same_millisecond_is_not_two_at_once() {
        let infos = vec![job("a", &[(0, 100), (200, 300)]), job("a", &[(100, 200)]), job("a", &[(300, 400)])];
        let f = check(&infos, 1, None);
        assert_eq!(f.most_at_once, 1);
        assert!(f.over_bound.is_empty(), "{:?}", f.over_bound);
    }
}
