use jobs_core::prelude::*;

#[job(name = "send mail")]
async fn send(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
