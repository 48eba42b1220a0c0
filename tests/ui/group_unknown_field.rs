use jobs_core::prelude::*;

#[job(group = acount_id, concurrency = 2)]
async fn sync_account(account_id: u64, full: bool) -> Result<(), JobError> {
    let _ = (account_id, full);
    Ok(())
}

fn main() {}
