use std::error::Error;

use jobs_core::prelude::*;

async fn pause() {}

// The error is kept across an `.await`: the job's future is not `Send`.
#[job]
async fn export(rows: u64) -> Result<(), Box<dyn Error>> {
    let first: Result<(), Box<dyn Error>> = if rows == 0 { Err("no rows".into()) } else { Ok(()) };
    pause().await;
    first
}

fn main() {}
