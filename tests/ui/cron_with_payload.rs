use jobs_core::prelude::*;

#[job(cron = "0 0 3 * * *")]
async fn nightly(ctx: JobContext, region: String) -> Result<(), JobError> {
    let _ = (ctx, region);
    Ok(())
}

fn main() {}
