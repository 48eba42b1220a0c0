//! Video jobs through the `ffmpeg` program. Without `ffmpeg` on the machine
//! they fail permanently with a message that says how to install it: no
//! retry can install a program.
//!
//! `ffmpeg` reads the user's file with only the `file` protocol enabled and
//! with the input format named (from the content's detected type), so a
//! crafted file (an HLS playlist, a `concat` list, ...) cannot make it fetch
//! URLs or open other files.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::files::{content_type, read_head};
use crate::env::{relative_path, AppEnv};

/// Why a video job failed.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` is not installed (or not where configured).
    #[error(
        "ffmpeg is not installed: `{program}` cannot be started ({reason}); install it (Debian/Ubuntu: \
         `apt-get install ffmpeg`, macOS: `brew install ffmpeg`) or set app.files.ffmpeg to its path"
    )]
    NoFfmpeg {
        /// The program looked for.
        program: String,
        /// Why it cannot be started (usually: not found).
        reason: String,
    },
    /// The input is not a video.
    #[error("{path}: the content is {detected}, not a video")]
    NotAVideo {
        /// The file.
        path: String,
        /// What it is.
        detected: String,
    },
    /// The input is a video of a type this job does not name to `ffmpeg`.
    #[error("{path}: {detected} videos are not supported (MP4, QuickTime, Matroska, WebM, AVI, FLV, MPEG, WMV are)")]
    Unsupported {
        /// The file.
        path: String,
        /// What it is.
        detected: String,
    },
    /// `ffmpeg` ran and failed.
    #[error("ffmpeg failed ({status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of what it printed.
        stderr: String,
    },
    /// Starting or waiting for `ffmpeg` failed otherwise, or a file could
    /// not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A transcoded video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoOutput {
    /// The file written, relative to the data folder.
    pub output: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The version line of `ffmpeg`, or why it cannot run.
pub async fn ffmpeg_version(program: &str) -> Result<String, VideoError> {
    let out =
        Command::new(program).arg("-version").stdin(Stdio::null()).kill_on_drop(true).output().await.map_err(|e| {
            VideoError::NoFfmpeg {
                program: program.to_owned(),
                reason: if e.kind() == std::io::ErrorKind::NotFound { "not found".into() } else { e.to_string() },
            }
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned())
}

/// Transcodes a video to an MP4 at most `max_width` pixels wide (height
/// follows, even), with the fast-start layout for streaming. Default output:
/// `processed/<name>.mp4`. The `ffmpeg` process is killed when the attempt
/// times out or the job is cancelled.
#[job(queue = "video", retries = 1, timeout = "10m", sandbox)]
pub async fn transcode_video(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(custom = relative_path)] input: String,
    #[validate(range(min = 16, max = 7680))] max_width: u32,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<VideoOutput, JobError> {
    let program = env.settings.app.files.ffmpeg.clone();
    ffmpeg_version(&program).await.map_err(JobError::permanent)?;
    let src = env.resolve(&input)?;
    let input_format = check_video(&src).map_err(JobError::permanent)?;
    let rel = output.unwrap_or_else(|| {
        let stem = Path::new(&input).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        format!("processed/{stem}.mp4")
    });
    let dst = env.resolve(&rel)?;
    if let Some(dir) = dst.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let run = Command::new(&program)
        .args(ffmpeg_args(&src, input_format, &dst, max_width))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::select! {
        out = run => out?,
        () = ctx.cancelled() => return Err(JobError::permanent("cancelled: ffmpeg was stopped")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let err =
            VideoError::Failed { status: out.status, stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | ") };
        // ffmpeg fails on bad input or an unsupported codec: retrying will not help.
        return Err(JobError::permanent(err));
    }
    let bytes = tokio::fs::metadata(&dst).await?.len();
    tracing::info!(input, output = %rel, bytes, "video transcoded");
    Ok(VideoOutput { output: rel, bytes })
}

/// The arguments of the `ffmpeg` run that transcodes `src` (a file of the
/// demuxer `input_format`) to the MP4 `dst`. Input options come before
/// `-i`: only the `file` protocol (no `http`, `tcp`, `concat`, `subfile`,
/// ... that a playlist or a crafted container could name), and the format
/// given, never probed from the content.
pub fn ffmpeg_args(src: &Path, input_format: &str, dst: &Path, max_width: u32) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"].map(OsString::from).into();
    args.extend(["-protocol_whitelist", "file", "-f", input_format, "-i"].map(OsString::from));
    args.push(file_url(src));
    args.extend(
        ["-vf", &format!("scale='min({max_width},iw)':-2"), "-movflags", "+faststart", "-f", "mp4"].map(OsString::from),
    );
    args.push(file_url(dst));
    args
}

/// `file:PATH`: a name that starts with something like `http:` or
/// `concat:` is then still a file name.
fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

/// The `ffmpeg` demuxer for a video type detected by content.
pub fn input_format(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "video/mp4" | "video/x-m4v" | "video/quicktime" => "mov",
        "video/x-matroska" | "video/webm" => "matroska",
        "video/x-msvideo" => "avi",
        "video/x-flv" => "flv",
        "video/mpeg" => "mpeg",
        "video/x-ms-wmv" => "asf",
        _ => return None,
    })
}

/// Checks that `path` holds a video of a supported type; returns the
/// demuxer to read it with.
fn check_video(path: &Path) -> Result<&'static str, VideoError> {
    let head = read_head(path, 8192).map_err(|e| std::io::Error::other(e.to_string()))?;
    let detected = content_type(&head);
    if !detected.starts_with("video/") {
        return Err(VideoError::NotAVideo { path: path.display().to_string(), detected });
    }
    input_format(&detected).ok_or_else(|| VideoError::Unsupported { path: path.display().to_string(), detected })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn ffmpeg_reads_only_files_in_the_format_detected() {
        let args = strings(&ffmpeg_args(Path::new("/data/uploads/clip.mp4"), "mov", Path::new("/data/out.mp4"), 320));
        let input = args.iter().position(|a| a == "-i").expect("an input");
        let before_input = &args[..input];
        let option = |name: &str| before_input.windows(2).find(|w| w[0] == name).map(|w| w[1].as_str());
        assert_eq!(option("-protocol_whitelist"), Some("file"), "{args:?}");
        assert_eq!(option("-f"), Some("mov"), "the input format is named, not probed: {args:?}");
        assert_eq!(args[input + 1], "file:/data/uploads/clip.mp4");
        assert_eq!(args.last().map(String::as_str), Some("file:/data/out.mp4"));
        assert!(args.windows(2).any(|w| w[0] == "-f" && w[1] == "mp4"), "{args:?}");
        assert!(args.contains(&"scale='min(320,iw)':-2".to_owned()), "{args:?}");
    }

    #[test]
    fn input_formats_by_content_type() {
        assert_eq!(input_format("video/mp4"), Some("mov"));
        assert_eq!(input_format("video/webm"), Some("matroska"));
        assert_eq!(input_format("video/x-msvideo"), Some("avi"));
        assert_eq!(input_format("application/vnd.apple.mpegurl"), None);
        assert_eq!(input_format("text/plain"), None);
    }
}
