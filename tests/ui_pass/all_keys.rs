//! Every key of the attribute, read back through the `Job` constants and
//! the registered descriptor.
use std::time::Duration;

use jobs_core::prelude::*;

/// Sends the welcome mail.
#[job(
    queue = "email.outbound",
    priority = "critical",
    retries = 7,
    timeout = "1m 30s",
    unique_for = "10m",
    expires = "15m",
    name = "mail:send_welcome-v2",
    crate = ::jobs_core
)]
pub async fn send_welcome_email(ctx: JobContext, to: String) -> Result<(), JobError> {
    assert_eq!(ctx.job_name(), "mail:send_welcome-v2");
    assert!(to.contains('@'));
    Ok(())
}

#[job]
async fn defaults() -> Result<(), JobError> {
    Ok(())
}

#[job(priority = "low", timeout = "250ms", retries = 0, sandbox)]
async fn low() -> Result<(), JobError> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(SendWelcomeEmail::NAME, "mail:send_welcome-v2");
    assert_eq!(SendWelcomeEmail::QUEUE, "email.outbound");
    assert_eq!(SendWelcomeEmail::PRIORITY, Priority::Critical);
    assert_eq!(SendWelcomeEmail::MAX_RETRIES, Some(7));
    assert_eq!(SendWelcomeEmail::TIMEOUT, Some(Duration::from_secs(90)));
    assert_eq!(SendWelcomeEmail::UNIQUE_FOR, Some(Duration::from_secs(600)));
    assert_eq!(SendWelcomeEmail::EXPIRES, Some(Duration::from_secs(900)));

    assert_eq!(Defaults::NAME, "defaults");
    assert_eq!(Defaults::QUEUE, "default");
    assert_eq!(Defaults::PRIORITY, Priority::Normal);
    assert_eq!(Defaults::MAX_RETRIES, None);
    assert_eq!(Defaults::TIMEOUT, None);
    assert_eq!(Defaults::UNIQUE_FOR, None);
    assert_eq!(Defaults::EXPIRES, None);

    assert_eq!(Low::PRIORITY, Priority::Low);
    assert_eq!(Low::TIMEOUT, Some(Duration::from_millis(250)));
    assert_eq!(Low::MAX_RETRIES, Some(0));

    // The function stays callable as written.
    send_welcome_email(JobContext::for_test("mail:send_welcome-v2"), "ann@example.com".into()).await.unwrap();

    let d = jobs_core::backend::descriptors().find(|d| d.name == "mail:send_welcome-v2").expect("registered");
    assert_eq!(d.queue, "email.outbound");
    assert_eq!(d.priority, Priority::Critical);
    assert_eq!(d.max_retries, Some(7));
    assert_eq!(d.timeout, Some(Duration::from_secs(90)));
    assert_eq!(d.unique_for, Some(Duration::from_secs(600)));
    assert_eq!(d.expires, Some(Duration::from_secs(900)));
    assert_eq!(d.cron, None);
    assert!(d.type_name.ends_with("::SendWelcomeEmail"), "{}", d.type_name);
    assert!(d.file.ends_with("all_keys.rs"), "{}", d.file);
    assert_eq!(d.line, 18);

    // The run glue decodes the payload and passes the context.
    let ctx = JobContext::for_test("mail:send_welcome-v2");
    let out = (d.run)(ctx, jobs_core::backend::PayloadFormat::Json, br#"{"to":"ann@example.com"}"#).await.unwrap();
    assert_eq!(out, None);
    // `check` returns the canonical payload.
    assert_eq!((d.check)(br#"{ "to" : "bob@example.com" }"#).unwrap(), br#"{"to":"bob@example.com"}"#.to_vec());
    assert!((d.check)(br#"{"too":1}"#).is_err());

    let names: Vec<_> = jobs_core::backend::descriptors().map(|d| d.name).collect();
    assert!(names.contains(&"defaults") && names.contains(&"low"), "{names:?}");
    let sandboxed = |name: &str| jobs_core::backend::descriptors().find(|d| d.name == name).map(|d| d.sandbox);
    assert_eq!(sandboxed("low"), Some(true));
    assert_eq!(sandboxed("defaults"), Some(false));
}
