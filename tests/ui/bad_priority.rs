use jobs_core::prelude::*;

#[job(priority = "urgent")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
