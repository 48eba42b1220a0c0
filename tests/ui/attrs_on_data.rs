use jobs_core::prelude::*;

struct Mailer;

#[job]
async fn send(#[validate(non_empty)] #[redact] mailer: Data<Mailer>, to: String) -> Result<(), JobError> {
    let _ = (mailer, to);
    Ok(())
}

fn main() {}
