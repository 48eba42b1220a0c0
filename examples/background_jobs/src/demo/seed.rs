//! The demo's workspace: sample images drawn here with `image`, a text, an
//! HTML page and a PDF written here with `lopdf` (nothing is downloaded),
//! bad files for the validation to catch, users and sessions in SQLite,
//! scratch files of several ages and a log that is due for rotation.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::{ImageBuffer, ImageFormat, Rgb, RgbImage, Rgba};
use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

use crate::db::{self, NewUser};
use crate::env::{AppEnv, Paths};

/// Folders of the data folder the demo owns: emptied at the start of a run.
pub const DEMO_DIRS: &[&str] = &["uploads", "inbox", "processed"];

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("cannot draw a sample image: {0}")]
    Image(#[from] image::ImageError),
    /// The PDF could not be written.
    #[error("cannot write the sample PDF: {0}")]
    Pdf(#[from] lopdf::Error),
    /// The database refused the sample rows.
    #[error(transparent)]
    Db(#[from] db::DbError),
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SeedError> {
    let err = |source| SeedError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(err)
}

fn age(path: &Path, by: Duration) -> Result<(), SeedError> {
    let err = |source| SeedError::Io { path: path.display().to_string(), source };
    let f = std::fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    f.set_modified(SystemTime::now() - by).map_err(err)
}

/// Empties what a previous run left: the demo's folders, the outbox,
/// scratch files, user files, logs and the database. Only these: the data
/// folder may hold other things.
pub fn reset(paths: &Paths) -> Result<(), SeedError> {
    let mut dirs: Vec<PathBuf> = DEMO_DIRS.iter().map(|d| paths.data_dir.join(d)).collect();
    dirs.extend([paths.outbox.clone(), paths.temp.clone(), paths.user_files.clone(), paths.logs.clone()]);
    for dir in dirs {
        remove_dir(&dir)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", paths.database.display()));
    }
    Ok(())
}

/// Removes a folder and what it holds (nothing to do when it is absent).
pub fn remove_dir(dir: &Path) -> Result<(), SeedError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SeedError::Io { path: dir.display().to_string(), source }),
    }
}

/// Encodes an image into bytes of `format`.
fn encode(img: &image::DynamicImage, format: ImageFormat) -> Result<Vec<u8>, SeedError> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

/// A sky-to-sea gradient with a sun: something worth resizing.
pub fn landscape(w: u32, h: u32) -> RgbImage {
    let (sx, sy, r) = (w as f32 * 0.7, h as f32 * 0.3, h as f32 * 0.12);
    ImageBuffer::from_fn(w, h, |x, y| {
        let t = y as f32 / h as f32;
        let (dx, dy) = (x as f32 - sx, y as f32 - sy);
        if dx * dx + dy * dy < r * r {
            Rgb([255, 214, 90])
        } else if t < 0.6 {
            Rgb([(90.0 + 120.0 * t) as u8, (150.0 + 80.0 * t) as u8, 235])
        } else {
            Rgb([20, (90.0 + 60.0 * (1.0 - t)) as u8, (140.0 + 40.0 * (1.0 - t)) as u8])
        }
    })
}

/// Rings on a warm background.
pub fn portrait(w: u32, h: u32) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - w as f32 / 2.0, y as f32 - h as f32 / 2.0);
        let ring = ((dx * dx + dy * dy).sqrt() / 24.0) as u32 % 2;
        if ring == 0 {
            Rgb([200, (100 + (x * 100 / w)) as u8, 80])
        } else {
            Rgb([250, 230, (150 + (y * 100 / h)) as u8])
        }
    })
}

/// Noise, which compresses badly: a large file from small dimensions.
pub fn noise(w: u32, h: u32) -> RgbImage {
    let mut state: u32 = 0x9e37_79b9;
    ImageBuffer::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        Rgb([a, b, c])
    })
}

/// A two-page PDF with text in the standard Helvetica font.
pub fn sample_pdf(pages: &[&[&str]]) -> Result<Vec<u8>, SeedError> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut ops = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 14.into()])];
        ops.push(Operation::new("Td", vec![72.into(), 760.into()]));
        ops.push(Operation::new("TL", vec![20.into()]));
        for line in *lines {
            ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode()?));
        let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
        kids.push(page_id.into());
    }
    let count = i64::try_from(kids.len()).unwrap_or(i64::MAX);
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|source| SeedError::Io { path: "<pdf>".into(), source })?;
    Ok(out)
}

/// Page text of the sample PDF (what extraction must find).
pub const PDF_PAGES: &[&[&str]] = &[
    &["Quarterly report", "Revenue grew by 12 percent.", "Background jobs processed 1.2 million tasks."],
    &["Outlook", "Next quarter we will add video thumbnails."],
];

const ARTICLE_HTML: &str = r#"<!DOCTYPE html>
<html><head><title>Release notes</title><style>body { font-family: serif }</style>
<script>console.log("not text")</script></head>
<body><h1>Release notes &mdash; 2.0</h1>
<p>Background jobs now retry with <em>exponential backoff</em> &amp; jitter.</p>
<ul><li>Dead-letter queue</li><li>Cron schedules</li></ul>
<!-- internal: ship on Friday -->
</body></html>
"#;

const NOTES_TXT: &str = "Meeting notes\n\n- Move the mailer to a background job.\n- Resize uploads off the request path.\n- Clean up expired sessions nightly.\n";

/// Writes the sample files: `uploads/` for single jobs, `inbox/` for the
/// batch (three images and three files it must refuse), scratch files,
/// user files and logs. Returns whether a sample video was made (only
/// possible with `ffmpeg`).
pub async fn files(env: &AppEnv) -> Result<bool, SeedError> {
    let up = env.paths.data_dir.join("uploads");
    let inbox = env.paths.data_dir.join("inbox");
    let land = image::DynamicImage::ImageRgb8(landscape(1600, 1000));
    let port = image::DynamicImage::ImageRgb8(portrait(900, 1200));
    let logo = image::DynamicImage::ImageRgba8(ImageBuffer::from_fn(160, 160, |x, y| {
        if (x / 20 + y / 20) % 2 == 0 {
            Rgba([30, 110, 200, 255])
        } else {
            Rgba([255, 255, 255, 0])
        }
    }));
    let png = encode(&land, ImageFormat::Png)?;
    let mut jpg = Vec::new();
    port.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 95))?;
    let gif = encode(&logo, ImageFormat::Gif)?;
    write(&up.join("landscape.png"), &png)?;
    write(&up.join("portrait.jpg"), &jpg)?;
    write(&up.join("logo.gif"), &gif)?;
    write(&up.join("notes.txt"), NOTES_TXT.as_bytes())?;
    write(&up.join("article.html"), ARTICLE_HTML.as_bytes())?;
    write(&up.join("report.pdf"), &sample_pdf(PDF_PAGES)?)?;
    // A PNG signature followed by garbage: a PNG by content that cannot decode.
    write(&up.join("broken.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRtruncated")?;

    write(&inbox.join("a-landscape.png"), &png)?;
    write(&inbox.join("b-portrait.jpg"), &jpg)?;
    write(&inbox.join("c-logo.gif"), &gif)?;
    write(&inbox.join("holiday.jpg"), b"Not a picture: a text file with a .jpg name.\n")?;
    write(&inbox.join("scan.png"), &encode(&image::DynamicImage::ImageRgb8(noise(700, 700)), ImageFormat::Png)?)?;
    write(&inbox.join("empty.png"), b"")?;

    let temp = &env.paths.temp;
    for (name, old) in
        [("upload-1.part", true), ("upload-2.part", true), ("render-7/page-1.tmp", true), ("fresh.part", false)]
    {
        let p = temp.join(name);
        write(&p, &vec![b'x'; 4096])?;
        if old {
            age(&p, Duration::from_secs(3 * 24 * 3600))?;
        }
    }
    let uf = &env.paths.user_files;
    write(&uf.join("ann/avatar.png"), &png[..png.len().min(2048)])?;
    write(&uf.join("erin/cv.pdf"), b"%PDF-1.4 cv")?;
    let abandoned = uf.join("incoming/abandoned-upload.bin");
    write(&abandoned, &vec![0u8; 64 * 1024])?;
    age(&abandoned, Duration::from_secs(2 * 24 * 3600))?;

    let mut log = String::new();
    for i in 0..24_000 {
        log.push_str(&format!(
            "2026-11-28T10:{:02}:{:02}Z INFO request {i} served in {} ms\n",
            (i / 60) % 60,
            i % 60,
            i % 97
        ));
    }
    write(&env.paths.logs.join("app.log"), log.as_bytes())?;
    write(&env.paths.logs.join("app.log.1.gz"), &gzip(b"yesterday's log\n")?)?;
    write(&env.paths.logs.join("worker.log"), b"small log, not rotated\n")?;

    Ok(make_video(env, &up.join("clip.mp4")).await)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, SeedError> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let err = |source| SeedError::Io { path: "<gzip>".into(), source };
    gz.write_all(bytes).map_err(err)?;
    gz.finish().map_err(err)
}

/// A two-second test-pattern clip, when `ffmpeg` is installed.
async fn make_video(env: &AppEnv, path: &Path) -> bool {
    let ffmpeg = &env.settings.app.files.ffmpeg;
    let status = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=2:size=640x360:rate=15")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    matches!(status, Ok(s) if s.success())
}

/// Users and sessions, one of each case the cleanups handle.
pub fn database(env: &AppEnv) -> Result<(), SeedError> {
    let db = &env.db;
    let conn = db.open()?;
    let now = db::now();
    let day = 24 * 3600;
    let user = |email, name, created: i64, login: Option<i64>, verified: Option<i64>, deleted: Option<i64>| NewUser {
        email,
        name,
        created_at: now - created * day,
        last_login_at: login.map(|d| now - d * day),
        verified_at: verified.map(|d| now - d * day),
        deleted_at: deleted.map(|d| now - d * day),
    };
    let ann = db.insert_user(&conn, &user("ann@example.com", "Ann", 300, Some(1), Some(300), None))?;
    let bob = db.insert_user(&conn, &user("bob@example.com", "Bob", 800, Some(400), Some(800), None))?;
    let carol = db.insert_user(&conn, &user("carol@example.org", "Carol", 10, None, None, None))?;
    let dave = db.insert_user(&conn, &user("dave@example.org", "Dave", 2, None, None, None))?;
    let erin = db.insert_user(&conn, &user("erin@example.net", "Erin", 900, Some(60), Some(900), Some(40)))?;
    let frank = db.insert_user(&conn, &user("frank@example.net", "Frank", 500, Some(5), Some(500), Some(3)))?;
    let sessions = [
        ("s-ann-live", ann, now + day),
        ("s-ann-old", ann, now - 2 * day),
        ("s-bob", bob, now + 30 * day),
        ("s-carol", carol, now + day),
        ("s-dave", dave, now + day),
        ("s-erin", erin, now + day),
        ("s-frank", frank, now + day),
        ("s-ghost", 999, now + day),
    ];
    for (id, user, expires) in sessions {
        db.insert_session(&conn, id, user, now - day, expires)?;
    }
    db.insert_file(&conn, ann, "ann/avatar.png", now - 100 * day)?;
    db.insert_file(&conn, erin, "erin/cv.pdf", now - 800 * day)?;
    Ok(())
}
