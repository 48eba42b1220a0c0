use jobs_core::prelude::*;

#[job(group = account_id, concurrency = 0)]
async fn zero(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(group = account_id, concurrency = "2")]
async fn quoted(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(concurrency = 2)]
async fn no_group(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(group = "account_id")]
async fn quoted_group(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(group = ctx)]
async fn context_group(ctx: JobContext, account_id: u64) -> Result<(), JobError> {
    let _ = (ctx, account_id);
    Ok(())
}

fn main() {}
