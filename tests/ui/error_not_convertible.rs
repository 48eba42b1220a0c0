use jobs_core::prelude::*;

#[job]
async fn export(rows: u64) -> Result<(), i32> {
    if rows == 0 {
        return Err(-1);
    }
    Ok(())
}

fn main() {}
