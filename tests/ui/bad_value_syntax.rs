use jobs_core::prelude::*;

#[job(queue = email, priority, crate = "jobs_core")]
async fn send(#[validate(email(strict), custom)] to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
