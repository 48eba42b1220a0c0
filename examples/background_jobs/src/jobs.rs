//! The application's jobs.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use jobs_core::prelude::*;
use serde::Serialize;

static OUTBOX: OnceLock<PathBuf> = OnceLock::new();

/// Where mails are written (set once at start).
pub fn set_outbox(dir: PathBuf) {
    let _ = OUTBOX.set(dir);
}

fn outbox() -> Result<&'static PathBuf, JobError> {
    OUTBOX.get().ok_or_else(|| JobError::permanent("the outbox folder is not configured"))
}

/// Renders the welcome mail and delivers it to the file outbox.
#[job(queue = "email", priority = "high", retries = 3, timeout = "30s")]
pub async fn send_welcome_email(
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
) -> Result<(), JobError> {
    let body = format!(
        "From: welcome@example.com\r\nTo: {to}\r\nSubject: Welcome, {username}!\r\n\r\n\
         Hello {username},\r\n\r\nyour account is ready.\r\n"
    );
    let path = outbox()?.join(format!("{}.eml", ctx.job_id().ulid()));
    tokio::fs::write(&path, body).await?;
    tracing::info!(job = %ctx.job_id(), attempt = ctx.attempt(), path = %path.display(), "welcome mail written");
    Ok(())
}

/// What a cleanup removed.
#[derive(Debug, Serialize)]
pub struct CleanupReport {
    /// Files deleted.
    pub removed: u64,
    /// Bytes freed.
    pub bytes: u64,
}

/// Deletes files older than `max_age_secs` in `dir`.
#[job(queue = "maintenance", retries = 1)]
pub async fn cleanup_temp_files(
    #[validate(non_empty)] dir: String,
    #[validate(range(max = 31_536_000))] max_age_secs: u64,
) -> Result<CleanupReport, JobError> {
    let cutoff = SystemTime::now() - Duration::from_secs(max_age_secs);
    let mut report = CleanupReport { removed: 0, bytes: 0 };
    let mut entries = tokio::fs::read_dir(&dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let meta = e.metadata().await?;
        if meta.is_file() && meta.modified()? <= cutoff {
            tokio::fs::remove_file(e.path()).await?;
            report.removed += 1;
            report.bytes += meta.len();
        }
    }
    Ok(report)
}
