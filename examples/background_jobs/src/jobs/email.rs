//! Email jobs: welcome, password reset, notification, and a bulk campaign
//! that fans out one job per recipient. Each renders `templates/NAME.txt` and
//! `NAME.html` and sends a text + HTML mail through the configured transport
//! (SMTP, or `.eml` files in the outbox). The job's result is the
//! [`Delivery`]: the outbox file, or the SMTP server's reply.
//!
//! Failures: a template error, a bad address or a 5xx SMTP reply is
//! permanent; a 4xx reply, a timeout or a connection error is retried. The
//! Message-ID is derived from the job id, so a retry after a lost reply sends
//! the same message again, not a new one.

use std::time::Duration;

use jobs_core::prelude::*;
use jobs_core::JobQueue;
use lettre::message::Mailbox;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::classify;
use crate::env::AppEnv;
use crate::mail::{self, Delivery};

/// Sends the welcome mail to a user who just signed up.
#[job(queue = "email", priority = "high", retries = 5, timeout = "60s")]
pub async fn send_welcome_email(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
) -> Result<Delivery, JobError> {
    let values = context! { username => &username, ..common(&env) };
    deliver(&env, &ctx, &to, Some(&username), "welcome", values).await
}

/// Sends a password-reset link (`{base_url}/reset-password?token=..`) for
/// the request `reset_id` of the database, to the address it was made for.
/// The token never enters the payload (payloads are shown by the dashboard,
/// the CLI, logs and the dead-letter set): the job reads it from the
/// database by id. Create the request and the job with
/// [`request_password_reset`]. A request that is gone or has expired fails
/// permanently: a dead link is not worth mailing.
#[job(queue = "email", priority = "high", retries = 5, timeout = "60s")]
pub async fn send_password_reset(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")] reset_id: String,
    #[validate(length(min = 1, max = 64))] username: String,
) -> Result<Delivery, JobError> {
    let db = env.db.clone();
    let id = reset_id.clone();
    let reset = super::blocking(move || Ok(db.password_reset(&db.open()?, &id)?)).await?.ok_or_else(|| {
        JobError::permanent(format!(
            "no password reset request `{reset_id}` in the database: it was never created or has been deleted"
        ))
    })?;
    let left = reset.expires_at.saturating_sub(crate::db::now());
    if left <= 0 {
        return Err(JobError::permanent(format!(
            "password reset request `{reset_id}` has expired: not mailing a dead link"
        )));
    }
    // Whole minutes, rounded up: the link works at least this long.
    let valid_minutes = (left + 59) / 60;
    // The token comes from the database, and the base URL from the
    // configuration; the token is percent-encoded all the same, so that a
    // row written by other code cannot break out of the link.
    let reset_url = Value::from_safe_string(format!(
        "{}/reset-password?token={}",
        env.settings.app.email.base_url.trim_end_matches('/'),
        url_encode(&reset.token)
    ));
    let values = context! { username => &username, reset_url, valid_minutes, ..common(&env) };
    deliver(&env, &ctx, &reset.email, Some(&username), "password_reset", values).await
}

/// Why a password reset could not be requested.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The address does not parse.
    #[error("`{0}` is not a mail address")]
    Address(String),
    /// The request could not be stored.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The database task did not finish.
    #[error("the database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The job was refused (invalid) or the backend failed.
    #[error("cannot enqueue the password-reset mail: {0}")]
    Enqueue(#[from] jobs_core::Error),
}

/// A stored password-reset request and the job that mails its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequested {
    /// The request's id in the database (what the job's payload carries).
    pub reset_id: String,
    /// The [`SendPasswordReset`] job.
    pub job: JobId,
}

/// Creates a password-reset request for `to` (a fresh random token, valid
/// for `valid_minutes`) in the database, and enqueues the job that mails its
/// link; the payload carries the request's id, never the token.
pub async fn request_password_reset(
    env: &AppEnv,
    to: &str,
    username: &str,
    valid_minutes: u32,
) -> Result<ResetRequested, ResetError> {
    to.parse::<lettre::Address>().map_err(|_| ResetError::Address(to.to_owned()))?;
    let reset = crate::db::PasswordReset::new(to, Duration::from_secs(u64::from(valid_minutes) * 60), crate::db::now());
    let reset_id = reset.id.clone();
    let db = env.db.clone();
    tokio::task::spawn_blocking(move || db.insert_password_reset(&db.open()?, &reset)).await??;
    let job = SendPasswordReset::new(reset_id.clone(), username.to_owned()).enqueue(&env.queue).await?;
    Ok(ResetRequested { reset_id, job })
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ . ~` (RFC 3986 unreserved).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a notification mail: a title, a message and an optional link.
#[job(queue = "email", retries = 5, timeout = "60s")]
pub async fn send_notification_email(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
    #[validate(length(min = 1, max = 200))] title: String,
    #[validate(length(min = 1, max = 5000))] message: String,
    #[validate(url)] action_url: Option<String>,
) -> Result<Delivery, JobError> {
    let values = context! { username => &username, title, message, action_url, ..common(&env) };
    deliver(&env, &ctx, &to, Some(&username), "notification", values).await
}

/// One recipient of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Address.
    pub email: String,
    /// Name used in the greeting.
    pub name: String,
}

/// What a campaign fan-out enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: String,
    /// One mail job per recipient, in recipient order.
    pub jobs: Vec<JobId>,
}

/// A bulk campaign: enqueues one [`SendCampaignEmail`] per recipient in one
/// batch (one round trip), each unique for a day, so a retry of this job
/// does not mail anyone twice.
#[job(queue = "email", priority = "low", retries = 3, timeout = "5m")]
pub async fn send_campaign(
    env: Data<AppEnv>,
    #[validate(pattern = "^[a-z0-9-]{1,64}$")] campaign: String,
    #[validate(length(min = 1, max = 200))] subject: String,
    #[validate(length(min = 1, max = 20000))] body: String,
    #[validate(length(min = 1, max = 10000), custom = valid_recipients)] recipients: Vec<Recipient>,
) -> Result<CampaignReport, JobError> {
    let jobs = recipients
        .into_iter()
        .map(|r| {
            SendCampaignEmail::new(campaign.clone(), subject.clone(), body.clone(), r.email, r.name)
                .into_new_job(JobOptions::new().unique_for(Duration::from_secs(24 * 3600)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(JobError::permanent)?;
    let jobs = env.queue.enqueue_many(jobs).await?;
    tracing::info!(campaign, mails = jobs.len(), "campaign fanned out");
    Ok(CampaignReport { campaign, jobs })
}

/// One mail of a campaign (enqueued by [`send_campaign`]).
#[job(queue = "email", priority = "low", retries = 5, timeout = "60s")]
pub async fn send_campaign_email(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(pattern = "^[a-z0-9-]{1,64}$")] campaign: String,
    #[validate(length(min = 1, max = 200))] subject: String,
    #[validate(length(min = 1, max = 20000))] body: String,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] name: String,
) -> Result<Delivery, JobError> {
    let values = context! { campaign, subject, body, to => &to, name => &name, ..common(&env) };
    deliver(&env, &ctx, &to, Some(&name), "campaign", values).await
}

#[allow(clippy::ptr_arg)] // `custom` validators take `&T` of the field's type.
fn valid_recipients(recipients: &Vec<Recipient>) -> Result<(), String> {
    let bad: Vec<&str> =
        recipients.iter().filter(|r| r.email.parse::<lettre::Address>().is_err()).map(|r| r.email.as_str()).collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("not mail addresses: {}", bad.join(", ")))
    }
}

/// Values every template gets.
fn common(env: &AppEnv) -> Value {
    let app_name = env.from.name.clone().unwrap_or_else(|| "Example App".into());
    // The base URL comes from the configuration, not from a payload: trusted,
    // so not HTML-escaped (minijinja would write its slashes as `&#x2f;`).
    let base_url = Value::from_safe_string(env.settings.app.email.base_url.trim_end_matches('/').to_owned());
    context! { app_name, base_url }
}

/// Renders `template` with `values`, and sends it to `to`.
async fn deliver(
    env: &AppEnv,
    ctx: &JobContext,
    to: &str,
    name: Option<&str>,
    template: &str,
    values: Value,
) -> Result<Delivery, JobError> {
    let rendered = env.templates.render(template, values).map_err(JobError::permanent)?;
    let address = mail::mailbox(to).map_err(JobError::permanent)?.email;
    let to = Mailbox::new(name.map(str::to_owned), address);
    let message =
        mail::compose(&env.from, to, rendered, &ctx.job_id().ulid().to_string()).map_err(JobError::permanent)?;
    let delivery = env.mailer.send(message).await.map_err(|e| {
        let permanent = e.is_permanent();
        classify(e, permanent)
    })?;
    tracing::info!(job = %ctx.job_id(), template, transport = %delivery.transport, "mail sent");
    Ok(delivery)
}
