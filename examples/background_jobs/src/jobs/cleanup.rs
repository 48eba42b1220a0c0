//! Cleanup jobs: users and sessions in the SQLite database (inactive,
//! unverified and deactivated users; expired and orphaned sessions), scratch
//! and orphaned files by age, log rotation with gzip, and the nightly
//! maintenance that runs them all, declared with `cron` on its attribute.
//!
//! Each job returns what it removed. Every step is safe to run twice: a
//! retried job finds less to do, never something wrong.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::db::{self, Db};
use crate::env::{self, relative_path};

/// Rows a database cleanup removed or changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsReport {
    /// Rows.
    pub rows: u64,
}

/// Runs a database step on the blocking pool with a fresh connection.
async fn with_db<T, F>(f: F) -> Result<T, JobError>
where
    F: FnOnce(&Db, &mut rusqlite::Connection) -> Result<T, db::DbError> + Send + 'static,
    T: Send + 'static,
{
    let env = env::current()?;
    let db = env.db.clone();
    blocking(move || {
        let mut conn = db.open()?;
        Ok(f(&db, &mut conn)?)
    })
    .await
}

/// Deactivates verified users who have not logged in for `inactive_days`
/// days, and ends their sessions.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn deactivate_inactive_users(
    #[validate(range(min = 1, max = 36500))] inactive_days: u32,
) -> Result<RowsReport, JobError> {
    let after = days(inactive_days);
    let rows = with_db(move |db, c| db.deactivate_inactive_users(c, db::now(), after)).await?;
    Ok(RowsReport { rows })
}

/// Deletes users who have not verified their address within `max_age_hours`
/// of signing up.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn delete_unverified_users(
    #[validate(range(min = 1, max = 87600))] max_age_hours: u32,
) -> Result<RowsReport, JobError> {
    let after = Duration::from_secs(u64::from(max_age_hours) * 3600);
    let rows = with_db(move |db, c| db.delete_unverified_users(c, db::now(), after)).await?;
    Ok(RowsReport { rows })
}

/// Deletes users deactivated more than `grace_days` days ago, with their
/// sessions and file rows.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn purge_deleted_users(#[validate(range(max = 36500))] grace_days: u32) -> Result<RowsReport, JobError> {
    let grace = days(grace_days);
    let rows = with_db(move |db, c| db.purge_deleted_users(c, db::now(), grace)).await?;
    Ok(RowsReport { rows })
}

/// Deletes expired sessions.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_expired_sessions() -> Result<RowsReport, JobError> {
    let rows = with_db(|db, c| db.delete_expired_sessions(c, db::now())).await?;
    Ok(RowsReport { rows })
}

/// Deletes sessions whose user is gone or deactivated.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_orphaned_sessions() -> Result<RowsReport, JobError> {
    let rows = with_db(|db, c| db.delete_orphaned_sessions(c)).await?;
    Ok(RowsReport { rows })
}

/// Files a cleanup removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesReport {
    /// Files removed.
    pub removed: u64,
    /// Bytes freed.
    pub bytes: u64,
}

/// Deletes files older than `max_age_secs` under `dir` (a folder of the
/// data folder; subfolders too, and subfolders left empty).
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_temp_files(
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(max = 315_360_000))] max_age_secs: u64,
) -> Result<FilesReport, JobError> {
    let root = env::current()?.resolve(&dir)?;
    let cutoff = SystemTime::now() - Duration::from_secs(max_age_secs);
    blocking(move || Ok(remove_old_files(&root, &root, cutoff, &|_| true)?)).await
}

/// Deletes files under `dir` that no row of the `files` table names (paths
/// relative to `dir`), once they are older than `min_age_secs`.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_orphaned_files(
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(max = 315_360_000))] min_age_secs: u64,
) -> Result<FilesReport, JobError> {
    let env = env::current()?;
    let root = env.resolve(&dir)?;
    let db = env.db.clone();
    let cutoff = SystemTime::now() - Duration::from_secs(min_age_secs);
    blocking(move || {
        let known: HashSet<String> = db.file_paths(&db.open()?)?;
        let orphan = |rel: &str| !known.contains(rel);
        Ok(remove_old_files(&root, &root, cutoff, &orphan)?)
    })
    .await
}

/// Removes files under `dir` modified before `cutoff` for which `select`
/// (given the path relative to `root`, `/`-separated) is true; then removes
/// subfolders left empty.
pub fn remove_old_files(
    root: &Path,
    dir: &Path,
    cutoff: SystemTime,
    select: &dyn Fn(&str) -> bool,
) -> std::io::Result<FilesReport> {
    let mut report = FilesReport::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let sub = remove_old_files(root, &path, cutoff, select)?;
            report.removed += sub.removed;
            report.bytes += sub.bytes;
            // Fails when not empty, which is what we want.
            let _ = std::fs::remove_dir(&path);
        } else if meta.is_file() && meta.modified()? < cutoff {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if select(&rel) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        report.removed += 1;
                        report.bytes += meta.len();
                    }
                    // Gone already (another worker): fine.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(report)
}

/// What a log rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateReport {
    /// Log files rotated.
    pub rotated: Vec<String>,
    /// Old generations deleted (beyond `keep`).
    pub deleted: u64,
    /// Bytes of the rotated logs.
    pub bytes_before: u64,
    /// Bytes of their compressed copies.
    pub bytes_after: u64,
}

/// Rotates every `*.log` file in `dir` that has reached `max_bytes`: its
/// content goes to `NAME.log.1.gz` (older generations move up to `.keep.gz`,
/// and the oldest beyond is deleted), and the file is truncated in place so
/// programs writing it keep their file handle (copy-truncate).
#[job(queue = "maintenance", priority = "low", retries = 3, timeout = "10m")]
pub async fn rotate_logs(
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(min = 1))] max_bytes: u64,
    #[validate(range(min = 1, max = 100))] keep: u32,
) -> Result<RotateReport, JobError> {
    let dir = env::current()?.resolve(&dir)?;
    blocking(move || Ok(rotate_dir(&dir, max_bytes, keep)?)).await
}

/// The rotation of [`rotate_logs`].
pub fn rotate_dir(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<RotateReport> {
    let mut report = RotateReport::default();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    for log in logs {
        let size = std::fs::metadata(&log)?.len();
        if size < max_bytes {
            continue;
        }
        let generation = |n: u32| PathBuf::from(format!("{}.{n}.gz", log.display()));
        for n in (keep..).take_while(|n| generation(*n).exists()) {
            std::fs::remove_file(generation(n))?;
            report.deleted += 1;
        }
        for n in (1..keep).rev() {
            if generation(n).exists() {
                std::fs::rename(generation(n), generation(n + 1))?;
            }
        }
        let target = generation(1);
        let tmp = PathBuf::from(format!("{}.tmp", target.display()));
        let mut gz = GzEncoder::new(std::fs::File::create(&tmp)?, Compression::default());
        std::io::copy(&mut std::fs::File::open(&log)?, &mut gz)?;
        gz.finish()?.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::OpenOptions::new().write(true).truncate(true).open(&log)?;
        report.bytes_before += size;
        report.bytes_after += std::fs::metadata(&target)?.len();
        report.rotated.push(log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    }
    Ok(report)
}

/// What the nightly maintenance did, step by step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceReport {
    /// Users deactivated for inactivity.
    pub deactivated_users: u64,
    /// Unverified users deleted.
    pub unverified_deleted: u64,
    /// Deactivated users purged.
    pub purged_users: u64,
    /// Expired sessions deleted.
    pub expired_sessions: u64,
    /// Orphaned sessions deleted.
    pub orphaned_sessions: u64,
    /// Scratch files deleted.
    pub temp_files: FilesReport,
    /// Orphaned files deleted.
    pub orphaned_files: FilesReport,
    /// Logs rotated.
    pub logs: RotateReport,
}

/// Every cleanup, with the ages of `app.cleanup`, at 03:00 Berlin time. The
/// pool's scheduler enqueues it once per night however many workers run.
#[job(
    queue = "maintenance",
    priority = "low",
    retries = 2,
    timeout = "30m",
    cron = "0 0 3 * * *",
    timezone = "Europe/Berlin"
)]
pub async fn nightly_maintenance() -> Result<MaintenanceReport, JobError> {
    let env = env::current()?;
    let c = env.settings.app.cleanup.clone();
    let paths = env.paths.clone();
    let db = env.db.clone();
    let report = blocking(move || {
        let now = db::now();
        let mut conn = db.open()?;
        let mut r = MaintenanceReport {
            deactivated_users: db.deactivate_inactive_users(&mut conn, now, c.inactive_after)?,
            unverified_deleted: db.delete_unverified_users(&mut conn, now, c.unverified_after)?,
            purged_users: db.purge_deleted_users(&mut conn, now, c.deleted_grace)?,
            expired_sessions: db.delete_expired_sessions(&conn, now)?,
            orphaned_sessions: db.delete_orphaned_sessions(&conn)?,
            ..MaintenanceReport::default()
        };
        let wall = SystemTime::now();
        r.temp_files = remove_old_files(&paths.temp, &paths.temp, wall - c.temp_max_age, &|_| true)?;
        let known = db.file_paths(&conn)?;
        let orphan = |rel: &str| !known.contains(rel);
        r.orphaned_files = remove_old_files(&paths.user_files, &paths.user_files, wall - c.orphan_min_age, &orphan)?;
        r.logs = rotate_dir(&paths.logs, c.log_max_size, c.log_keep)?;
        Ok(r)
    })
    .await?;
    tracing::info!(?report, "nightly maintenance done");
    Ok(report)
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn rotation_shifts_generations_and_compresses() {
        let dir = std::env::temp_dir().join(format!("bj-rotate-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("app.log");
        std::fs::write(&log, "line\n".repeat(1000)).expect("write");
        std::fs::write(dir.join("app.log.1.gz"), b"old1").expect("write");
        std::fs::write(dir.join("app.log.2.gz"), b"old2").expect("write");
        std::fs::write(dir.join("small.log"), b"tiny").expect("write");
        let r = rotate_dir(&dir, 100, 2).expect("rotates");
        assert_eq!(r.rotated, ["app.log"]);
        assert_eq!(r.deleted, 1, "app.log.2.gz was beyond keep = 2");
        assert_eq!(std::fs::read(dir.join("app.log.2.gz")).expect("shifted"), b"old1");
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join("app.log.1.gz")).expect("gz"))
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, "line\n".repeat(1000));
        assert_eq!(std::fs::metadata(&log).expect("kept").len(), 0, "truncated in place");
        assert_eq!(std::fs::read(dir.join("small.log")).expect("small"), b"tiny");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
