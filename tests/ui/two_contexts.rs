use jobs_core::prelude::*;

#[job]
async fn send(ctx: JobContext, to: String, again: jobs_core::JobContext) -> Result<(), JobError> {
    let _ = (ctx, to, again);
    Ok(())
}

fn main() {}
