//! Notification jobs: webhooks POSTed as JSON to `app.notify.webhook_url`
//! (or a URL the job names, e.g. a subscriber's endpoint), over HTTPS or
//! HTTP.
//!
//! The body is `{"id", "event", "attempt", "occurred_at", "data"}`; the
//! headers `X-Webhook-Id` (the job id: the same on every retry, so a
//! receiver can drop duplicates — delivery is at least once),
//! `X-Webhook-Attempt`, and, with `app.notify.signing_secret` set,
//! `X-Webhook-Signature: t=<unix seconds>,v1=<hex>`: the HMAC-SHA256 of
//! `"{t}.{body}"`, signed anew by each attempt (see
//! [`crate::http::signature`] for how a receiver checks it). A 2xx answer
//! is success; a 4xx answer is permanent (the receiver refuses this event;
//! retrying will not change that), except 408 and 429; a 5xx answer, a
//! timeout, a connection or TLS error is retried with the pool's backoff.
//!
//! A URL whose host is, or resolves to, a loopback, private, link-local or
//! other non-public address is refused before any connection (permanent),
//! unless `app.notify.allow_private` or `app.notify.allow` allows it, and
//! so is a public one when `app.notify.allow_public` is off; see
//! [`crate::http`]. Redirects are not followed (a 3xx answer is permanent).

use std::time::UNIX_EPOCH;

use jobs_core::prelude::*;
use serde::{Deserialize, Serialize};

use super::classify;
use crate::env::AppEnv;
use crate::http::signature;

/// A delivered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The URL (password masked).
    pub url: String,
    /// The receiver's status.
    pub status: u16,
    /// The attempt that got through.
    pub attempt: u32,
}

/// POSTs the event `event` with `data` to `url`, or to the configured
/// webhook URL when `url` is `None`.
#[job(queue = "notifications", priority = "high", retries = 5, timeout = "30s")]
pub async fn send_webhook(
    env: Data<AppEnv>,
    ctx: JobContext,
    #[validate(pattern = "^[a-z][a-z0-9_.-]{0,63}$")] event: String,
    data: serde_json::Value,
    #[validate(url)] url: Option<String>,
) -> Result<WebhookDelivery, JobError> {
    let url = url.or_else(|| env.settings.app.notify.webhook_url.clone()).ok_or_else(|| {
        JobError::permanent("no webhook URL: the job names none and app.notify.webhook_url is not set")
    })?;
    let occurred_at = ctx.enqueued_at().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let body = serde_json::json!({
        "id": ctx.job_id().to_string(),
        "event": event,
        "attempt": ctx.attempt(),
        "occurred_at": occurred_at,
        "data": data,
    });
    let body = serde_json::to_vec(&body).map_err(JobError::permanent)?;
    let mut headers =
        vec![("x-webhook-id", ctx.job_id().to_string()), ("x-webhook-attempt", ctx.attempt().to_string())];
    if let Some(signer) = &env.webhook_signer {
        headers.push((signature::HEADER, signer.sign_now(&body)));
    }
    let reply = env.http.post_json(&url, &headers, body).await.map_err(|e| {
        let permanent = e.is_permanent();
        classify(e, permanent)
    })?;
    tracing::info!(job = %ctx.job_id(), event, status = reply.status.as_u16(), "webhook delivered");
    Ok(WebhookDelivery {
        url: jobs_core::config::mask_url_password(&url).into_owned(),
        status: reply.status.as_u16(),
        attempt: ctx.attempt(),
    })
}
