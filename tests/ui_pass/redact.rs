//! `#[redact]` fields: stored and given to the job as written, hidden by
//! every view of the job, and never quoted by a validation or decode error.
use jobs_core::prelude::*;
use jobs_core::{JobInfo, MemoryQueue};
use jobs_core::backend::REDACTED;

#[job(queue = "accounts")]
async fn reset_password(
    user: String,
    #[redact]
    #[validate(length(min = 8))]
    token: String,
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
        let id = ResetPassword { user: "ann".into(), token: "s3cret-token".into(), pin: 1234 }
            .enqueue(&q)
            .await
            .unwrap();
        let info: JobInfo = q.job(&id).await.unwrap().unwrap();
        // Stored as written: the job gets the real values.
        assert_eq!(info.payload["token"], "s3cret-token");
        let shown = info.redacted();
        assert_eq!(shown.payload, serde_json::json!({"user": "ann", "token": REDACTED, "pin-code": REDACTED}));

        // A broken rule names the field and rule, not the value.
        let err = ResetPassword { user: "ann".into(), token: "s3cr".into(), pin: 1 }.enqueue(&q).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("field `token` (length)") && !text.contains("s3cr"), "{text}");

        // A payload that does not decode: the error does not quote it.
        let d = jobs_core::backend::descriptors().find(|d| d.name == "reset_password").unwrap();
        let err = (d.check)(br#"{"user": "ann", "token": "s3cret-token", "pin-code": "not-a-number"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 1") && !text.contains("not-a-number"), "{text}");
    });
}
