//! The validation that `#[job]` generates: which values pass, which fail,
//! with which exact messages, and that an invalid payload is never written.

// In a test a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use jobs_core::prelude::*;
use jobs_core::{FieldError, ValidationError};

#[job(queue = "email")]
async fn send_welcome_email(
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 8))] username: String,
) -> Result<(), JobError> {
    let _ = (ctx, to, username);
    Ok(())
}

fn is_slug(s: &str) -> Result<(), String> {
    if s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        Ok(())
    } else {
        Err(format!("`{s}` is not a slug"))
    }
}

#[job]
async fn publish(
    #[validate(url)] link: String,
    #[validate(range(min = 1, max = 5))] stars: u8,
    #[validate(range(min = -1.5, max = 1.5))] score: f64,
    #[validate(non_empty, length(max = 2))] tags: BTreeSet<String>,
    #[validate(pattern = r"^\d{4}-\d{2}-\d{2}$")] date: String,
    #[validate(custom = is_slug)] slug: String,
    #[validate(email)]
    #[validate(length(max = 20))]
    reply_to: Option<String>,
) -> Result<(), JobError> {
    let _ = (link, stars, score, tags, date, slug, reply_to);
    Ok(())
}

fn welcome(to: &str, username: &str) -> SendWelcomeEmail {
    SendWelcomeEmail::new(to.into(), username.into())
}

fn publish_ok() -> Publish {
    Publish {
        link: "https://example.org/post/1".into(),
        stars: 3,
        score: 0.0,
        tags: BTreeSet::from(["rust".to_owned()]),
        date: "2024-05-01".into(),
        slug: "hello-world".into(),
        reply_to: None,
    }
}

fn field_errors(r: Result<(), ValidationError>) -> Vec<(String, String, String)> {
    r.err()
        .map(|e| e.errors)
        .unwrap_or_default()
        .into_iter()
        .map(|FieldError { field, rule, message }| (field, rule, message))
        .collect()
}

fn err(field: &str, rule: &str, message: &str) -> (String, String, String) {
    (field.into(), rule.into(), message.into())
}

#[test]
fn accepts_valid_payloads() {
    assert_eq!(welcome("ann@example.com", "Ann").validate(), Ok(()));
    assert_eq!(welcome("a.b+c@sub.example.org", "12345678").validate(), Ok(()));
    assert_eq!(publish_ok().validate(), Ok(()));
    let edge = Publish { stars: 5, score: -1.5, reply_to: Some("x@example.com".into()), ..publish_ok() };
    assert_eq!(edge.validate(), Ok(()));
}

#[test]
fn rejects_with_exact_messages() {
    assert_eq!(
        field_errors(welcome("ann", "Ann").validate()),
        vec![err("to", "email", "`ann` is not an email address")]
    );
    assert_eq!(
        field_errors(welcome("ann@example.com", "").validate()),
        vec![err("username", "length", "has 0 characters, at least 1 required")]
    );
    // Characters, not bytes: 9 characters of 2 bytes each.
    assert_eq!(
        field_errors(welcome("ann@example.com", "ééééééééé").validate()),
        vec![err("username", "length", "has 9 characters, at most 8 allowed")]
    );
    let cases: Vec<(Publish, (String, String, String))> = vec![
        (
            Publish { link: "not a url".into(), ..publish_ok() },
            err("link", "url", "`not a url` is not an absolute URL"),
        ),
        (Publish { stars: 0, ..publish_ok() }, err("stars", "range", "0 is not between 1 and 5")),
        (Publish { score: 2.0, ..publish_ok() }, err("score", "range", "2 is not between -1.5 and 1.5")),
        (Publish { tags: BTreeSet::new(), ..publish_ok() }, err("tags", "non_empty", "must not be empty")),
        (
            Publish { tags: ["a", "b", "c"].map(String::from).into(), ..publish_ok() },
            err("tags", "length", "has 3 items, at most 2 allowed"),
        ),
        (
            Publish { date: "01.05.2024".into(), ..publish_ok() },
            err("date", "pattern", r"`01.05.2024` does not match `^\d{4}-\d{2}-\d{2}$`"),
        ),
        (Publish { slug: "Hello World".into(), ..publish_ok() }, err("slug", "custom", "`Hello World` is not a slug")),
        (
            Publish { reply_to: Some("nobody".into()), ..publish_ok() },
            err("reply_to", "email", "`nobody` is not an email address"),
        ),
    ];
    for (job, expected) in cases {
        assert_eq!(field_errors(job.validate()), vec![expected]);
    }
}

#[test]
fn reports_every_broken_rule_in_field_order() {
    let job = Publish {
        stars: 9,
        slug: "A".into(),
        reply_to: Some("averyveryverylongname-without-at-sign".into()),
        ..publish_ok()
    };
    let e = job.validate().unwrap_err();
    assert_eq!(
        field_errors(Err(e.clone())),
        vec![
            err("stars", "range", "9 is not between 1 and 5"),
            err("slug", "custom", "`A` is not a slug"),
            err("reply_to", "email", "`averyveryverylongname-without-at-sign` is not an email address"),
            err("reply_to", "length", "has 37 characters, at most 20 allowed"),
        ]
    );
    assert_eq!(
        e.to_string(),
        "invalid job payload: field `stars` (range): 9 is not between 1 and 5; field `slug` (custom): `A` is not a \
         slug; field `reply_to` (email): `averyveryverylongname-without-at-sign` is not an email address; field \
         `reply_to` (length): has 37 characters, at most 20 allowed"
    );
}

#[tokio::test]
async fn enqueue_refuses_invalid_payloads_and_writes_nothing() {
    let queue = MemoryQueue::new();
    let refused = welcome("not-an-email", "Ann").enqueue(&queue).await.unwrap_err();
    match &refused {
        Error::Validation(v) => {
            assert_eq!(field_errors(Err(v.clone())), vec![err("to", "email", "`not-an-email` is not an email address")])
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(refused.to_string(), "invalid job payload: field `to` (email): `not-an-email` is not an email address");
    assert!(matches!(
        Publish { stars: 0, ..publish_ok() }.enqueue_with(&queue, JobOptions::new().queue("other")).await,
        Err(Error::Validation(_))
    ));
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.queue("email").pending, 0);
    assert_eq!(stats.queue("default").pending, 0);
    assert_eq!(stats.queue("other").pending, 0);

    // A valid payload goes through, on the attribute's queue.
    let id = welcome("ann@example.com", "Ann").enqueue(&queue).await.unwrap();
    assert_eq!(id.queue(), "email");
    assert_eq!(queue.stats().await.unwrap().queue("email").pending, 1);
    let id = publish_ok().enqueue(&queue).await.unwrap();
    assert_eq!(id.queue(), "default");
}
