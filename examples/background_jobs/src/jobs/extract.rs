//! Text extraction from documents: plain text, HTML (tags, scripts and
//! styles dropped, entities decoded) and PDF (through `lopdf`). The type is
//! judged by content, not by the file's name.

use std::path::Path;

use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::files::{content_type, FileError};
use crate::env::{relative_path, AppEnv};

/// A document type text can be extracted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// PDF.
    Pdf,
    /// HTML.
    Html,
    /// UTF-8 text.
    Text,
}

impl DocKind {
    /// Its MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            DocKind::Pdf => "application/pdf",
            DocKind::Html => "text/html",
            DocKind::Text => "text/plain",
        }
    }
}

/// The document type of content by its first bytes, if it is one.
pub fn detect_document(head: &[u8]) -> Option<DocKind> {
    if head.starts_with(b"%PDF-") {
        return Some(DocKind::Pdf);
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // Cut in the middle of a character at the end of the sample: fine.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
        Err(_) => return None,
    };
    if text.is_empty() || text.contains('\0') {
        return None;
    }
    let start = text.trim_start_matches('\u{feff}').trim_start().get(..256).unwrap_or(text).to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") || infer::text::is_html(head) {
        Some(DocKind::Html)
    } else {
        Some(DocKind::Text)
    }
}

/// What an extraction produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// The text file written, relative to the data folder.
    pub output: String,
    /// The input's type.
    pub kind: DocKind,
    /// Characters of text.
    pub chars: usize,
    /// Words of text.
    pub words: usize,
}

/// Extracts the text of a document into a `.txt` file (default
/// `processed/<name>.txt`). A file that is not a document, or a PDF that does
/// not parse, fails permanently. A PDF reports its progress page by page
/// (`page 3 of 12`), seen by `jobs job ID` and the dashboard.
#[job(queue = "files", retries = 2, timeout = "2m", sandbox)]
pub async fn extract_text(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(custom = relative_path)] input: String,
    #[validate(custom = relative_path)] output: Option<String>,
) -> Result<Extracted, JobError> {
    let src = env.resolve(&input)?;
    let max = env.settings.app.files.max_file_size;
    let rel = output.unwrap_or_else(|| {
        let stem = Path::new(&input).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        format!("processed/{stem}.txt")
    });
    let dst = env.resolve(&rel)?;
    // The extraction blocks a thread; its pages done reach the job here.
    let (pages_tx, mut pages) = tokio::sync::watch::channel((0, 0));
    let work = blocking(move || {
        let on_page = |done: usize, total: usize| {
            let _ = pages_tx.send((done, total));
        };
        let (kind, text) = extract_file_with(&src, max, &on_page).map_err(|e| {
            let permanent = e.is_permanent();
            super::classify(e, permanent)
        })?;
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&dst, &text)?;
        let words = text.split_whitespace().count();
        tracing::info!(input, output = %rel, ?kind, words, "text extracted");
        Ok(Extracted { output: rel, kind, chars: text.chars().count(), words })
    });
    tokio::pin!(work);
    let mut shown = (0, 0);
    loop {
        let ended = tokio::select! {
            done = &mut work => Some(done),
            Ok(()) = pages.changed() => None,
        };
        // The last page too, when the extraction ended before it was seen.
        let now = *pages.borrow_and_update();
        if now != shown && now.1 > 0 {
            shown = now;
            let (done, total) = now;
            // Best effort: a progress not stored does not fail the extraction.
            if let Err(e) = ctx.progress(done as f32 / total as f32, format!("page {done} of {total}")).await {
                tracing::debug!(error = %e, "progress not stored");
            }
        }
        if let Some(done) = ended {
            return done;
        }
    }
}

/// Reads a document and returns its type and text.
pub fn extract_file(path: &Path, max_size: u64) -> Result<(DocKind, String), FileError> {
    extract_file_with(path, max_size, &|_, _| {})
}

/// [`extract_file`], calling `on_page(done, total)` after each page of a
/// PDF.
pub fn extract_file_with(
    path: &Path,
    max_size: u64,
    on_page: &dyn Fn(usize, usize),
) -> Result<(DocKind, String), FileError> {
    let shown = path.display().to_string();
    let io = |source| FileError::Io { path: shown.clone(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > max_size {
        return Err(FileError::TooLarge { path: shown, size, max: max_size });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let head = &bytes[..bytes.len().min(8192)];
    let Some(kind) = detect_document(head) else {
        return Err(FileError::WrongType {
            path: shown,
            detected: content_type(head),
            expected: "a document (text, HTML, PDF)",
        });
    };
    let text = match kind {
        DocKind::Text => String::from_utf8_lossy(&bytes).into_owned(),
        DocKind::Html => html_to_text(&String::from_utf8_lossy(&bytes)),
        DocKind::Pdf => pdf_text_with(&bytes, on_page).map_err(|e| FileError::WrongType {
            path: shown.clone(),
            detected: format!("a PDF that cannot be read ({e})"),
            expected: "a readable PDF",
        })?,
    };
    Ok((kind, text))
}

/// The text of every page of a PDF, pages separated by a blank line.
pub fn pdf_text(bytes: &[u8]) -> Result<String, lopdf::Error> {
    pdf_text_with(bytes, &|_, _| {})
}

/// [`pdf_text`], calling `on_page(done, total)` after each page.
pub fn pdf_text_with(bytes: &[u8], on_page: &dyn Fn(usize, usize)) -> Result<String, lopdf::Error> {
    let doc = lopdf::Document::load_mem(bytes)?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let total = pages.len();
    let mut out = String::new();
    for (i, page) in pages.into_iter().enumerate() {
        let text = doc.extract_text(&[page])?;
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(text.trim_end());
        out.push('\n');
        on_page(i + 1, total);
    }
    Ok(out)
}

/// Elements whose start or end breaks a line.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "title",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
];

/// The readable text of an HTML document: tags, comments, `<script>` and
/// `<style>` dropped, block elements on lines of their own, the common
/// entities decoded, empty lines dropped, runs of white space collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            rest = rest.to_ascii_lowercase().find(&close).map_or("", |i| &rest[i..]);
            continue;
        }
        if BLOCK_TAGS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(&decode_entities(rest));
    let mut text = String::new();
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "hellip" => Some('…'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        assert_eq!(detect_document(b"%PDF-1.5\n..."), Some(DocKind::Pdf));
        assert_eq!(detect_document(b"  <!DOCTYPE html><html>"), Some(DocKind::Html));
        assert_eq!(detect_document("plain words, ünïcode".as_bytes()), Some(DocKind::Text));
        assert_eq!(detect_document(b"\x89PNG\r\n\x1a\n\0\0"), None);
        assert_eq!(detect_document(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), None);
    }

    #[test]
    fn html_becomes_text() {
        let html = "<html><head><title>T &amp; C</title><style>p { color: red }</style>\
                    <script>var x = '<p>';</script></head><body><!-- hidden --><h1>Hello</h1>\
                    <p>One&nbsp;two &lt;three&gt; &#233;&#x41;</p><ul><li>a</li><li>b</li></ul></body></html>";
        assert_eq!(html_to_text(html), "T & C\nHello\nOne two <three> éA\na\nb\n");
    }
}
