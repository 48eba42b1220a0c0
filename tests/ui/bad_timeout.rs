use jobs_core::prelude::*;

#[job(timeout = "30 seconds please")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

#[job(unique_for = "0s")]
async fn zero(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
