use jobs_core::prelude::*;

#[job]
async fn send(#[validate(non_empty)] ctx: JobContext, to: String) -> Result<(), JobError> {
    let _ = (ctx, to);
    Ok(())
}

fn main() {}
