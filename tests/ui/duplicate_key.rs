use jobs_core::prelude::*;

#[job(queue = "email", retries = 3, queue = "urgent")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
