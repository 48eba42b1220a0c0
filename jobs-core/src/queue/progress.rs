//! A running job's progress as the port stores and reports it, and the
//! checks every backend applies before storing it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::vocab::JobId;

/// The longest progress note stored, in bytes: a longer one is cut at a
/// character boundary.
pub const MAX_PROGRESS_NOTE: usize = 256;

/// The last progress a job reported
/// ([`JobContext::progress`](crate::JobContext::progress)), as stored on the
/// job ([`JobInfo::progress`](crate::JobInfo::progress)).
///
/// It stays when the attempt ends (a dead job shows how far its last attempt
/// got) and goes with the job (purge, retention). A later attempt replaces
/// it when it reports; [`attempt`](Self::attempt) says which attempt wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// How much is done, from 0.0 to 1.0.
    pub fraction: f32,
    /// What the job said it is doing (may be empty); at most
    /// [`MAX_PROGRESS_NOTE`] bytes.
    #[serde(default)]
    pub note: String,
    /// When it was stored, on the backend's clock (millisecond precision).
    pub at: SystemTime,
    /// The attempt that reported it.
    pub attempt: u32,
}

/// One progress write of the worker that holds a job's lease.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    /// The job.
    pub id: JobId,
    /// The lease's fencing token: a write under a token that is no longer
    /// the job's is refused.
    pub token: u64,
    /// How much is done, from 0.0 to 1.0 ([`check_progress`] refuses other
    /// values).
    pub fraction: f32,
    /// The note, at most [`MAX_PROGRESS_NOTE`] bytes ([`bounded_note`]).
    pub note: String,
}

/// A backend's answer to [`JobQueue::report_progress`](crate::JobQueue::report_progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressWrite {
    /// Stored on the job (and recorded as a `progress` event while someone
    /// listens).
    Stored,
    /// Refused: the job does not run under this token any more (its lease
    /// was reclaimed and it was taken again, or it ended, or it is gone).
    Stale,
}

/// Whether `fraction` is a progress fraction: a number from 0.0 to 1.0
/// (NaN and infinities are not).
pub fn valid_fraction(fraction: f32) -> bool {
    (0.0..=1.0).contains(&fraction)
}

/// `note` cut to at most [`MAX_PROGRESS_NOTE`] bytes, on a character
/// boundary.
///
/// ```
/// use jobs_core::backend::{bounded_note, MAX_PROGRESS_NOTE};
/// let note = bounded_note("é".repeat(200));
/// assert!(note.len() <= MAX_PROGRESS_NOTE);
/// assert!(note.chars().all(|c| c == 'é'));
/// ```
pub fn bounded_note(mut note: String) -> String {
    if note.len() > MAX_PROGRESS_NOTE {
        let mut end = MAX_PROGRESS_NOTE;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}

/// The check every backend applies to a progress write before storing it:
/// a fraction from 0.0 to 1.0 and a bounded note
/// ([`Error::InvalidArgument`] otherwise).
pub fn check_progress(update: &ProgressUpdate) -> Result<(), Error> {
    if !valid_fraction(update.fraction) {
        return Err(Error::InvalidArgument(format!(
            "progress of job `{}` must be from 0.0 to 1.0, not {}",
            update.id, update.fraction
        )));
    }
    if update.note.len() > MAX_PROGRESS_NOTE {
        return Err(Error::InvalidArgument(format!(
            "the progress note of job `{}` is {} bytes, over the limit of {MAX_PROGRESS_NOTE}",
            update.id,
            update.note.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        for ok in [0.0, 0.5, 1.0] {
            assert!(valid_fraction(ok), "{ok}");
        }
        for bad in [f32::NAN, -0.01, 1.01, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(!valid_fraction(bad), "{bad}");
        }
    }

    #[test]
    fn a_long_note_is_cut_at_a_char_boundary() {
        let note = bounded_note(format!("a{}", "€".repeat(100)));
        assert!(note.len() <= MAX_PROGRESS_NOTE && note.len() > MAX_PROGRESS_NOTE - 3);
        assert!(note[1..].chars().all(|c| c == '€'));
        assert_eq!(bounded_note("short".into()), "short");
    }

    #[test]
    fn backends_refuse_what_the_context_would_not_send() {
        let mut u = ProgressUpdate { id: JobId::new("q"), token: 1, fraction: 0.5, note: String::new() };
        assert!(check_progress(&u).is_ok());
        u.fraction = f32::NAN;
        assert!(matches!(check_progress(&u), Err(Error::InvalidArgument(_))));
        u.fraction = 1.0;
        u.note = "x".repeat(MAX_PROGRESS_NOTE + 1);
        assert!(matches!(check_progress(&u), Err(Error::InvalidArgument(_))));
    }
}
