use jobs_core::prelude::*;

#[job(cron = "0 0 25 * * *")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

#[job(cron = "every day")]
async fn daily() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
