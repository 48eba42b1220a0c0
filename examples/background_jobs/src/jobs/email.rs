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
use crate::env::{self, AppEnv};
use crate::mail::{self, Delivery};

/// Sends the welcome mail to a user who just signed up.
#[job(queue = "email", priority = "high", retries = 5, timeout = "60s")]
pub async fn send_welcome_email(
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
) -> Result<Delivery, JobError> {
    let env = env::current()?;
    let values = context! { username => &username, ..common(&env) };
    deliver(&env, &ctx, &to, Some(&username), "welcome", values).await
}

/// Sends a password-reset link (`{base_url}/reset-password?token=..`).
#[job(queue = "email", priority = "high", retries = 5, timeout = "60s")]
pub async fn send_password_reset(
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
    #[validate(pattern = "^[A-Za-z0-9_-]{16,128}$")] token: String,
    #[validate(range(min = 1, max = 1440))] valid_minutes: u32,
) -> Result<Delivery, JobError> {
    let env = env::current()?;
    // The token matches `[A-Za-z0-9_-]+` and the base URL is configured: safe
    // to write unescaped.
    let reset_url = Value::from_safe_string(format!(
        "{}/reset-password?token={token}",
        env.settings.app.email.base_url.trim_end_matches('/')
    ));
    let values = context! { username => &username, reset_url, valid_minutes, ..common(&env) };
    deliver(&env, &ctx, &to, Some(&username), "password_reset", values).await
}

/// Sends a notification mail: a title, a message and an optional link.
#[job(queue = "email", retries = 5, timeout = "60s")]
pub async fn send_notification_email(
    ctx: JobContext,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] username: String,
    #[validate(length(min = 1, max = 200))] title: String,
    #[validate(length(min = 1, max = 5000))] message: String,
    #[validate(url)] action_url: Option<String>,
) -> Result<Delivery, JobError> {
    let env = env::current()?;
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
    #[validate(pattern = "^[a-z0-9-]{1,64}$")] campaign: String,
    #[validate(length(min = 1, max = 200))] subject: String,
    #[validate(length(min = 1, max = 20000))] body: String,
    #[validate(length(min = 1, max = 10000), custom = valid_recipients)] recipients: Vec<Recipient>,
) -> Result<CampaignReport, JobError> {
    let env = env::current()?;
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
    ctx: JobContext,
    #[validate(pattern = "^[a-z0-9-]{1,64}$")] campaign: String,
    #[validate(length(min = 1, max = 200))] subject: String,
    #[validate(length(min = 1, max = 20000))] body: String,
    #[validate(email)] to: String,
    #[validate(length(min = 1, max = 64))] name: String,
) -> Result<Delivery, JobError> {
    let env = env::current()?;
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
