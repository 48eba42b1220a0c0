//! A schedule's ticks: its cadence (a cron expression or a fixed interval)
//! narrowed by its start and end instants and its exclusion dates.
//!
//! Every setting is checked here, once, so that [`Scheduler::put`] refuses a
//! definition that the runner could not follow, naming the setting.
//!
//! [`Scheduler::put`]: super::Scheduler::put

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::cron::{parse_zone, CronSchedule};
use crate::error::{Error, ScheduleSettingError};
use crate::queue::ScheduleDef;

/// The shortest interval `every` takes: ticks are stored to the millisecond,
/// and a shorter period would be a busy loop rather than a schedule.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// The date format of exclusion dates.
const DATE_FORMAT: &str = "%Y-%m-%d";

/// Where the base ticks come from.
#[derive(Debug, Clone)]
enum Cadence {
    Cron(CronSchedule),
    /// `first + k * every` for every whole `k >= 0`.
    Every {
        first: SystemTime,
        every: Duration,
    },
}

/// The ticks of one schedule definition.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    cadence: Cadence,
    tz: Tz,
    starts_at: Option<SystemTime>,
    ends_at: Option<SystemTime>,
    exclude: BTreeSet<NaiveDate>,
}

impl Timing {
    /// Checks `def`'s settings and builds its ticks. An interval's first
    /// tick is `starts_at`, or else one interval after the creation time
    /// (each rounded up to a whole millisecond).
    pub(crate) fn of(def: &ScheduleDef) -> Result<Timing, Error> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Error::InvalidSchedule(Box::new(ScheduleSettingError {
                schedule: def.name.clone(),
                field,
                value,
                reason: reason.to_owned(),
            }))
        };
        let show = |d: Duration| humantime::format_duration(d).to_string();
        let cadence = match (def.cron.trim().is_empty(), def.every) {
            (false, Some(every)) => {
                return Err(bad("every", show(every), "a schedule has a cron expression or an interval, not both"))
            }
            (true, None) => {
                return Err(bad("cron", "missing".into(), "give a cron expression, or an interval with `every`"))
            }
            (false, None) => Cadence::Cron(CronSchedule::parse(&def.cron, &def.timezone)?),
            (true, Some(every)) if every < MIN_EVERY => {
                return Err(bad("every", show(every), "an interval is at least 1s (write e.g. `90s` or `1h 30m`)"))
            }
            (true, Some(every)) => {
                let first = match def.starts_at {
                    Some(start) => whole_ms(start),
                    None => whole_ms(def.created_at) + every,
                };
                Cadence::Every { first, every }
            }
        };
        let tz = match &cadence {
            Cadence::Cron(c) => c.timezone(),
            Cadence::Every { .. } => parse_zone(&def.timezone)?,
        };
        if let (Some(start), Some(end)) = (def.starts_at, def.ends_at) {
            if end <= start {
                return Err(bad("ends_at", rfc3339(end), &format!("must be after `starts_at` ({})", rfc3339(start))));
            }
        }
        let mut exclude = BTreeSet::new();
        for text in &def.exclude {
            let date = NaiveDate::parse_from_str(text.trim(), DATE_FORMAT)
                .map_err(|_| bad("exclude", text.clone(), "write a date as YYYY-MM-DD (e.g. 2026-12-25)"))?;
            exclude.insert(date);
        }
        Ok(Timing { cadence, tz, starts_at: def.starts_at, ends_at: def.ends_at, exclude })
    }

    /// The first tick strictly after `after`: inside the bounds, on no
    /// excluded date.
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let mut cursor = after;
        if let Some(start) = self.starts_at {
            // Ticks come strictly after the cursor, and `starts_at` itself
            // may tick.
            let just_before = start.checked_sub(Duration::from_nanos(1)).unwrap_or(start);
            cursor = cursor.max(just_before);
        }
        // Each pass that lands on an excluded date moves past that date, so
        // one pass per excluded date at most, plus the one that returns.
        for _ in 0..=self.exclude.len() {
            let t = self.base_next(cursor)?;
            if self.ends_at.is_some_and(|end| t > end) {
                return None;
            }
            let date = self.local_date(t);
            if !self.exclude.contains(&date) {
                return Some(t);
            }
            let next_day = self.start_of(date.succ_opt()?)?;
            cursor = next_day.checked_sub(Duration::from_nanos(1)).unwrap_or(next_day);
        }
        None
    }

    /// Ticks in `(after, until]`, oldest first, at most `limit`.
    pub(crate) fn ticks_between(&self, after: SystemTime, until: SystemTime, limit: usize) -> Vec<SystemTime> {
        let mut out = Vec::new();
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

    /// Whether `now` is past the end: no tick will ever come.
    pub(crate) fn ended(&self, now: SystemTime) -> bool {
        self.ends_at.is_some_and(|end| now > end)
    }

    /// The cadence's first tick strictly after `after`, bounds aside.
    fn base_next(&self, after: SystemTime) -> Option<SystemTime> {
        match &self.cadence {
            Cadence::Cron(c) => c.next_after(after),
            Cadence::Every { first, every } => {
                let Ok(since) = after.duration_since(*first) else { return Some(*first) };
                let period = every.as_nanos();
                // `every` is at least a second (checked in `of`): no division by zero.
                let k = since.as_nanos() / period + 1;
                let offset = u64::try_from(period.checked_mul(k)?).ok()?;
                first.checked_add(Duration::from_nanos(offset))
            }
        }
    }

    /// The calendar date of `t` in the schedule's zone.
    fn local_date(&self, t: SystemTime) -> NaiveDate {
        DateTime::<Utc>::from(t).with_timezone(&self.tz).date_naive()
    }

    /// The first instant of `date` in the schedule's zone (the end of the
    /// gap in a zone whose clocks skip midnight).
    fn start_of(&self, date: NaiveDate) -> Option<SystemTime> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        (0..=24 * 60)
            .map(|m| midnight + chrono::Duration::minutes(m))
            .find_map(|local| self.tz.from_local_datetime(&local).earliest())
            .map(Into::into)
    }
}

/// `t` rounded up to a whole millisecond: backends store ticks to the
/// millisecond, so an interval's ticks are whole milliseconds too.
fn whole_ms(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let rest = since.subsec_nanos() % 1_000_000;
    if rest == 0 {
        t
    } else {
        t + Duration::from_nanos(u64::from(1_000_000 - rest))
    }
}

/// An instant as RFC 3339 (UTC), as errors and listings show it.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc).into()
    }

    fn every(secs: u64, created: &str) -> ScheduleDef {
        ScheduleDef {
            cron: String::new(),
            every: Some(Duration::from_secs(secs)),
            created_at: at(created),
            ..ScheduleDef::new("s", "", "UTC", "job", "q")
        }
    }

    #[test]
    fn an_interval_counts_from_its_creation_or_its_start() {
        let t = Timing::of(&every(90, "2026-01-01T10:00:00Z")).unwrap();
        let ticks = t.ticks_between(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:05:00Z"), 10);
        let shown: Vec<_> = ticks.into_iter().map(rfc3339).collect();
        assert_eq!(shown, ["2026-01-01T10:01:30Z", "2026-01-01T10:03:00Z", "2026-01-01T10:04:30Z"]);

        let def = ScheduleDef { starts_at: Some(at("2026-01-02T00:00:00Z")), ..every(3600, "2026-01-01T10:00:00Z") };
        let t = Timing::of(&def).unwrap();
        assert_eq!(t.next_after(at("2026-01-01T10:00:00Z")).map(rfc3339).unwrap(), "2026-01-02T00:00:00Z");
        assert_eq!(t.next_after(at("2026-01-02T00:00:00Z")).map(rfc3339).unwrap(), "2026-01-02T01:00:00Z");
    }

    #[test]
    fn bounds_and_exclusions_narrow_cron_ticks() {
        let def = ScheduleDef {
            starts_at: Some(at("2026-12-23T00:00:00Z")),
            ends_at: Some(at("2026-12-28T09:00:00Z")),
            exclude: vec!["2026-12-25".into(), "2026-12-26".into()],
            ..ScheduleDef::new("s", "0 9 * * *", "Europe/Berlin", "job", "q")
        };
        let t = Timing::of(&def).unwrap();
        let ticks = t.ticks_between(at("2026-12-01T00:00:00Z"), at("2027-01-31T00:00:00Z"), 100);
        let shown: Vec<_> = ticks.into_iter().map(rfc3339).collect();
        // 09:00 CET is 08:00 UTC; the 28th's tick is before the end.
        assert_eq!(
            shown,
            ["2026-12-23T08:00:00Z", "2026-12-24T08:00:00Z", "2026-12-27T08:00:00Z", "2026-12-28T08:00:00Z"]
        );
        assert!(!t.ended(at("2026-12-28T09:00:00Z")));
        assert!(t.ended(at("2026-12-28T09:00:01Z")));
    }

    #[test]
    fn an_excluded_day_of_a_short_interval_is_skipped_whole() {
        let def = ScheduleDef { exclude: vec!["2026-01-02".into()], ..every(1, "2026-01-01T23:59:58Z") };
        let t = Timing::of(&def).unwrap();
        let ticks = t.ticks_between(at("2026-01-01T23:59:58Z"), at("2026-01-03T00:00:01Z"), 10);
        let shown: Vec<_> = ticks.into_iter().map(rfc3339).collect();
        assert_eq!(shown, ["2026-01-01T23:59:59Z", "2026-01-03T00:00:00Z", "2026-01-03T00:00:01Z"]);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let field = |def: ScheduleDef| match Timing::of(&def).unwrap_err() {
            Error::InvalidSchedule(e) => e.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(every(0, "2026-01-01T00:00:00Z")), "every");
        assert_eq!(
            field(ScheduleDef {
                every: Some(Duration::from_secs(60)),
                ..ScheduleDef::new("s", "* * * * *", "UTC", "j", "q")
            }),
            "every"
        );
        assert_eq!(field(ScheduleDef::new("s", " ", "UTC", "j", "q")), "cron");
        assert_eq!(
            field(ScheduleDef { exclude: vec!["25.12.2026".into()], ..every(60, "2026-01-01T00:00:00Z") }),
            "exclude"
        );
        let start = at("2026-01-02T00:00:00Z");
        let def = ScheduleDef { starts_at: Some(start), ends_at: Some(start), ..every(60, "2026-01-01T00:00:00Z") };
        assert_eq!(field(def), "ends_at");
        let e = Timing::of(&every(0, "2026-01-01T00:00:00Z")).unwrap_err().to_string();
        assert_eq!(e, "schedule `s`: invalid `every` `0s`: an interval is at least 1s (write e.g. `90s` or `1h 30m`)");
    }
}
