//! Cron expressions read in a time zone, with the daylight-saving rules
//! below applied here rather than left to the cron crate.
//!
//! The expression is matched against local wall-clock times (as if they were
//! UTC, so the cron crate never sees a gap or an overlap); each matching
//! local time then maps to one instant: a time that happens twice fires at
//! its first occurrence, a time skipped by a spring-forward gap fires at the
//! first instant after the gap.

use std::time::SystemTime;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::error::Error;

/// A parsed cron expression and time zone.
///
/// ```
/// use jobs_core::CronSchedule;
/// let s = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
/// assert!(CronSchedule::parse("61 * * * *", "UTC").is_err());
/// assert!(CronSchedule::parse("* * * * *", "Mars/Olympus").is_err());
/// # let _ = s;
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    tz: Tz,
}

impl CronSchedule {
    /// Parses a 5-field (minutes) or 6-field (seconds first) expression and
    /// an IANA zone name.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, Error> {
        let fields = expression.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(Error::InvalidArgument(format!(
                "cron expression `{expression}` has {fields} fields: use 5 (minute hour day month weekday) or 6 (seconds first)"
            )));
        }
        let cron = croner::Cron::new(expression)
            .with_seconds_optional()
            .parse()
            .map_err(|e| Error::InvalidArgument(format!("invalid cron expression `{expression}`: {e}")))?;
        Ok(CronSchedule { cron, tz: parse_zone(timezone)? })
    }

    /// The zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after_utc: DateTime<Utc> = after.into();
        let mut naive = after_utc.with_timezone(&self.tz).naive_local();
        // A few steps at most: each step moves to a later local match; only
        // matches that map back before `after` (inside a fall-back overlap)
        // are passed over.
        for _ in 0..10_000 {
            naive = self.next_local(naive)?;
            let at = self.instant_of(naive)?;
            if at > after {
                return Some(at);
            }
        }
        None
    }

    /// Ticks in `(after, until]`, oldest first, at most `limit`; ticks that
    /// map to the same instant (several skipped by one gap) appear once.
    pub fn ticks_between(&self, after: SystemTime, until: SystemTime, limit: usize) -> Vec<SystemTime> {
        let mut out: Vec<SystemTime> = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= until => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// The next local wall-clock time the expression matches.
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&after);
        self.cron.find_next_occurrence(&as_utc, false).ok().map(|t| t.naive_utc())
    }

    /// The instant of a local time: its first occurrence when it happens
    /// twice, the end of the gap when it does not exist.
    fn instant_of(&self, local: NaiveDateTime) -> Option<SystemTime> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.into()),
            LocalResult::Ambiguous(first, _) => Some(first.into()),
            LocalResult::None => {
                // Walk forward to the first local time that exists: the
                // instant right after the gap. Gaps are at most a few hours.
                let mut probe = local.with_second(0)?.with_nanosecond(0)?;
                for _ in 0..(48 * 60) {
                    probe += chrono::Duration::minutes(1);
                    if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                        return Some(t.into());
                    }
                }
                None
            }
        }
    }
}

/// An IANA zone name.
pub(crate) fn parse_zone(timezone: &str) -> Result<Tz, Error> {
    timezone.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "unknown time zone `{timezone}`: use an IANA name such as `Europe/Berlin` or `UTC`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s).expect("valid test time").with_timezone(&Utc).into()
    }

    fn show(t: SystemTime) -> String {
        DateTime::<Utc>::from(t).to_rfc3339()
    }

    #[test]
    fn five_and_six_fields() {
        let s = CronSchedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(show(s.next_after(at("2026-01-01T10:07:00Z")).unwrap()), "2026-01-01T10:15:00+00:00");
        let s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(show(s.next_after(at("2026-01-01T10:07:03Z")).unwrap()), "2026-01-01T10:07:10+00:00");
        let e = CronSchedule::parse("* * *", "UTC").unwrap_err().to_string();
        assert!(e.contains("has 3 fields"), "{e}");
    }

    #[test]
    fn spring_forward_fires_once_right_after_the_gap() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = CronSchedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        let ticks = s.ticks_between(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"), 10);
        let shown: Vec<_> = ticks.into_iter().map(show).collect();
        assert_eq!(
            shown,
            vec![
                "2026-03-28T01:30:00+00:00", // 02:30 CET
                "2026-03-29T01:00:00+00:00", // 03:00 CEST, the first instant after the gap
                "2026-03-30T00:30:00+00:00", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn fall_back_fires_once_at_the_first_occurrence() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let ticks = s.ticks_between(at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z"), 10);
        let shown: Vec<_> = ticks.into_iter().map(show).collect();
        assert_eq!(
            shown,
            vec![
                "2026-10-24T00:30:00+00:00", // 02:30 CEST
                "2026-10-25T00:30:00+00:00", // 02:30 CEST, first of the two
                "2026-10-26T01:30:00+00:00", // 02:30 CET
            ]
        );
    }

    #[test]
    fn every_quarter_hour_through_the_overlap_never_repeats_a_local_time() {
        let s = CronSchedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        // 00:00Z to 02:00Z on 2026-10-25 covers 02:00 CEST .. 03:00 CET.
        let ticks = s.ticks_between(at("2026-10-24T23:59:00Z"), at("2026-10-25T02:00:00Z"), 100);
        let shown: Vec<_> = ticks.into_iter().map(show).collect();
        assert_eq!(
            shown,
            vec![
                "2026-10-25T00:00:00+00:00", // 02:00 CEST
                "2026-10-25T00:15:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-25T00:45:00+00:00", // 02:45 CEST; the CET repeat of 02:xx is skipped
                "2026-10-25T02:00:00+00:00", // 03:00 CET
            ]
        );
    }

    #[test]
    fn several_ticks_in_one_gap_fire_once() {
        let s = CronSchedule::parse("*/20 2 * * *", "Europe/Berlin").unwrap();
        let ticks = s.ticks_between(at("2026-03-29T00:00:00Z"), at("2026-03-29T03:00:00Z"), 10);
        assert_eq!(ticks.into_iter().map(show).collect::<Vec<_>>(), vec!["2026-03-29T01:00:00+00:00"]);
    }
}
