use jobs_core::prelude::*;

#[job]
async fn send(#[validate(pattern = "^[a-z+$")] code: String) -> Result<(), JobError> {
    let _ = code;
    Ok(())
}

fn main() {}
