//! Payload fields marked `#[redact]` in no output: `job`, `dead list` and
//! `dead show`, as text and as `--json`.

use jobs_core::backend::REDACTED;
use jobs_core::prelude::*;
use jobs_core::SharedQueue;
use serde_json::json;

use crate::support::{cli, fail, on_every_backend};

on_every_backend!(redacted_fields_show_in_no_output);

const SECRET: &str = "tok-live-9f8e7d6c5b4a";

/// Rotates a user's API token.
#[jobs_core::job(queue = "vault")]
async fn rotate_key(user: String, #[redact] token: String, note: String) -> Result<(), JobError> {
    let _ = (user, token, note);
    Ok(())
}

async fn redacted_fields_show_in_no_output(q: SharedQueue) {
    let id = RotateKey { user: "ann".into(), token: SECRET.into(), note: "quarterly rotation".into() }
        .enqueue(&q)
        .await
        .unwrap();
    let id_text = id.to_string();
    assert_eq!(q.job(&id).await.unwrap().unwrap().payload["token"], SECRET, "stored as written");
    let shown = json!({ "user": "ann", "token": REDACTED, "note": "quarterly rotation" });

    let mut outputs = Vec::new();
    let doc = cli(&q, &["job", &id_text, "--json"]).await.json();
    assert_eq!(doc["payload"], shown, "{doc}");
    outputs.push(("job --json", doc.to_string()));
    outputs.push(("job", cli(&q, &["job", &id_text]).await.ok().to_owned()));

    fail(&q, &id, &["key store refused the rotation"]).await;
    let doc = cli(&q, &["dead", "show", &id_text, "--json"]).await.json();
    assert_eq!((doc["status"].clone(), doc["payload"].clone()), (json!("dead"), shown.clone()), "{doc}");
    outputs.push(("dead show --json", doc.to_string()));
    let doc = cli(&q, &["dead", "list", "--json"]).await.json();
    assert_eq!(doc["jobs"][0]["payload"], shown, "{doc}");
    outputs.push(("dead list --json", doc.to_string()));
    outputs.push(("dead show", cli(&q, &["dead", "show", &id_text]).await.ok().to_owned()));
    outputs.push(("dead list", cli(&q, &["dead", "list"]).await.ok().to_owned()));
    outputs.push(("job, dead", cli(&q, &["job", &id_text]).await.ok().to_owned()));

    for (command, out) in &outputs {
        assert!(!out.contains(SECRET), "`{command}` shows the redacted value:\n{out}");
        assert!(out.contains(&id_text), "`{command}` shows the job:\n{out}");
        if !command.starts_with("dead list") || command.ends_with("--json") {
            assert!(out.contains("quarterly rotation") && out.contains(REDACTED), "`{command}`:\n{out}");
        }
    }
}
