//! Job results and error types: a serializable result is stored, `()` is
//! none, `anyhow::Result` and std errors convert into retryable errors,
//! `JobError::permanent` stays permanent.
use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Report {
    rows: u64,
}

#[job]
async fn export(rows: u64) -> Result<Report, JobError> {
    if rows == 0 {
        return Err(JobError::permanent("nothing to export"));
    }
    Ok(Report { rows })
}

#[job]
async fn with_anyhow(fail: bool) -> anyhow::Result<()> {
    if fail {
        anyhow::bail!("upstream said no");
    }
    Ok(())
}

#[job]
async fn with_io(fail: bool) -> std::io::Result<u8> {
    if fail {
        return Err(std::io::Error::other("disk on fire"));
    }
    Ok(7)
}

#[job]
async fn parses(text: String) -> Result<i64, std::num::ParseIntError> {
    text.parse()
}

async fn run(name: &str, payload: &str) -> Result<Option<Vec<u8>>, jobs_core::backend::RunError> {
    let d = jobs_core::backend::descriptors().find(|d| d.name == name).expect("registered");
    (d.run)(JobContext::for_test(name), jobs_core::backend::PayloadFormat::Json, payload.as_bytes()).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = run("export", r#"{"rows":12}"#).await.unwrap().unwrap();
    assert_eq!(serde_json::from_slice::<Report>(&out).unwrap(), Report { rows: 12 });
    let err = run("export", r#"{"rows":0}"#).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), "nothing to export");

    assert_eq!(run("with_anyhow", r#"{"fail":false}"#).await.unwrap(), None);
    let err = run("with_anyhow", r#"{"fail":true}"#).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "upstream said no");

    assert_eq!(run("with_io", r#"{"fail":false}"#).await.unwrap(), Some(b"7".to_vec()));
    assert!(run("with_io", r#"{"fail":true}"#).await.unwrap_err().is_retryable());

    assert_eq!(run("parses", r#"{"text":"-3"}"#).await.unwrap(), Some(b"-3".to_vec()));
    assert!(run("parses", r#"{"text":"x"}"#).await.unwrap_err().is_retryable());

    // A payload that does not decode is a permanent failure.
    let err = run("export", r#"{"rows":"many"}"#).await.unwrap_err();
    assert!(matches!(err, jobs_core::backend::RunError::Decode { .. }), "{err:?}");
    assert!(!err.is_retryable());

    assert_eq!(export(3).await.unwrap(), Report { rows: 3 });
}
