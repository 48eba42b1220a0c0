use jobs_core::prelude::*;

#[job]
async fn reset(#[redact] ctx: JobContext, token: String) -> Result<(), JobError> {
    let _ = (ctx, token);
    Ok(())
}

fn main() {}
