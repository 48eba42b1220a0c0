//! An operator's session, on a `MemoryQueue` seeded here: inspect the
//! queues, find a dead job, read its errors, retry it.
//!
//! `cargo run -p jobs-cli --example operator` prints the transcript: each
//! command as typed, then what it wrote (stdout, then stderr).

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_cli::{run, Context, Io};
use jobs_core::prelude::*;
use jobs_core::{JobStatus, SharedQueue};

/// Whether the mail server answers (it is down until the operator's fix).
static SMTP_UP: AtomicBool = AtomicBool::new(false);

/// Sends the welcome mail; fails while the mail server is down.
#[job(queue = "email", priority = "high", retries = 2)]
async fn send_welcome_email(#[validate(email)] to: String, username: String) -> Result<(), JobError> {
    if !SMTP_UP.load(Ordering::SeqCst) {
        let e = std::io::Error::new(ErrorKind::ConnectionRefused, "smtp.example.com:587: connection refused");
        return Err(JobError::retryable(e));
    }
    let _ = (to, username);
    Ok(())
}

/// Resizes an image; returns the new size in bytes.
#[job(queue = "files")]
async fn resize_image(path: String, #[validate(range(min = 16, max = 4096))] width: u32) -> Result<u64, JobError> {
    Ok(u64::from(width) * 75 + path.len() as u64)
}

/// Runs one command line and prints it as a terminal would show it.
async fn jobs(q: &SharedQueue, line: &str, answer: Option<&str>) -> String {
    let args: Vec<&str> = line.split(' ').collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = answer.unwrap_or_default().as_bytes();
    let mut io = Io::new(&mut out, &mut err);
    if answer.is_some() {
        io = io.interactive(&mut input);
    }
    let code = run(std::iter::once("jobs").chain(args), Context::new(q.clone()), &mut io).await;
    let (out, err) = (String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned());
    println!("$ jobs {line}");
    match answer {
        // The prompt comes first, and the terminal echoes the answer.
        Some(a) => print!("{}{out}", err.replacen("[y/N] ", &format!("[y/N] {a}"), 1)),
        None => print!("{out}{err}"),
    }
    if code != 0 {
        println!("[exit {code}]");
    }
    println!();
    out
}

async fn wait_for(q: &SharedQueue, ids: &[JobId], status: JobStatus) -> anyhow_free::Result {
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in ids {
        while q.job(id).await?.map(|j| j.status) != Some(status) {
            if Instant::now() > deadline {
                return Err(format!("{id} did not become {status} within 30 s").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// A `Result` without an extra dependency.
mod anyhow_free {
    pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
}

#[tokio::main]
async fn main() -> anyhow_free::Result {
    let q: SharedQueue = Arc::new(MemoryQueue::new());
    let pool = WorkerPool::builder(q.clone())
        .workers(4)
        .queues(["email", "files"])
        .retry_delay(Duration::from_millis(20))
        .scheduler(false)
        .start()?;
    let mut images = Vec::new();
    for (i, width) in [640, 1280, 1920].into_iter().enumerate() {
        images.push(ResizeImage { path: format!("/srv/uploads/photo-{i}.jpg"), width }.enqueue(&q).await?);
    }
    let mail = SendWelcomeEmail { to: "ann@example.com".into(), username: "Ann".into() }.enqueue(&q).await?;
    wait_for(&q, &images, JobStatus::Succeeded).await?;
    wait_for(&q, std::slice::from_ref(&mail), JobStatus::Dead).await?;

    jobs(&q, "queues", None).await;
    jobs(&q, "stats", None).await;
    jobs(&q, "dead list", None).await;
    let doc: serde_json::Value = serde_json::from_str(&jobs(&q, "dead list --queue email --json", None).await)?;
    let dead = doc["jobs"][0]["id"].as_str().ok_or("no dead job listed")?.to_owned();
    jobs(&q, &format!("dead show {dead}"), None).await;

    // The operator fixes the mail server, then retries.
    SMTP_UP.store(true, Ordering::SeqCst);
    jobs(&q, "dead retry --all --queue email", None).await;
    jobs(&q, "dead retry --all --queue email", Some("y\n")).await;
    wait_for(&q, std::slice::from_ref(&mail), JobStatus::Succeeded).await?;
    jobs(&q, &format!("job {dead}"), None).await;
    jobs(&q, "queues", None).await;
    jobs(&q, &format!("dead retry {dead}"), None).await;
    pool.shutdown().await?;
    Ok(())
}
