use jobs_core::prelude::*;

struct Mailer;

impl Mailer {
    #[job]
    async fn send(&self, to: String) -> Result<(), JobError> {
        let _ = to;
        Ok(())
    }
}

fn main() {}
