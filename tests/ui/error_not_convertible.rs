use jobs_core::prelude::*;

#[job]
async fn export(rows: u64) -> Result<(), String> {
    if rows == 0 {
        return Err("no rows".to_owned());
    }
    Ok(())
}

fn main() {}
