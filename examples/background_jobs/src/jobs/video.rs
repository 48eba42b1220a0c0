//! Video jobs through the `ffmpeg` program. Without `ffmpeg` on the machine
//! they fail permanently with a message that says how to install it: no
//! retry can install a program.

use std::path::Path;
use std::process::Stdio;

use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::files::{content_type, read_head};
use crate::env::{self, relative_path};

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
#[job(queue = "video", retries = 1, timeout = "10m")]
pub async fn transcode_video(
    ctx: JobContext,
    #[validate(custom = relative_path)] input: String,
    #[validate(range(min = 16, max = 7680))] max_width: u32,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<VideoOutput, JobError> {
    let env = env::current()?;
    let program = env.settings.app.files.ffmpeg.clone();
    ffmpeg_version(&program).await.map_err(JobError::permanent)?;
    let src = env.resolve(&input)?;
    check_video(&src).map_err(JobError::permanent)?;
    let rel = output.unwrap_or_else(|| {
        let stem = Path::new(&input).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        format!("processed/{stem}.mp4")
    });
    let dst = env.resolve(&rel)?;
    if let Some(dir) = dst.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let run = Command::new(&program)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(&src)
        .args(["-vf", &format!("scale='min({max_width},iw)':-2"), "-movflags", "+faststart"])
        .arg(&dst)
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

fn check_video(path: &Path) -> Result<(), VideoError> {
    let head = read_head(path, 8192).map_err(|e| std::io::Error::other(e.to_string()))?;
    let detected = content_type(&head);
    if detected.starts_with("video/") {
        Ok(())
    } else {
        Err(VideoError::NotAVideo { path: path.display().to_string(), detected })
    }
}
