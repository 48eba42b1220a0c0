use jobs_core::prelude::*;

#[job(every = "soon")]
async fn not_a_duration() -> Result<(), JobError> {
    Ok(())
}

#[job(every = "500ms")]
async fn too_short() -> Result<(), JobError> {
    Ok(())
}

#[job(every = "1m", expires = "30s")]
async fn expiring(account: u64) -> Result<(), JobError> {
    let _ = account;
    Ok(())
}

fn main() {}
