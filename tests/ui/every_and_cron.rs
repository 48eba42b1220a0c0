use jobs_core::prelude::*;

#[job(cron = "0 3 * * *", every = "90s")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
