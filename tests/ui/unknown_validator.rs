use jobs_core::prelude::*;

#[job]
async fn send(#[validate(emial)] to: String, #[validate(lenght(max = 3))] name: String) -> Result<(), JobError> {
    let _ = (to, name);
    Ok(())
}

fn main() {}
