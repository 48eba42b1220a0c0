//! How `expires_in` and `#[job(expires = ..)]` become a job's expiry:
//! counted from when the job is due, the option before the attribute,
//! zero and too long refused before anything is written.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::time::{Duration, SystemTime};

use jobs_core::prelude::*;
use jobs_core::{Error, When};

#[job(queue = "expiry_options", expires = "10m")]
async fn remind(user: u64) -> Result<(), JobError> {
    let _ = user;
    Ok(())
}

const MIN: Duration = Duration::from_secs(60);

#[test]
fn the_attribute_is_the_default_and_the_option_wins() {
    assert_eq!(Remind::EXPIRES, Some(10 * MIN));
    let job = Remind { user: 1 }.into_new_job(JobOptions::new()).unwrap();
    assert_eq!(job.expires, Some(When::In(10 * MIN)));
    let job = Remind { user: 1 }.into_new_job(JobOptions::new().expires_in(MIN)).unwrap();
    assert_eq!(job.expires, Some(When::In(MIN)));
}

#[test]
fn the_expiry_counts_from_when_the_job_is_due() {
    let job = Remind { user: 1 }.into_new_job(JobOptions::new().delay(60 * MIN)).unwrap();
    assert_eq!(job.expires, Some(When::In(70 * MIN)), "a delay moves the expiry with it");
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    let job = Remind { user: 1 }.into_new_job(JobOptions::new().scheduled_at(at)).unwrap();
    assert_eq!(job.expires, Some(When::At(at + 10 * MIN)), "and so does a scheduled time");
}

#[tokio::test]
async fn zero_and_too_long_are_refused_and_nothing_is_written() {
    let q = MemoryQueue::new();
    let zero = Remind { user: 1 }.enqueue_with(&q, JobOptions::new().expires_in(Duration::ZERO)).await;
    assert!(matches!(&zero, Err(Error::InvalidArgument(m)) if m.contains("`expires_in` of zero")), "{zero:?}");
    let long = Remind { user: 1 }
        .enqueue_with(&q, JobOptions::new().expires_in(jobs_core::backend::MAX_JOB_DURATION + MIN))
        .await;
    assert!(matches!(&long, Err(Error::InvalidArgument(m)) if m.contains("`expires_in`")), "{long:?}");
    assert!(q.stats().await.unwrap().queues.is_empty());
}
