use jobs_core::prelude::*;

#[job]
async fn greet(name: &str, tags: Vec<&str>) -> Result<(), JobError> {
    let _ = (name, tags);
    Ok(())
}

fn main() {}
