use jobs_core::prelude::*;

#[job]
async fn send((to, cc): (String, String), _: u32) -> Result<(), JobError> {
    let _ = (to, cc);
    Ok(())
}

fn main() {}
