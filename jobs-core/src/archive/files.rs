//! The layout of a JSON-lines archive: `DIR/QUEUE/YYYY-MM-DD.N.jsonl`, one
//! folder per queue, files named by the (UTC) day their entries were
//! archived and a number that grows when a day's file reaches its size.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::sink::ArchiveError;

/// One file of a queue's archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ArchiveFile {
    /// Its day, `YYYY-MM-DD` (sorts as the days do).
    pub(crate) day: String,
    /// Its number within the day, from 0.
    pub(crate) n: u32,
    /// Its path.
    pub(crate) path: PathBuf,
}

/// The UTC day of `t`, `YYYY-MM-DD`.
pub(crate) fn day_of(t: SystemTime) -> String {
    let mut s = humantime::format_rfc3339_seconds(t).to_string();
    s.truncate(10);
    s
}

/// The path of a queue's file of `day` and number `n`.
pub(crate) fn file_path(queue_dir: &Path, day: &str, n: u32) -> PathBuf {
    queue_dir.join(format!("{day}.{n}.jsonl"))
}

/// Reads a file name back (`None`: not an archive file).
fn parse_name(name: &str) -> Option<(String, u32)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (day, n) = stem.rsplit_once('.')?;
    let ok = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !ok {
        return None;
    }
    Some((day.to_owned(), n.parse().ok()?))
}

/// The entries of a folder (none when it does not exist).
fn entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, ArchiveError> {
    match std::fs::read_dir(dir) {
        Ok(all) => all.collect::<Result<_, _>>().map_err(ArchiveError::io(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ArchiveError::io(dir)(e)),
    }
}

/// The archive files of a queue's folder, oldest first (none when the
/// folder does not exist).
pub(crate) fn list(queue_dir: &Path) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let mut files = Vec::new();
    for entry in entries(queue_dir)? {
        let name = entry.file_name();
        if let Some((day, n)) = name.to_str().and_then(parse_name) {
            files.push(ArchiveFile { day, n, path: entry.path() });
        }
    }
    files.sort();
    Ok(files)
}

/// The queue folders of an archive, by name (none when `dir` does not
/// exist).
pub(crate) fn queues(dir: &Path) -> Result<Vec<String>, ArchiveError> {
    let mut names = Vec::new();
    for entry in entries(dir)? {
        let is_dir = entry.file_type().map_err(ArchiveError::io(entry.path()))?.is_dir();
        if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
            if crate::parse::validate_queue_name(name).is_ok() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        assert_eq!(parse_name("2026-12-05.3.jsonl"), Some(("2026-12-05".into(), 3)));
        assert_eq!(parse_name("2026-12-05.jsonl"), None);
        assert_eq!(parse_name("notes.0.jsonl"), None);
        assert_eq!(parse_name("2026-12-05.x.jsonl"), None);
        assert_eq!(day_of(SystemTime::UNIX_EPOCH), "1970-01-01");
    }
}
