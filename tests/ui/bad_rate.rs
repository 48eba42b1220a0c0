use jobs_core::prelude::*;

#[job(group = account_id, rate = "fast")]
async fn no_slash(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(group = account_id, rate = "0/1s")]
async fn zero(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(group = account_id, rate = "10/soon")]
async fn bad_period(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

#[job(rate = "10/1s")]
async fn no_group(account_id: u64) -> Result<(), JobError> {
    let _ = account_id;
    Ok(())
}

fn main() {}
