use jobs_core::prelude::*;

#[job(retries = 1000)]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

#[job(retries = -1)]
async fn negative(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
