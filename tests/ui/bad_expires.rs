use jobs_core::prelude::*;

#[job(expires = "ten minutes")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

#[job(expires = "0s")]
async fn zero(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

#[job(expires = 600)]
async fn unquoted(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
