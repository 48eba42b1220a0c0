use jobs_core::prelude::*;

#[job]
struct Send {
    to: String,
}

fn main() {
    let _ = Send { to: String::new() };
}
