use jobs_core::prelude::*;

#[job]
async fn send(to: String) -> bool {
    to.is_empty()
}

#[job]
async fn missing(to: String) {
    let _ = to;
}

fn main() {}
