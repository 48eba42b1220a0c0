use jobs_core::prelude::*;

#[job]
async fn send(#[validate(email)] to: Option<u64>) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
