use jobs_core::prelude::*;

#[job(sandbox = true)]
async fn with_value() -> Result<(), JobError> {
    Ok(())
}

#[job(sandbox(memory = "1GiB"))]
async fn with_settings() -> Result<(), JobError> {
    Ok(())
}

#[job(sandbox, sandbox)]
async fn twice() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
