use jobs_core::prelude::*;

/// Has a message but implements neither `Display` nor `std::error::Error`.
#[derive(Debug)]
struct ExportFailed {
    reason: String,
}

#[job]
async fn export(rows: u64) -> Result<(), ExportFailed> {
    if rows == 0 {
        return Err(ExportFailed { reason: "no rows".into() });
    }
    Ok(())
}

fn main() {}
