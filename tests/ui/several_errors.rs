use jobs_core::prelude::*;

// Every mistake is reported at once, and the function is still emitted:
// `main` below type-checks against it.
#[job(queue = "", priority = "highest", timeout = "soon", retires = 2)]
fn send<T>(ctx: JobContext, #[validate(email, lenght(max = 3))] to: String, value: T) -> Result<(), JobError> {
    let _ = (ctx, to, value);
    Ok(())
}

fn main() {
    let _ = send::<u8>;
}
