use jobs_core::prelude::*;

#[job]
async fn greet<'a>(name: &'a str) -> Result<(), JobError> {
    let _ = name;
    Ok(())
}

fn main() {}
