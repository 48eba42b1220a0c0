//! The application's jobs, one module per kind. Each `#[job]` function is a
//! thin shell: it reads the [`crate::env`] it runs in, calls plain functions
//! that do the work, and sorts their errors into retryable and permanent.

pub mod cleanup;
pub mod email;
pub mod extract;
pub mod files;
pub mod notify;
pub mod video;

use jobs_core::JobError;

/// Runs blocking work (image codecs, SQLite, gzip) on tokio's blocking pool.
/// A panic inside is a failed attempt, like a panic in the job itself.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, JobError>
where
    F: FnOnce() -> Result<T, JobError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| JobError::retryable(format!("the blocking task failed: {e}")))?
}

/// Sorts an error that knows whether it is permanent.
pub(crate) fn classify<E>(e: E, permanent: bool) -> JobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if permanent {
        JobError::permanent(e)
    } else {
        JobError::retryable(e)
    }
}
