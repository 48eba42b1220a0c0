use jobs_core::prelude::*;

#[job(timezone = "Europe/Berlin")]
async fn nightly() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
