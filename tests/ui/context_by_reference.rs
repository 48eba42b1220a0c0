use jobs_core::prelude::*;

#[job]
async fn send(ctx: &JobContext, to: String) -> Result<(), JobError> {
    let _ = (ctx, to);
    Ok(())
}

fn main() {}
