//! Cleanup jobs: users and sessions in the SQLite database (inactive,
//! unverified and deactivated users; expired and orphaned sessions), scratch
//! and orphaned files by age, log rotation with gzip, and the nightly
//! maintenance that runs them all, declared with `cron` on its attribute.
//!
//! Each job returns what it removed. Every step is safe to run twice: a
//! retried job finds less to do, never something wrong.
//!
//! A job that names a folder works only inside the area the configuration
//! gives it (`app.cleanup.temp_dir`, `user_files_dir`, `log_dir`), checked
//! on the real paths (symlinks resolved): `.`, the data folder, a sibling
//! folder or a symlink out of the area is refused, permanently. Inside the
//! area, symlinks are never followed: a cleanup skips them, and log rotation
//! skips a symlinked log with a warning.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::db::{self, Db};
use crate::env::{relative_path, AppEnv};

/// Why a cleanup job refused the folder its payload names.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The folder is not inside the area this job may clean.
    #[error("`{dir}` is not inside `{area}` ({key}): this job works only there; name that folder or one inside it")]
    Outside {
        /// The folder the payload names.
        dir: String,
        /// The area, relative to the data folder.
        area: String,
        /// The configuration key of the area.
        key: &'static str,
    },
    /// The folder is inside the area by name but a symlink leads out of it.
    #[error("`{dir}` leads to {real} through a symlink, outside `{area}` ({key}): refused")]
    Escapes {
        /// The folder the payload names.
        dir: String,
        /// Where it really is.
        real: String,
        /// The area, relative to the data folder.
        area: String,
        /// The configuration key of the area.
        key: &'static str,
    },
    /// A path could not be resolved.
    #[error("cannot resolve {path}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The real path of the folder `dir` (relative to the data folder) when it
/// is `area` or inside it; `None` when it does not exist (nothing to clean).
/// Errors are permanent: no retry moves a folder into the area.
pub fn area_folder(env: &AppEnv, dir: &str, area: &Path, key: &'static str) -> Result<Option<PathBuf>, JobError> {
    let requested = env.resolve(dir)?;
    let area_rel = env.display(area);
    if !requested.starts_with(area) {
        return Err(JobError::permanent(AreaError::Outside { dir: dir.to_owned(), area: area_rel, key }));
    }
    let real =
        |p: &Path| std::fs::canonicalize(p).map_err(|source| AreaError::Io { path: p.display().to_string(), source });
    // A missing folder (the area's, or one inside it) has nothing to clean.
    let area_real = match real(area) {
        Ok(p) => p,
        Err(AreaError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JobError::permanent(e)),
    };
    let data_real = real(&env.paths.data_dir).map_err(JobError::permanent)?;
    let dir_real = match std::fs::canonicalize(&requested) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JobError::permanent(AreaError::Io { path: requested.display().to_string(), source }))
        }
    };
    // Inside the area, and never the data folder or a folder that holds it
    // (an area configured as a symlink to one of them).
    if !dir_real.starts_with(&area_real) || data_real.starts_with(&dir_real) {
        return Err(JobError::permanent(AreaError::Escapes {
            dir: dir.to_owned(),
            real: dir_real.display().to_string(),
            area: area_rel,
            key,
        }));
    }
    Ok(Some(dir_real))
}

/// Rows a database cleanup removed or changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsReport {
    /// Rows.
    pub rows: u64,
}

/// Runs a database step on the blocking pool with a fresh connection.
async fn with_db<T, F>(db: Data<Db>, f: F) -> Result<T, JobError>
where
    F: FnOnce(&Db, &mut rusqlite::Connection) -> Result<T, db::DbError> + Send + 'static,
    T: Send + 'static,
{
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
    db: Data<Db>,
    #[validate(range(min = 1, max = 36500))] inactive_days: u32,
) -> Result<RowsReport, JobError> {
    let after = days(inactive_days);
    let rows = with_db(db, move |db, c| db.deactivate_inactive_users(c, db::now(), after)).await?;
    Ok(RowsReport { rows })
}

/// Deletes users who have not verified their address within `max_age_hours`
/// of signing up.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn delete_unverified_users(
    db: Data<Db>,
    #[validate(range(min = 1, max = 87600))] max_age_hours: u32,
) -> Result<RowsReport, JobError> {
    let after = Duration::from_secs(u64::from(max_age_hours) * 3600);
    let rows = with_db(db, move |db, c| db.delete_unverified_users(c, db::now(), after)).await?;
    Ok(RowsReport { rows })
}

/// Deletes users deactivated more than `grace_days` days ago, with their
/// sessions and file rows.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn purge_deleted_users(
    db: Data<Db>,
    #[validate(range(max = 36500))] grace_days: u32,
) -> Result<RowsReport, JobError> {
    let grace = days(grace_days);
    let rows = with_db(db, move |db, c| db.purge_deleted_users(c, db::now(), grace)).await?;
    Ok(RowsReport { rows })
}

/// Deletes expired sessions.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_expired_sessions(db: Data<Db>) -> Result<RowsReport, JobError> {
    let rows = with_db(db, |db, c| db.delete_expired_sessions(c, db::now())).await?;
    Ok(RowsReport { rows })
}

/// Deletes sessions whose user is gone or deactivated.
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_orphaned_sessions(db: Data<Db>) -> Result<RowsReport, JobError> {
    let rows = with_db(db, |db, c| db.delete_orphaned_sessions(c)).await?;
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

/// Deletes files older than `max_age_secs` under `dir` (the scratch folder
/// `app.cleanup.temp_dir` or a folder inside it; subfolders too, and
/// subfolders left empty). Any other folder is refused ([`area_folder`]).
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_temp_files(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(max = 315_360_000))] max_age_secs: u64,
) -> Result<FilesReport, JobError> {
    let Some(root) = area_folder(&env, &dir, &env.paths.temp, "app.cleanup.temp_dir")? else {
        return Ok(FilesReport::default());
    };
    let cutoff = SystemTime::now() - Duration::from_secs(max_age_secs);
    blocking(move || Ok(remove_old_files(&root, &root, cutoff, &|_| true)?)).await
}

/// Deletes files under `dir` (the user files folder
/// `app.cleanup.user_files_dir` or a folder inside it) that no row of the
/// `files` table names (paths relative to `dir`), once they are older than
/// `min_age_secs`. Any other folder is refused ([`area_folder`]).
#[job(queue = "maintenance", priority = "low", retries = 3)]
pub async fn cleanup_orphaned_files(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(max = 315_360_000))] min_age_secs: u64,
) -> Result<FilesReport, JobError> {
    let Some(root) = area_folder(&env, &dir, &env.paths.user_files, "app.cleanup.user_files_dir")? else {
        return Ok(FilesReport::default());
    };
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
/// subfolders left empty. Symlinks are neither followed nor removed.
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
        // The entry's own metadata (lstat): a symlink is neither a file nor
        // a folder here, so it is left alone.
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
    /// `*.log` entries left alone because they are symlinks (or stopped
    /// being regular files while being opened).
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// Rotates every `*.log` file in `dir` (the log folder `app.cleanup.log_dir`
/// or a folder inside it) that has reached `max_bytes`: its content goes to
/// `NAME.log.1.gz` (older generations move up to `.keep.gz`, and the oldest
/// beyond is deleted), and the file is truncated in place so programs
/// writing it keep their file handle (copy-truncate). Symlinked logs are
/// skipped with a warning.
#[job(queue = "maintenance", priority = "low", retries = 3, timeout = "10m")]
pub async fn rotate_logs(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] dir: String,
    #[validate(range(min = 1))] max_bytes: u64,
    #[validate(range(min = 1, max = 100))] keep: u32,
) -> Result<RotateReport, JobError> {
    let Some(dir) = area_folder(&env, &dir, &env.paths.logs, "app.cleanup.log_dir")? else {
        return Ok(RotateReport::default());
    };
    blocking(move || Ok(rotate_dir(&dir, max_bytes, keep)?)).await
}

/// The rotation of [`rotate_logs`]. Never follows a symlink: a symlinked
/// `*.log` is skipped (and listed in [`RotateReport::skipped`]), old
/// generations that are symlinks are moved or removed as links, and the
/// compressed copy is written to a file created new.
pub fn rotate_dir(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<RotateReport> {
    let mut report = RotateReport::default();
    let mut logs: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        // The entry's own type (lstat), not its target's.
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            tracing::warn!(file = %path.display(), "not rotating a symlinked log file: rotation never follows symlinks");
            report.skipped.push(file_name(&path));
        } else if kind.is_file() {
            logs.push(path);
        }
    }
    logs.sort();
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    for log in logs {
        let Some(mut file) = open_regular(&log)? else {
            tracing::warn!(file = %log.display(), "not rotating a log file replaced while being opened");
            report.skipped.push(file_name(&log));
            continue;
        };
        let size = file.metadata()?.len();
        if size < max_bytes {
            continue;
        }
        let generation = |n: u32| PathBuf::from(format!("{}.{n}.gz", log.display()));
        for n in (keep..).take_while(|n| exists(&generation(*n))) {
            std::fs::remove_file(generation(n))?;
            report.deleted += 1;
        }
        for n in (1..keep).rev() {
            if exists(&generation(n)) {
                std::fs::rename(generation(n), generation(n + 1))?;
            }
        }
        let target = generation(1);
        let tmp = PathBuf::from(format!("{}.tmp", target.display()));
        // A leftover (or planted symlink) is removed as a link, and the copy
        // goes to a file created new, so nothing outside is written.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let out = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut gz = GzEncoder::new(out, Compression::default());
        std::io::copy(&mut file, &mut gz)?;
        gz.finish()?.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // Through the handle that was checked, not by name again.
        file.set_len(0)?;
        report.bytes_before += size;
        report.bytes_after += std::fs::metadata(&target)?.len();
        report.rotated.push(file_name(&log));
    }
    Ok(report)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Opens `path` for reading and writing if it is a regular file and not a
/// symlink, with the effect of `O_NOFOLLOW`: its own metadata (lstat) is
/// checked first, and the file opened must be that same file (device and
/// inode), so a symlink swapped in between is caught. `None` when it is not.
fn open_regular(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let before = std::fs::symlink_metadata(path)?;
    if !before.file_type().is_file() {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let after = file.metadata()?;
        if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
            return Ok(None);
        }
    }
    Ok(Some(file))
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
pub async fn nightly_maintenance(env: Data<AppEnv>) -> Result<MaintenanceReport, JobError> {
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

    #[cfg(unix)]
    #[test]
    fn rotation_never_follows_symlinks() {
        let base = std::env::temp_dir().join(format!("bj-rotate-links-{}", ulid::Ulid::new()));
        let (logs, outside) = (base.join("logs"), base.join("outside"));
        std::fs::create_dir_all(&logs).expect("dir");
        std::fs::create_dir_all(&outside).expect("dir");
        let secret = "not a log: must stay as it is\n".repeat(100);
        std::fs::write(outside.join("secret.txt"), &secret).expect("write");
        std::fs::write(outside.join("victim"), b"untouched").expect("write");
        std::os::unix::fs::symlink(outside.join("secret.txt"), logs.join("linked.log")).expect("symlink");
        std::fs::write(logs.join("app.log"), "line\n".repeat(1000)).expect("write");
        // A planted link where the compressed copy is first written.
        std::os::unix::fs::symlink(outside.join("victim"), logs.join("app.log.1.gz.tmp")).expect("symlink");

        let r = rotate_dir(&logs, 100, 3).expect("rotates");
        assert_eq!(r.rotated, ["app.log"]);
        assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).expect("kept"), secret, "not truncated");
        assert_eq!(std::fs::read(outside.join("victim")).expect("kept"), b"untouched", "not written through");
        assert!(!logs.join("linked.log.1.gz").exists(), "no copy of the target either");
        assert!(std::fs::symlink_metadata(logs.join("linked.log")).expect("the link").file_type().is_symlink());
        assert_eq!(r.skipped, ["linked.log"]);
        let _ = std::fs::remove_dir_all(&base);
    }
}
