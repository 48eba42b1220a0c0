use jobs_core::prelude::*;

#[job(queue = "e-mail queue!")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
