use jobs_core::prelude::*;

#[derive(Debug, Clone)]
struct Connection;

#[job]
async fn send(conn: Connection) -> Result<(), JobError> {
    let _ = conn;
    Ok(())
}

fn main() {}
