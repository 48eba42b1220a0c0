use jobs_core::prelude::*;

#[job]
async fn store<T: serde::Serialize>(value: T) -> Result<(), JobError> {
    let _ = value;
    Ok(())
}

fn main() {}
