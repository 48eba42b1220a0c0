use jobs_core::prelude::*;

#[job(register = "no")]
async fn quoted() -> Result<(), JobError> {
    Ok(())
}

#[job(register)]
async fn without_value() -> Result<(), JobError> {
    Ok(())
}

fn main() {}
