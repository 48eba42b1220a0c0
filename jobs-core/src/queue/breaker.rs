//! Circuit breakers: a queue whose jobs keep failing stops starting them for
//! a while, then tries one.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vocab::JobId;

/// A queue's circuit breaker: after [`failures`](Breaker::failures) failed
/// attempts within [`within`](Breaker::within), the breaker opens and no
/// job of the queue starts, on any pool, for [`cooldown`](Breaker::cooldown)
/// (waiting jobs spend no attempt). Then one probe job starts: its success
/// closes the breaker, its failure opens it for another cool-down. Written
/// `"N/window:cooldown"`: `"5/1m:30s"` is five failures within a minute,
/// then thirty seconds closed to work.
///
/// ```
/// use std::time::Duration;
/// use jobs_core::Breaker;
/// let b: Breaker = "5/1m:30s".parse().unwrap();
/// assert_eq!((b.failures, b.within, b.cooldown), (5, Duration::from_secs(60), Duration::from_secs(30)));
/// assert_eq!(b.to_string(), "5/1m:30s");
/// assert!("5/1m".parse::<Breaker>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Breaker {
    /// Failed attempts that open the breaker: 1 to 100,000.
    pub failures: u32,
    /// The window they are counted in: 1 ms to a day.
    pub within: Duration,
    /// How long the breaker stays open before a probe: 1 ms to a day.
    pub cooldown: Duration,
}

impl Breaker {
    /// Checks the bounds (see the fields), as a sentence saying what to
    /// write instead.
    pub fn check(&self) -> Result<(), String> {
        if self.failures == 0 || self.failures > crate::MAX_RATE_LIMIT {
            return Err(format!(
                "a breaker opens after 1 to {} failures, not {}",
                crate::MAX_RATE_LIMIT,
                self.failures
            ));
        }
        for (what, d) in [("window", self.within), ("cool-down", self.cooldown)] {
            if d < Duration::from_millis(1) || d > Duration::from_secs(86_400) {
                return Err(format!("a breaker's {what} is from 1ms to 1 day, not {d:?}"));
            }
        }
        Ok(())
    }
}

impl FromStr for Breaker {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let how = "write `N/window:cooldown`, e.g. \"5/1m:30s\"";
        let (count, rest) = s.split_once('/').ok_or_else(|| format!("invalid breaker {s:?}: {how}"))?;
        let (within, cooldown) = rest.split_once(':').ok_or_else(|| format!("invalid breaker {s:?}: {how}"))?;
        let failures: u32 =
            count.trim().parse().map_err(|_| format!("invalid breaker {s:?}: `{count}` is not a count; {how}"))?;
        let duration = |t: &str| {
            humantime::parse_duration(t.trim())
                .map_err(|_| format!("invalid breaker {s:?}: `{t}` is not a duration; {how}"))
        };
        let b = Breaker { failures, within: duration(within)?, cooldown: duration(cooldown)? };
        b.check().map_err(|e| format!("invalid breaker {s:?}: {e}"))?;
        Ok(b)
    }
}

impl fmt::Display for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}",
            self.failures,
            humantime::format_duration(self.within),
            humantime::format_duration(self.cooldown)
        )
    }
}

impl Serialize for Breaker {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Breaker {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a queue's breaker stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Jobs start as usual.
    Closed,
    /// No job starts before `until`; then one probe.
    Open {
        /// When the cool-down ends (RFC 3339 in JSON).
        #[serde(with = "rfc3339")]
        until: SystemTime,
    },
    /// One probe job runs; no other starts until it ends (or its lease,
    /// ending at `until`, lapses and another probe is tried).
    Probing {
        /// The probe.
        job: JobId,
        /// When its lease lapses (RFC 3339 in JSON).
        #[serde(with = "rfc3339")]
        until: SystemTime,
    },
}

/// A queue's breaker as the backend holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerInfo {
    /// Open, probing or closed.
    #[serde(flatten)]
    pub state: BreakerState,
    /// Failed attempts counted in the current window (while closed).
    pub recent_failures: u32,
    /// Times the breaker opened (since the backend's counters started),
    /// by failures, a failed probe or by hand.
    pub opened: u64,
    /// Groups whose own breaker (`QueuePolicy::group_breaker`) is not
    /// closed.
    #[serde(default)]
    pub groups_open: u64,
    /// Times a group's breaker opened.
    #[serde(default)]
    pub groups_opened: u64,
    /// Some of the groups whose breaker is not closed, at most
    /// [`GROUP_BREAKERS_LISTED`], in no particular order.
    #[serde(default)]
    pub groups: Vec<GroupBreakerInfo>,
}

/// How many groups [`BreakerInfo::groups`] lists at most: a queue may have
/// many groups, and a reader wants to see the breakers, not page them.
pub const GROUP_BREAKERS_LISTED: usize = 100;

/// A group's breaker that is open or probing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupBreakerInfo {
    /// The group's key.
    pub group: String,
    /// Open (until its cool-down ends; a time already past: the next job
    /// of the group is its probe) or probing.
    #[serde(flatten)]
    pub state: BreakerState,
}

/// A change of a breaker by hand ([`QueueAdmin::set_breaker`](crate::QueueAdmin::set_breaker),
/// [`QueueAdmin::set_group_breaker`](crate::QueueAdmin::set_group_breaker)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerAction {
    /// Open it for this long (then a probe, as after failures); works on a
    /// queue without a configured breaker too.
    Open(Duration),
    /// Close it: jobs start again at once, and the failures counted so far
    /// are forgotten.
    Close,
}

/// A time as RFC 3339 text with milliseconds, for JSON readers.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}
