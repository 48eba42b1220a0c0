use jobs_core::prelude::*;

#[job]
async fn send(#[validate(range(min = 1, max = 10))] count: String) -> Result<(), JobError> {
    let _ = count;
    Ok(())
}

fn main() {}
