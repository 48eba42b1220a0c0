//! The error types a job function may return, each run through the glue:
//! boxed errors (`Send + Sync` or not), text, `anyhow::Error` with context,
//! a std error, `JobError` and a type with a `From` impl into `JobError`.
//! All but the permanent `JobError`s are retryable, and the stored message
//! is the error's, with its chain of causes.
use std::error::Error;
use std::fmt;

use jobs_core::prelude::*;

/// An error with a cause, to check that the chain is kept.
#[derive(Debug)]
struct Upload {
    cause: std::io::Error,
}

impl fmt::Display for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upload failed")
    }
}

impl Error for Upload {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

fn read(fail: bool) -> std::io::Result<u8> {
    if fail {
        return Err(std::io::Error::other("disk on fire"));
    }
    Ok(1)
}

async fn pause() {
    tokio::task::yield_now().await;
}

#[job]
async fn boxed(step: u8) -> Result<u8, Box<dyn Error + Send + Sync>> {
    pause().await;
    let n = read(step == 1)?;
    if step == 2 {
        return Err(format!("step {step} refused").into());
    }
    pause().await;
    Ok(n)
}

#[job]
async fn boxed_static(fail: bool) -> Result<(), Box<dyn Error + Send + Sync + 'static>> {
    read(fail)?;
    Ok(())
}

// Not `Send`: accepted because the glue converts it as soon as the
// function returns, and the function holds none across an `.await`.
#[job]
async fn boxed_local(step: u8) -> Result<(), Box<dyn Error>> {
    pause().await;
    read(step == 1)?;
    if step == 2 {
        return Err(Box::new(Upload { cause: std::io::Error::other("connection reset") }));
    }
    pause().await;
    Ok(())
}

#[job]
async fn boxed_send(fail: bool) -> Result<(), Box<dyn Error + Send>> {
    // std has no `From<io::Error>` for this box, so no `?`.
    match read(fail) {
        Ok(_) => Ok(()),
        Err(e) => Err(Box::new(e)),
    }
}

#[job]
async fn text(fail: bool) -> Result<(), String> {
    if fail {
        return Err("no rows".to_owned());
    }
    Ok(())
}

#[job]
async fn static_text(fail: bool) -> Result<(), &'static str> {
    if fail {
        return Err("no rows");
    }
    Ok(())
}

#[job]
async fn with_context(fail: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    read(fail).context("reading the export")?;
    Ok(())
}

#[job]
async fn chained(fail: bool) -> Result<(), Upload> {
    if fail {
        return Err(Upload { cause: std::io::Error::other("connection reset") });
    }
    Ok(())
}

/// Not an error, but converts into `JobError` by a `From` impl of its own,
/// which decides the kind.
#[derive(Debug)]
struct Refused(&'static str);

impl From<Refused> for JobError {
    fn from(r: Refused) -> Self {
        JobError::permanent(format!("refused: {}", r.0))
    }
}

#[job]
async fn over_quota(fail: bool) -> Result<(), Refused> {
    if fail {
        return Err(Refused("quota"));
    }
    Ok(())
}

#[job]
async fn permanent(fail: bool) -> Result<(), JobError> {
    if fail {
        return Err(JobError::permanent("never"));
    }
    Ok(())
}

async fn run(name: &str, payload: &str) -> Result<Option<Vec<u8>>, jobs_core::backend::RunError> {
    let d = jobs_core::backend::descriptors().find(|d| d.name == name).expect("registered");
    (d.run)(JobContext::for_test(name), jobs_core::backend::PayloadFormat::Json, payload.as_bytes()).await
}

/// Runs a job that must fail retryably, returning its stored message.
async fn retryable(name: &str, payload: &str) -> String {
    let err = run(name, payload).await.expect_err("fails");
    assert!(err.is_retryable(), "{name}: {err:?}");
    err.to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(run("boxed", r#"{"step":0}"#).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(retryable("boxed", r#"{"step":1}"#).await, "disk on fire");
    assert_eq!(retryable("boxed", r#"{"step":2}"#).await, "step 2 refused");

    assert_eq!(run("boxed_static", r#"{"fail":false}"#).await.unwrap(), None);
    assert_eq!(retryable("boxed_static", r#"{"fail":true}"#).await, "disk on fire");

    assert_eq!(run("boxed_local", r#"{"step":0}"#).await.unwrap(), None);
    assert_eq!(retryable("boxed_local", r#"{"step":1}"#).await, "disk on fire");
    assert_eq!(retryable("boxed_local", r#"{"step":2}"#).await, "upload failed: connection reset");

    assert_eq!(retryable("boxed_send", r#"{"fail":true}"#).await, "disk on fire");

    assert_eq!(run("text", r#"{"fail":false}"#).await.unwrap(), None);
    assert_eq!(retryable("text", r#"{"fail":true}"#).await, "no rows");
    assert_eq!(retryable("static_text", r#"{"fail":true}"#).await, "no rows");

    assert_eq!(retryable("with_context", r#"{"fail":true}"#).await, "reading the export: disk on fire");
    assert_eq!(retryable("chained", r#"{"fail":true}"#).await, "upload failed: connection reset");

    let err = run("over_quota", r#"{"fail":true}"#).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), "refused: quota");

    let err = run("permanent", r#"{"fail":true}"#).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), "never");

    // The functions stay callable as written.
    assert!(boxed_local(2).await.unwrap_err().source().is_some());
}
