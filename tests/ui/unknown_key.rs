use jobs_core::prelude::*;

#[job(queue = "email", retry = 3)]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
