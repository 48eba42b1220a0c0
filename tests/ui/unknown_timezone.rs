use jobs_core::prelude::*;

#[job(cron = "0 0 3 * * *", timezone = "Europe/Berlln")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
