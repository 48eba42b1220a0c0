//! Rate limits: at most N starts per period, as `"50/1s"` or `"100/1m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// At most [`limit`](Rate::limit) starts in any window of length
/// [`per`](Rate::per) (a sliding window: never more, whatever the moment
/// the window starts). Written `"N/period"`: `"50/1s"`, `"100/1m"`,
/// `"5/500ms"`.
///
/// ```
/// use std::time::Duration;
/// use jobs_core::Rate;
/// let r: Rate = "50/1s".parse().unwrap();
/// assert_eq!((r.limit, r.per), (50, Duration::from_secs(1)));
/// assert_eq!(r.to_string(), "50/1s");
/// assert!("0/1s".parse::<Rate>().is_err());
/// assert!("fast".parse::<Rate>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Starts allowed per window: 1 to [`MAX_RATE_LIMIT`](crate::MAX_RATE_LIMIT).
    pub limit: u32,
    /// The window: from 1 ms to a day.
    pub per: Duration,
}

/// The most starts a rate allows per window (the backends keep one entry
/// per start of the current window).
pub const MAX_RATE_LIMIT: u32 = 100_000;

impl Rate {
    /// Checks the bounds (see the fields), as a sentence saying what to
    /// write instead.
    pub fn check(&self) -> Result<(), String> {
        if self.limit == 0 || self.limit > MAX_RATE_LIMIT {
            return Err(format!("a rate allows 1 to {MAX_RATE_LIMIT} starts per period, not {}", self.limit));
        }
        if self.per < Duration::from_millis(1) || self.per > Duration::from_secs(86_400) {
            return Err(format!("a rate's period is from 1ms to 1 day, not {:?}", self.per));
        }
        Ok(())
    }

    /// The period in whole milliseconds.
    pub fn per_ms(&self) -> u64 {
        u64::try_from(self.per.as_millis()).unwrap_or(u64::MAX)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let how = "write `N/period`, e.g. \"50/1s\" or \"100/1m\"";
        let (n, per) = s.split_once('/').ok_or_else(|| format!("invalid rate {s:?}: {how}"))?;
        let limit: u32 = n.trim().parse().map_err(|_| format!("invalid rate {s:?}: `{n}` is not a count; {how}"))?;
        let per = humantime::parse_duration(per.trim())
            .map_err(|_| format!("invalid rate {s:?}: `{per}` is not a duration; {how}"))?;
        let rate = Rate { limit, per };
        rate.check().map_err(|e| format!("invalid rate {s:?}: {e}"))?;
        Ok(rate)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.limit, humantime::format_duration(self.per))
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
