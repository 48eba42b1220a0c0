//! `every` (an interval instead of `cron`) on a job without payload.
use std::time::Duration;

use jobs_core::prelude::*;

#[job(every = "1m 30s", timezone = "Europe/Berlin", queue = "sync")]
async fn sync_prices() -> Result<(), JobError> {
    Ok(())
}

fn main() {
    let d = jobs_core::backend::descriptors().find(|d| d.name == "sync_prices").expect("registered");
    let spec = jobs_core::backend::CronSpec {
        expression: "",
        timezone: "Europe/Berlin",
        every: Some(Duration::from_secs(90)),
    };
    assert_eq!(d.cron, Some(spec));
    assert_eq!(d.queue, "sync");
}
