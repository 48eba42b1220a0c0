//! Reading the vocabulary back from text: queue names, [`Priority`] and
//! [`JobId`] (`FromStr`, and the id's `Deserialize`, which goes through it).
//! Kept apart from [`crate::vocab`] because a failure here is an [`Error`],
//! and `Error` names the vocabulary.

use std::str::FromStr;

use serde::Deserialize;
use ulid::Ulid;

use crate::error::Error;
use crate::vocab::{JobId, Priority};

/// Checks a queue name: letters, digits, `_`, `-` and `.`, 1 to 64 characters.
///
/// The same rule is enforced at compile time by `#[job(queue = ..)]`; it keeps
/// queue names safe inside storage keys and URLs.
pub fn validate_queue_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidQueueName(name.to_owned()))
    }
}

/// Checks a group key (`JobOptions::group`, `#[job(group = ..)]`): 1 to
/// [`MAX_GROUP_KEY_LEN`](crate::MAX_GROUP_KEY_LEN) bytes, as
/// [`Error::InvalidArgument`].
///
/// ```
/// assert!(jobs_core::validate_group_key("acct-42").is_ok());
/// assert!(jobs_core::validate_group_key("").is_err());
/// ```
pub fn validate_group_key(key: &str) -> Result<(), Error> {
    crate::queue::check_group_key(key).map_err(Error::InvalidArgument)
}

impl FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "critical" => Ok(Priority::Critical),
            _ => Err(Error::InvalidArgument(format!(
                "unknown priority `{s}`: expected one of low, normal, high, critical"
            ))),
        }
    }
}

impl FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidArgument(format!("`{s}` is not a job id: expected QUEUE:ULID"));
        let (queue, ulid) = s.rsplit_once(':').ok_or_else(bad)?;
        // `QUEUE~PARTITION`: a partition other than 0 (written without
        // leading zeros, so each id has one text form).
        let (queue, partition) = match queue.split_once('~') {
            None => (queue, 0),
            Some((q, p)) => match p.parse::<u16>() {
                Ok(n) if n > 0 && !p.starts_with('0') && !p.starts_with('+') => (q, n),
                _ => return Err(bad()),
            },
        };
        validate_queue_name(queue).map_err(|_| bad())?;
        let ulid = Ulid::from_string(ulid).map_err(|_| bad())?;
        Ok(JobId::from_parts(queue, ulid).in_partition(partition))
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ULID: &str = "01JDQ6V5Z3C8T4M9N2K7R1W0XY";

    #[test]
    fn a_partitioned_id_reads_back_with_its_partition() {
        let id: JobId = format!("email~7:{ULID}").parse().unwrap();
        assert_eq!((id.queue(), id.partition()), ("email", 7));
        assert_eq!(id.to_string(), format!("email~7:{ULID}"));
        let plain: JobId = format!("email:{ULID}").parse().unwrap();
        assert_eq!(plain.partition(), 0);
        assert_ne!(plain, id, "the partition is part of the id");
    }

    #[test]
    fn ids_made_in_a_row_grow() {
        let ids: Vec<JobId> = (0..10_000).map(|_| JobId::new("q")).collect();
        assert!(ids.windows(2).all(|w| w[0].ulid() < w[1].ulid()), "within one millisecond too");
    }

    #[test]
    fn a_partition_has_one_text_form() {
        for bad in ["email~0", "email~07", "email~+7", "email~", "email~x", "email~70000", "~3", "em~ail~3"] {
            assert!(format!("{bad}:{ULID}").parse::<JobId>().is_err(), "{bad} was read as a job id's queue");
        }
    }
}
