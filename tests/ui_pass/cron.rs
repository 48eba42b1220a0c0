//! `cron` and `timezone` on a job without payload.
use jobs_core::prelude::*;

#[job(cron = "0 0 3 * * *", timezone = "Europe/Berlin", queue = "maintenance")]
async fn nightly_cleanup(ctx: JobContext) -> Result<(), JobError> {
    assert_eq!(ctx.attempt(), 1);
    Ok(())
}

#[job(cron = "*/5 * * * *")]
async fn every_five_minutes() -> Result<(), JobError> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let d = jobs_core::backend::descriptors().find(|d| d.name == "nightly_cleanup").expect("registered");
    let cron = d.cron.expect("a schedule");
    assert_eq!(cron.expression, "0 0 3 * * *");
    assert_eq!(cron.timezone, "Europe/Berlin");
    assert_eq!(d.queue, "maintenance");

    let d = jobs_core::backend::descriptors().find(|d| d.name == "every_five_minutes").expect("registered");
    let spec = jobs_core::backend::CronSpec { expression: "*/5 * * * *", timezone: "UTC", every: None };
    assert_eq!(d.cron, Some(spec));

    // A payload-less job: the struct has no fields and `{}` is its payload.
    let _ = NightlyCleanup::new();
    assert_eq!(serde_json::to_string(&EveryFiveMinutes {}).unwrap(), "{}");
    (d.run)(JobContext::for_test("every_five_minutes"), jobs_core::backend::PayloadFormat::Json, b"{}").await.unwrap();
    nightly_cleanup(JobContext::for_test("nightly_cleanup")).await.unwrap();
}
