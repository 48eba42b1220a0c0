use jobs_core::prelude::*;

#[job(cron = "0 0 3 * * *", expires = "1h")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
