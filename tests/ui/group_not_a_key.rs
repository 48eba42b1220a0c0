use jobs_core::prelude::*;

#[job(group = ratio, concurrency = 2)]
async fn rebalance(ratio: f64) -> Result<(), JobError> {
    let _ = ratio;
    Ok(())
}

fn main() {}
