use jobs_core::prelude::*;

#[job]
fn send_report(to: String) -> Result<(), JobError> {
    let _ = to;
    Ok(())
}

fn main() {}
