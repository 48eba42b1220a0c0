use jobs_core::prelude::*;

#[job]
async fn reset(#[redact] #[redact] token: String) -> Result<(), JobError> {
    let _ = token;
    Ok(())
}

fn main() {}
