use jobs_core::prelude::*;

#[job(retries = "3")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
