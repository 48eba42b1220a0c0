use jobs_core::prelude::*;

#[job]
async fn resize(#[validate(length(max = 4096))] width: u32) -> Result<(), JobError> {
    let _ = width;
    Ok(())
}

fn main() {}
