//! `jobs`: the operator command line with no job linked.
//!
//! Every command that reads or changes the backend works from this binary.
//! `enqueue` and `worker` need the job types, which only the application's
//! own binary links: expose the command line from it (`jobs_cli::main()`,
//! see the crate docs) so that they know its jobs.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,jobs_core=info".into()),
        )
        .init();
    jobs_cli::main().await
}
