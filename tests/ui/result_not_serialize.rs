use jobs_core::prelude::*;

struct Report {
    rows: u64,
}

#[job]
async fn export(rows: u64) -> Result<Report, JobError> {
    Ok(Report { rows })
}

fn main() {}
