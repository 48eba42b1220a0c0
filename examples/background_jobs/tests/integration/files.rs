//! File jobs on real files in the data folder.

use background_jobs::demo::seed;
use background_jobs::jobs::extract::{ExtractText, Extracted};
use background_jobs::jobs::files::*;
use background_jobs::jobs::video::{ffmpeg_version, TranscodeVideo};
use jobs_core::prelude::*;

use crate::support::{dead_after, png, succeeded, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_come_out_resized_converted_and_optimised() {
    let h = Harness::start(|_| {}).await;
    let q = &h.app.queue;
    h.write("uploads/wide.png", &png(640, 480));
    let mut jpg = Vec::new();
    image::DynamicImage::ImageRgb8(seed::portrait(300, 400))
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 98))
        .expect("encode");
    h.write("uploads/tall.jpg", &jpg);

    let resize = ResizeImage::new("uploads/wide.png".into(), 200, 200, None).enqueue(q).await.expect("valid");
    let webp = ResizeImage::new("uploads/tall.jpg".into(), 90, 90, Some("out/tall.webp".into()))
        .enqueue(q)
        .await
        .expect("valid");
    let convert = ConvertImage::new("uploads/wide.png".into(), "jpeg".into(), None).enqueue(q).await.expect("valid");
    let optimize = OptimizeImage::new("uploads/tall.jpg".into(), 60, None).enqueue(q).await.expect("valid");

    let out: ImageOutput = serde_json::from_value(succeeded(&h.finished(&resize).await)).expect("output");
    assert_eq!((out.output.as_str(), out.width, out.height), ("processed/wide-200x150.png", 200, 150));
    let img = image::open(h.path(&out.output)).expect("a real image");
    assert_eq!((img.width(), img.height()), (200, 150), "aspect ratio kept");

    let out: ImageOutput = serde_json::from_value(succeeded(&h.finished(&webp).await)).expect("output");
    let bytes = std::fs::read(h.path(&out.output)).expect("written");
    assert_eq!(image::guess_format(&bytes).expect("known"), image::ImageFormat::WebP, "format by extension");
    assert_eq!((out.width, out.height), (68, 90));

    let out: ImageOutput = serde_json::from_value(succeeded(&h.finished(&convert).await)).expect("output");
    assert_eq!(out.output, "processed/wide.jpeg");
    let bytes = std::fs::read(h.path(&out.output)).expect("written");
    assert_eq!(image::guess_format(&bytes).expect("known"), image::ImageFormat::Jpeg);

    let r: OptimizeReport = serde_json::from_value(succeeded(&h.finished(&optimize).await)).expect("report");
    assert_eq!(r.before, jpg.len() as u64);
    assert!(r.after < r.before, "quality 98 re-encoded at 60 is smaller: {r:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_ends_dead_at_once_with_a_clear_error() {
    let h = Harness::start(|_| {}).await;
    let q = &h.app.queue;
    h.write("uploads/photo.png", b"just some text, whatever the name says\n");
    h.write("uploads/broken.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRtruncated");
    let text = ResizeImage::new("uploads/photo.png".into(), 10, 10, None).enqueue(q).await.expect("valid");
    let broken = ResizeImage::new("uploads/broken.png".into(), 10, 10, None).enqueue(q).await.expect("valid");
    let missing = ConvertImage::new("uploads/nothing.png".into(), "gif".into(), None).enqueue(q).await.expect("valid");

    let err = dead_after(&h.finished(&text).await, 1);
    assert!(err.contains("photo.png: the content is text/plain, not a PNG, JPEG, GIF or WebP image"), "{err}");
    let err = dead_after(&h.finished(&broken).await, 1);
    assert!(err.contains("broken.png: cannot decode the image"), "{err}");
    let err = dead_after(&h.finished(&missing).await, 1);
    assert!(err.contains("nothing.png") && err.contains("No such file"), "{err}");

    let e = ResizeImage::new("../etc/passwd".into(), 10, 10, None).enqueue(q).await.expect_err("escapes");
    assert!(e.to_string().contains("field `input` (custom)"), "{e}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_comes_out_of_text_html_and_pdf() {
    let h = Harness::start(|_| {}).await;
    let q = &h.app.queue;
    h.write("docs/a.txt", "Plain words here.\n".as_bytes());
    h.write("docs/b.html", b"<html><body><h1>Title</h1><p>Body &amp; soul</p><script>x()</script></body></html>");
    h.write("docs/c.pdf", &seed::sample_pdf(&[&["First page line"], &["Second page line"]]).expect("pdf"));
    // A PDF by name, an image by content.
    h.write("docs/d.pdf", &png(4, 4));
    let mut ids = Vec::new();
    for f in ["a.txt", "b.html", "c.pdf", "d.pdf"] {
        ids.push(ExtractText::new(format!("docs/{f}"), None).enqueue(q).await.expect("valid"));
    }
    let read = |info: &jobs_core::JobInfo| {
        let e: Extracted = serde_json::from_value(succeeded(info)).expect("extracted");
        std::fs::read_to_string(h.path(&e.output)).expect("written")
    };
    assert_eq!(read(&h.finished(&ids[0]).await), "Plain words here.\n");
    assert_eq!(read(&h.finished(&ids[1]).await), "Title\nBody & soul\n");
    let pdf_job = h.finished(&ids[2]).await;
    let pdf = read(&pdf_job);
    assert!(pdf.contains("First page line") && pdf.contains("Second page line"), "{pdf}");
    let progress = pdf_job.progress.expect("a PDF reports its pages");
    assert_eq!((progress.fraction, progress.note.as_str()), (1.0, "page 2 of 2"), "the last page is the last report");
    let err = dead_after(&h.finished(&ids[3]).await, 1);
    assert!(err.contains("d.pdf: the content is image/png, not a document"), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_validates_every_file_and_fans_out_the_good_ones() {
    let h = Harness::start(|_| {}).await;
    h.write("in/good.png", &png(400, 300));
    h.write("in/fake.jpg", b"a text file with an image's name\n");
    h.write("in/empty.gif", b"");
    let noise = image::DynamicImage::ImageRgb8(seed::noise(300, 300));
    let mut huge = std::io::Cursor::new(Vec::new());
    noise.write_to(&mut huge, image::ImageFormat::Png).expect("encode");
    h.write("in/huge.png", huge.get_ref());
    h.write("in/.hidden.png", &png(8, 8));
    let limit = std::fs::metadata(h.path("in/good.png")).expect("meta").len() + 10;
    let id = ProcessFolder::new("in".into(), BatchOperation::Thumbnails, Some(limit))
        .enqueue(&h.app.queue)
        .await
        .expect("valid");
    let report: BatchReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("report");
    assert_eq!(report.accepted.len(), 1, "{report:?}");
    assert_eq!(
        (report.accepted[0].file.as_str(), report.accepted[0].content_type.as_str()),
        ("in/good.png", "image/png")
    );
    let reasons: Vec<(&str, &str)> = report.rejected.iter().map(|r| (r.file.as_str(), r.reason.as_str())).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0], ("in/empty.gif", "the file is empty"));
    assert!(
        reasons[1].0 == "in/fake.jpg"
            && reasons[1].1.contains("text/plain, not an image")
            && reasons[1].1.contains(".jpg"),
        "{reasons:?}"
    );
    assert!(reasons[2].0 == "in/huge.png" && reasons[2].1.contains("more than the limit"), "{reasons:?}");

    let child = h.finished(&report.accepted[0].job).await;
    let out: ImageOutput = serde_json::from_value(succeeded(&child)).expect("output");
    assert_eq!(out.output, "processed/thumbnails/good.jpg");
    assert_eq!((out.width, out.height), (320, 240));
    assert!(h.path("processed/thumbnails/good.jpg").is_file());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_needs_ffmpeg_and_says_so() {
    let h = Harness::start(|s| s.app.files.ffmpeg = "ffmpeg-that-is-not-installed".into()).await;
    let id = TranscodeVideo::new("uploads/clip.mp4".into(), 320, None).enqueue(&h.app.queue).await.expect("valid");
    let err = dead_after(&h.finished(&id).await, 1);
    assert!(
        err.contains("ffmpeg is not installed: `ffmpeg-that-is-not-installed` cannot be started (not found)"),
        "{err}"
    );
    assert!(err.contains("apt-get install ffmpeg"), "{err}");
    h.stop().await;

    // With a real ffmpeg: a clip it makes itself is transcoded; text is refused.
    if ffmpeg_version("ffmpeg").await.is_err() {
        eprintln!("ffmpeg is not installed: skipping the transcoding half of this test");
        return;
    }
    let h = Harness::start(|_| {}).await;
    let clip = h.path("uploads/clip.mp4");
    std::fs::create_dir_all(clip.parent().expect("parent")).expect("mkdir");
    let made = tokio::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=320x240:rate=10"])
        .arg(&clip)
        .status()
        .await
        .expect("runs");
    assert!(made.success());
    h.write("uploads/notes.mp4", b"not a video");
    let ok = TranscodeVideo::new("uploads/clip.mp4".into(), 160, None).enqueue(&h.app.queue).await.expect("valid");
    let bad = TranscodeVideo::new("uploads/notes.mp4".into(), 160, None).enqueue(&h.app.queue).await.expect("valid");
    succeeded(&h.finished(&ok).await);
    assert!(h.path("processed/clip.mp4").is_file());
    let err = dead_after(&h.finished(&bad).await, 1);
    assert!(err.contains("not a video"), "{err}");
    h.stop().await;
}
