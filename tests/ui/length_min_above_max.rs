use jobs_core::prelude::*;

#[job]
async fn send(
    #[validate(length(min = 10, max = 2))] code: String,
    #[validate(range(min = 5, max = -5))] offset: i32,
    #[validate(length())] empty: String,
) -> Result<(), JobError> {
    let _ = (code, offset, empty);
    Ok(())
}

fn main() {}
