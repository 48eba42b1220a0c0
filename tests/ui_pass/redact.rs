//! `#[redact]` fields: stored and given to the job as written, hidden by
//! every view of the job.
use jobs_core::prelude::*;
use jobs_core::{JobInfo, MemoryQueue, REDACTED};

#[job(queue = "accounts")]
async fn reset_password(
    user: String,
    #[redact] token: String,
    #[redact]
    #[serde(rename = "pin-code")]
    pin: u32,
) -> Result<(), JobError> {
    let _ = (user, token, pin);
    Ok(())
}

fn main() {
    assert_eq!(<ResetPassword as Job>::REDACTED, &["token", "pin-code"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let q = MemoryQueue::new();
        let id = ResetPassword { user: "ann".into(), token: "s3cret".into(), pin: 1234 }.enqueue(&q).await.unwrap();
        let info: JobInfo = q.job(&id).await.unwrap().unwrap();
        // Stored as written: the job gets the real values.
        assert_eq!(info.payload["token"], "s3cret");
        let shown = info.redacted();
        assert_eq!(shown.payload, serde_json::json!({"user": "ann", "token": REDACTED, "pin-code": REDACTED}));
    });
}
