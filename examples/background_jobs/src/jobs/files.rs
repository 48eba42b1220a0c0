//! File jobs: image resize, optimisation and format conversion with the
//! `image` crate (PNG, JPEG, GIF, WebP), and batch processing of a folder
//! that validates every file — size, and type by content, never by name —
//! before it enqueues one job per good file.
//!
//! Paths in payloads are relative to the data folder. A file that is missing,
//! too large, of the wrong type or undecodable fails permanently (no retry
//! changes a file); an I/O error while writing is retried.

use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use jobs_core::prelude::*;
use jobs_core::JobQueue;
use serde::{Deserialize, Serialize};

use super::extract::{detect_document, ExtractText};
use super::{blocking, classify};
use crate::env::{relative_path, AppEnv};

/// What can go wrong with a file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Larger than allowed.
    #[error("{path}: {size} bytes is more than the limit of {max} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The content is not of a type this job takes.
    #[error("{path}: the content is {detected}, not {expected}")]
    WrongType {
        /// The file.
        path: String,
        /// What the content is.
        detected: String,
        /// What the job takes.
        expected: &'static str,
    },
    /// The image does not decode.
    #[error("{path}: cannot decode the image")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: image::ImageError,
    },
    /// The image does not encode in the asked format.
    #[error("{path}: cannot encode the image")]
    Encode {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: image::ImageError,
    },
    /// An output format this build cannot write.
    #[error("{0}: unsupported output format; use .png, .jpg, .gif or .webp")]
    Format(String),
}

impl FileError {
    /// Whether no retry can help: everything but an I/O error other than
    /// "not found" and "permission denied".
    pub fn is_permanent(&self) -> bool {
        match self {
            FileError::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
            }
            _ => true,
        }
    }

    fn into_job_error(self) -> JobError {
        let permanent = self.is_permanent();
        classify(self, permanent)
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io { path: path.display().to_string(), source }
}

/// The image types the file jobs take, by MIME type.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The type of content by its first bytes: a MIME type, `text/plain` for
/// UTF-8 text, or `unknown binary data`.
pub fn content_type(head: &[u8]) -> String {
    if let Some(kind) = detect_document(head) {
        return kind.mime().to_owned();
    }
    infer::get(head).map(|t| t.mime_type().to_owned()).unwrap_or_else(|| "unknown binary data".into())
}

/// Reads the first `n` bytes of a file (fewer if it is shorter).
pub fn read_head(path: &Path, n: u64) -> Result<Vec<u8>, FileError> {
    let mut head = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(n).read_to_end(&mut head)).map_err(io(path))?;
    Ok(head)
}

/// Checks a file's size and that its content is an image; returns its size.
pub fn check_image(path: &Path, max_size: u64) -> Result<u64, FileError> {
    let size = std::fs::metadata(path).map_err(io(path))?.len();
    if size > max_size {
        return Err(FileError::TooLarge { path: path.display().to_string(), size, max: max_size });
    }
    let detected = content_type(&read_head(path, 8192)?);
    if !IMAGE_TYPES.contains(&detected.as_str()) {
        return Err(FileError::WrongType {
            path: path.display().to_string(),
            detected,
            expected: "a PNG, JPEG, GIF or WebP image",
        });
    }
    Ok(size)
}

/// Loads an image after [`check_image`], decoding by content.
pub fn load_image(path: &Path, max_size: u64) -> Result<(DynamicImage, ImageFormat), FileError> {
    check_image(path, max_size)?;
    let bytes = std::fs::read(path).map_err(io(path))?;
    let decode = |source| FileError::Decode { path: path.display().to_string(), source };
    let format = image::guess_format(&bytes).map_err(decode)?;
    let img = image::load_from_memory_with_format(&bytes, format).map_err(decode)?;
    Ok((img, format))
}

/// The format an output path asks for, by its extension.
pub fn output_format(path: &Path) -> Result<ImageFormat, FileError> {
    match ImageFormat::from_path(path) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)) => Ok(f),
        _ => Err(FileError::Format(path.display().to_string())),
    }
}

/// Writes `img` to `path` as `format` (JPEG at `quality`, PNG at the best
/// compression), through a temporary file renamed into place, so readers
/// never see half an image. Returns the file's size.
pub fn save_image(img: &DynamicImage, path: &Path, format: ImageFormat, quality: u8) -> Result<u64, FileError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", ulid::Ulid::new()));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = BufWriter::new(file);
    let encode = |source| FileError::Encode { path: path.display().to_string(), source };
    let written = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(img.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut w, quality.clamp(1, 100)))
            .map_err(encode),
        ImageFormat::Png => img
            .write_with_encoder(PngEncoder::new_with_quality(&mut w, CompressionType::Best, PngFilter::Adaptive))
            .map_err(encode),
        ImageFormat::Gif | ImageFormat::WebP => {
            let mut buf = std::io::Cursor::new(Vec::new());
            DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut buf, format).map_err(encode)?;
            std::io::Write::write_all(&mut w, buf.get_ref()).map_err(io(&tmp))
        }
        _ => Err(FileError::Format(path.display().to_string())),
    };
    let flushed = written.and_then(|()| std::io::Write::flush(&mut w).map_err(io(&tmp)));
    drop(w);
    if let Err(e) = flushed.and_then(|()| std::fs::rename(&tmp, path).map_err(io(path))) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(std::fs::metadata(path).map_err(io(path))?.len())
}

/// An image a job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOutput {
    /// The file, relative to the data folder.
    pub output: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `processed/<stem><suffix>.<ext>` for an input path.
fn default_output(input: &str, suffix: &str, ext: &str) -> String {
    let stem = Path::new(input).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    format!("processed/{stem}{suffix}.{ext}")
}

fn ext_of(format: ImageFormat) -> &'static str {
    format.extensions_str().first().copied().unwrap_or("png")
}

/// Resizes an image to fit within `max_width` x `max_height`, keeping its
/// aspect ratio (never enlarging). The output's extension picks its format;
/// default `processed/<name>-<width>x<height>.<same type>` (the new size).
#[job(queue = "files", retries = 2, timeout = "2m", sandbox)]
pub async fn resize_image(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] input: String,
    #[validate(range(min = 1, max = 10000))] max_width: u32,
    #[validate(range(min = 1, max = 10000))] max_height: u32,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<ImageOutput, JobError> {
    let src = env.resolve(&input)?;
    let max = env.settings.app.files.max_file_size;
    let (out_rel, img) = blocking(move || {
        let (img, format) = load_image(&src, max).map_err(FileError::into_job_error)?;
        let fitted = if img.width() > max_width || img.height() > max_height {
            img.resize(max_width, max_height, FilterType::Triangle)
        } else {
            img
        };
        let size = format!("-{}x{}", fitted.width(), fitted.height());
        Ok((output.unwrap_or_else(|| default_output(&input, &size, ext_of(format))), fitted))
    })
    .await?;
    write_output(&env, out_rel, img, 85).await
}

/// Re-encodes a JPEG at `quality` or a PNG at the best compression, without
/// metadata. Keeps the original bytes when re-encoding does not make the
/// file smaller. Default output: `processed/<name>-optimized.<ext>`.
#[job(queue = "files", retries = 2, timeout = "2m", sandbox)]
pub async fn optimize_image(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] input: String,
    #[validate(range(min = 1, max = 100))] quality: u8,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<OptimizeReport, JobError> {
    let src = env.resolve(&input)?;
    let max = env.settings.app.files.max_file_size;
    let data_dir = env.paths.data_dir.clone();
    blocking(move || {
        let (img, format) = load_image(&src, max).map_err(FileError::into_job_error)?;
        if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
            return Err(JobError::permanent(format!(
                "{input}: only JPEG and PNG images are optimised, this is {format:?}"
            )));
        }
        let rel = output.unwrap_or_else(|| default_output(&input, "-optimized", ext_of(format)));
        let dst = data_dir.join(&rel);
        let before = std::fs::metadata(&src).map_err(|e| FileError::into_job_error(io(&src)(e)))?.len();
        let mut after = save_image(&img, &dst, format, quality).map_err(FileError::into_job_error)?;
        if after >= before {
            std::fs::copy(&src, &dst).map_err(|e| FileError::into_job_error(io(&dst)(e)))?;
            after = before;
        }
        let saved_percent = if before == 0 { 0.0 } else { (before - after) as f64 * 100.0 / before as f64 };
        Ok(OptimizeReport { output: rel, before, after, saved_percent: (saved_percent * 10.0).round() / 10.0 })
    })
    .await
}

/// What optimising saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeReport {
    /// The file written, relative to the data folder.
    pub output: String,
    /// Bytes before.
    pub before: u64,
    /// Bytes after.
    pub after: u64,
    /// Percent saved.
    pub saved_percent: f64,
}

/// Converts an image to `png`, `jpeg`, `gif` or `webp` (WebP is written
/// lossless). Default output: `processed/<name>.<format>`.
#[job(queue = "files", retries = 2, timeout = "2m", sandbox)]
pub async fn convert_image(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] input: String,
    #[validate(pattern = "^(png|jpe?g|gif|webp)$")] format: String,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<ImageOutput, JobError> {
    let src = env.resolve(&input)?;
    let max = env.settings.app.files.max_file_size;
    let rel = output.unwrap_or_else(|| default_output(&input, "", &format));
    let img = blocking(move || load_image(&src, max).map(|(img, _)| img).map_err(FileError::into_job_error)).await?;
    write_output(&env, rel, img, 90).await
}

async fn write_output(
    env: &crate::env::AppEnv,
    rel: String,
    img: DynamicImage,
    quality: u8,
) -> Result<ImageOutput, JobError> {
    let dst = env.resolve(&rel)?;
    let (width, height) = (img.width(), img.height());
    blocking(move || {
        let format = output_format(&dst).map_err(FileError::into_job_error)?;
        let bytes = save_image(&img, &dst, format, quality).map_err(FileError::into_job_error)?;
        tracing::info!(output = %rel, width, height, bytes, "image written");
        Ok(ImageOutput { output: rel, width, height, bytes })
    })
    .await
}

/// What a batch does with each good file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOperation {
    /// A 320x320 JPEG thumbnail of each image, in `processed/thumbnails/`.
    Thumbnails,
    /// The text of each document (plain text, HTML, PDF).
    ExtractText,
}

/// A file a batch took, and the job it enqueued for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// The file, relative to the data folder.
    pub file: String,
    /// Its type, by content.
    pub content_type: String,
    /// The job enqueued for it.
    pub job: JobId,
}

/// A file a batch refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The file, relative to the data folder.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// The folder.
    pub folder: String,
    /// The operation.
    pub operation: BatchOperation,
    /// Files taken, each with its job.
    pub accepted: Vec<BatchItem>,
    /// Files refused, each with the reason.
    pub rejected: Vec<Rejected>,
}

/// Validates every file of a folder (not its subfolders; hidden files are
/// skipped) — not empty, at most `max_file_size` bytes (default
/// `app.files.max_file_size`), of a type the operation takes judged by
/// content — and enqueues one job per good file in one batch, each unique for
/// an hour so that a retry of this job does not process a file twice.
#[job(queue = "files", retries = 2, timeout = "5m")]
pub async fn process_folder(
    env: Data<AppEnv>,
    #[validate(custom = relative_path)] folder: String,
    operation: BatchOperation,
    #[validate(range(min = 1))] max_file_size: Option<u64>,
) -> Result<BatchReport, JobError> {
    let dir = env.resolve(&folder)?;
    let max = max_file_size.unwrap_or(env.settings.app.files.max_file_size);
    let folder_rel = folder.clone();
    let checked = blocking(move || validate_folder(&dir, &folder_rel, operation, max)).await?;
    let mut new_jobs = Vec::new();
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (file, verdict) in checked {
        match verdict {
            Ok(content_type) => {
                let options = JobOptions::new().unique_for(Duration::from_secs(3600));
                let job = match operation {
                    BatchOperation::Thumbnails => {
                        let out = default_output(&file, "", "jpg").replacen("processed/", "processed/thumbnails/", 1);
                        ResizeImage::new(file.clone(), 320, 320, Some(out)).into_new_job(options)
                    }
                    BatchOperation::ExtractText => ExtractText::new(file.clone(), None).into_new_job(options),
                }
                .map_err(JobError::permanent)?;
                new_jobs.push(job);
                accepted.push((file, content_type));
            }
            Err(reason) => rejected.push(Rejected { file, reason }),
        }
    }
    let ids = env.queue.enqueue_many(new_jobs).await?;
    let accepted = accepted
        .into_iter()
        .zip(ids)
        .map(|((file, content_type), job)| BatchItem { file, content_type, job })
        .collect::<Vec<_>>();
    tracing::info!(folder, accepted = accepted.len(), rejected = rejected.len(), "batch validated");
    Ok(BatchReport { folder, operation, accepted, rejected })
}

/// Each file of `dir` (sorted by name) with its content type or the reason
/// it is refused.
type Verdicts = Vec<(String, Result<String, String>)>;

fn validate_folder(dir: &Path, rel: &str, operation: BatchOperation, max: u64) -> Result<Verdicts, JobError> {
    let entries = std::fs::read_dir(dir).map_err(|e| FileError::into_job_error(io(dir)(e)))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = format!("{}/{name}", rel.trim_end_matches('/'));
        out.push((file, check_file(&path, operation, max)));
    }
    Ok(out)
}

fn check_file(path: &Path, operation: BatchOperation, max: u64) -> Result<String, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size == 0 {
        return Err("the file is empty".into());
    }
    if size > max {
        return Err(format!("{size} bytes is more than the limit of {max} bytes"));
    }
    let head = read_head(path, 8192).map_err(|e| e.to_string())?;
    let detected = content_type(&head);
    let (ok, expected) = match operation {
        BatchOperation::Thumbnails => (IMAGE_TYPES.contains(&detected.as_str()), "an image (PNG, JPEG, GIF, WebP)"),
        BatchOperation::ExtractText => (detect_document(&head).is_some(), "a document (text, HTML, PDF)"),
    };
    if !ok {
        let by_name =
            path.extension().map(|e| format!(" (its name ends in .{})", e.to_string_lossy())).unwrap_or_default();
        return Err(format!("the content is {detected}, not {expected}{by_name}"));
    }
    Ok(detected)
}
