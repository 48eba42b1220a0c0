//! Email jobs on the file outbox.

use background_jobs::jobs::email::*;
use background_jobs::mail::Delivery;
use jobs_core::prelude::*;

use crate::support::{dead_after, succeeded, Harness};

/// The delivery and its `.eml` file, quoted-printable parts decoded.
fn delivered(result: serde_json::Value) -> (Delivery, String) {
    let d: Delivery = serde_json::from_value(result).expect("a Delivery");
    let path = d.path.clone().expect("the outbox file");
    let text = std::fs::read_to_string(&path).expect("the .eml file exists");
    (d, decode_quoted_printable(&text))
}

/// Undoes quoted-printable: soft line breaks and `=XX` escapes (enough to
/// read the parts of a mail; headers and boundaries pass through).
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_mail_lands_in_the_outbox_rendered() {
    let h = Harness::start(|_| {}).await;
    let id = SendWelcomeEmail::new("ann@example.com".into(), "Ann".into()).enqueue(&h.app.queue).await.expect("valid");
    let (d, eml) = delivered(succeeded(&h.finished(&id).await));
    assert_eq!(d.transport, "outbox");
    assert!(d.path.as_ref().is_some_and(|p| p.starts_with(h.path("outbox"))), "{d:?}");
    assert!(eml.contains("Subject: Welcome to Example App, Ann!"), "{eml}");
    assert!(eml.contains("To: Ann <ann@example.com>"), "{eml}");
    assert!(eml.contains(&format!("Message-ID: <{}@example.com>", id.ulid())), "{eml}");
    assert!(eml.contains("multipart/alternative"), "{eml}");
    assert!(eml.contains("your account at Example App is ready"), "the text part: {eml}");
    assert!(eml.contains("<h1>Welcome, Ann!</h1>"), "the HTML part: {eml}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_and_notification_carry_their_links() {
    let h = Harness::start(|s| s.app.email.base_url = "https://app.example.com/".into()).await;
    let q = &h.app.queue;
    let reset = request_password_reset(&h.app.env, "bo@example.com", "Bo", 15).await.expect("requested");
    let note = SendNotificationEmail::new(
        "bo@example.com".into(),
        "Bo".into(),
        "Export ready".into(),
        "Your <export> is ready.".into(),
        Some("https://app.example.com/exports/7".into()),
    )
    .enqueue(q)
    .await
    .expect("valid");
    let db = &h.app.env.db;
    let stored = db.password_reset(&db.open().expect("open"), &reset.reset_id).expect("read").expect("stored");
    let info = h.finished(&reset.job).await;
    let (_, eml) = delivered(succeeded(&info));
    assert!(eml.contains(&format!("https://app.example.com/reset-password?token={}", stored.token)), "{eml}");
    assert!(eml.contains("To: Bo <bo@example.com>"), "{eml}");
    assert!(eml.contains("works for 15 minutes"), "{eml}");
    let (_, eml) = delivered(succeeded(&h.finished(&note).await));
    assert!(eml.contains("Subject: Export ready"), "{eml}");
    assert!(eml.contains("Your <export> is ready."), "text is not escaped: {eml}");
    assert!(eml.contains("Your &lt;export&gt; is ready."), "HTML is: {eml}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_token_stays_out_of_the_payload() {
    let h = Harness::start(|_| {}).await;
    let reset = request_password_reset(&h.app.env, "ann@example.com", "Ann", 30).await.expect("requested");
    let db = &h.app.env.db;
    let token = db.password_reset(&db.open().expect("open"), &reset.reset_id).expect("read").expect("stored").token;
    // What the dashboard, the CLI and the dead-letter set show of the job.
    let info = h.finished(&reset.job).await;
    succeeded(&info);
    let shown = serde_json::to_string(&(&info.payload, &info.result, &info.attempt_log)).expect("json");
    assert!(!shown.contains(&token), "the token is in what the job shows: {shown}");
    assert_eq!(info.payload["reset_id"], reset.reset_id.as_str(), "the payload names the request: {shown}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_request_that_is_gone_or_expired_is_not_mailed() {
    let h = Harness::start(|_| {}).await;
    let q = &h.app.queue;
    let unknown =
        SendPasswordReset::new("01ARZ3NDEKTSV4RRFFQ69G5FAV".into(), "Bo".into()).enqueue(q).await.expect("valid");
    let db = &h.app.env.db;
    let old = background_jobs::db::PasswordReset::new("bo@example.com", std::time::Duration::from_secs(60), 1_000);
    db.insert_password_reset(&db.open().expect("open"), &old).expect("insert");
    let expired = SendPasswordReset::new(old.id.clone(), "Bo".into()).enqueue(q).await.expect("valid");
    assert!(dead_after(&h.finished(&unknown).await, 1).contains("no password reset request"));
    assert!(dead_after(&h.finished(&expired).await, 1).contains("has expired"));
    let e = SendPasswordReset::new("not-an-id".into(), "Bo".into()).enqueue(q).await.expect_err("invalid");
    assert!(e.to_string().contains("reset_id"), "{e}");
    assert_eq!(std::fs::read_dir(h.path("outbox")).expect("outbox").count(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_fans_out_one_mail_per_recipient() {
    let h = Harness::start(|_| {}).await;
    let people = ["a@example.com", "b@example.com", "c@example.org"];
    let recipients = people.iter().map(|e| Recipient { email: (*e).into(), name: e[..1].to_uppercase() }).collect();
    let id = SendCampaign::new("spring".into(), "Spring news".into(), "Para one.\n\nPara two.".into(), recipients)
        .enqueue(&h.app.queue)
        .await
        .expect("valid");
    let report: CampaignReport = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("a report");
    assert_eq!(report.jobs.len(), 3);
    for (child, to) in report.jobs.iter().zip(people) {
        let info = h.finished(child).await;
        assert_eq!(info.name, "send_campaign_email");
        let (_, eml) = delivered(succeeded(&info));
        assert!(eml.contains(&format!("<{to}>")), "{eml}");
        assert!(eml.contains("<p>Para two.</p>"), "{eml}");
        assert!(eml.contains("unsubscribe?campaign=spring"), "{eml}");
    }
    assert_eq!(std::fs::read_dir(h.path("outbox")).expect("outbox").count(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_are_refused_before_anything_is_written() {
    let h = Harness::start(|_| {}).await;
    let q = &h.app.queue;
    let e = SendWelcomeEmail::new("not-an-address".into(), "Ann".into()).enqueue(q).await.expect_err("invalid");
    assert!(e.to_string().contains("field `to` (email)"), "{e}");
    let bad = vec![Recipient { email: "x@".into(), name: "X".into() }];
    let e = SendCampaign::new("c".into(), "s".into(), "b".into(), bad).enqueue(q).await.expect_err("invalid");
    assert!(e.to_string().contains("not mail addresses: x@"), "{e}");
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.queue("email").pending, 0, "nothing was written");
    h.stop().await;
}
