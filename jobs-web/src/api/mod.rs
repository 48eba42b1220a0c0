//! The JSON admin API under `/api`, which the dashboard's pages use: reads
//! for everyone who can reach the server (or only with the admin token, see
//! [`WebState::require_token_for_reads`]), actions only with the admin token
//! (see [`actions`] and the crate README for every request and response).

mod actions;
mod events;
mod flows;
mod read;
mod views;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{middleware, Json, Router};
use jobs_core::JobId;
use serde::Serialize;

use crate::state::WebState;

/// Why an API request failed; answered as `{"error": "...", "code": "..."}`
/// with a matching status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A malformed path or query parameter (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// No such job, schedule or endpoint (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// An action while no admin token is configured (403 `read_only`).
    #[error(
        "this dashboard is read-only: no admin token is configured on the server \
         (jobs_web::WebState::admin_token), so every action is refused"
    )]
    ReadOnly,
    /// A read while reads need the token and none is configured (403
    /// `reads_closed`).
    #[error(
        "reads need the admin token here (jobs_web::WebState::require_token_for_reads), but none is configured \
         on the server (jobs_web::WebState::admin_token), so every read is refused"
    )]
    ReadsClosed,
    /// An action, or a read that needs the token, without the right token
    /// (401 `unauthorized`).
    #[error("missing or wrong admin token: send the header `Authorization: Bearer <token>`")]
    Unauthorized,
    /// An action whose `Origin` is another site's (403 `cross_origin`).
    #[error("cross-origin request refused: origin `{0}` is not this server's")]
    CrossOrigin(String),
    /// A request addressed to a host this server does not serve (421
    /// `host_not_allowed`; see [`crate::host`]).
    #[error(
        "host `{0}` is not served here: use localhost or an IP address, or allow this name on the server \
         (jobs_web::WebState::allow_host); other names are refused to keep DNS rebinding out"
    )]
    HostNotAllowed(String),
    /// A request body larger than [`MAX_BODY`] (413 `payload_too_large`).
    #[error("request body of {0} bytes refused: the API takes at most {MAX_BODY} bytes")]
    PayloadTooLarge(u64),
    /// What the backend answered (status by kind, see [`ApiError::status`]).
    #[error(transparent)]
    Backend(#[from] jobs_core::Error),
}

pub(crate) use events::MAX_STREAMS as MAX_EVENT_STREAMS;

/// The largest request body the API accepts. Its actions take none; a
/// larger `Content-Length` is refused before anything else runs.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The longest error message an answer carries, in characters: messages
/// that quote their input (a malformed id, a payload's decode error) are cut
/// there, so a request can never make the server echo megabytes.
pub(crate) const MAX_ERROR_CHARS: usize = 1024;

/// The JSON error body.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
    code: &'static str,
}

impl ApiError {
    fn status(&self) -> (StatusCode, &'static str) {
        use jobs_core::Error as E;
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::ReadOnly => (StatusCode::FORBIDDEN, "read_only"),
            ApiError::ReadsClosed => (StatusCode::FORBIDDEN, "reads_closed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::CrossOrigin(_) => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::HostNotAllowed(_) => (StatusCode::MISDIRECTED_REQUEST, "host_not_allowed"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Backend(e) => match e {
                E::NotFound(_) | E::ScheduleNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                E::InvalidState { .. } => (StatusCode::CONFLICT, "invalid_state"),
                E::InvalidQueueName(_) | E::InvalidArgument(_) | E::Validation(_) => {
                    (StatusCode::BAD_REQUEST, "bad_request")
                }
                E::Backend(_) => (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable"),
                E::Flow(f) => match **f {
                    jobs_core::FlowError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                    jobs_core::FlowError::Unsupported => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
                    jobs_core::FlowError::InvalidId(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    _ => (StatusCode::CONFLICT, "invalid_state"),
                },
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        // A backend without workflows is how it is built, not a failure.
        if status.is_server_error() && code != "unsupported" {
            tracing::warn!(error = %self, "admin API request failed");
        }
        let error = views::bounded(&self.to_string(), MAX_ERROR_CHARS);
        let mut resp = (status, Json(ErrorBody { error, code })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"jobs\""));
        }
        resp
    }
}

/// The routes under `/api`.
pub(crate) fn routes(state: &WebState) -> Router<WebState> {
    let actions = Router::new()
        .route("/api/jobs/{id}/retry", post(actions::retry))
        .route("/api/jobs/{id}/cancel", post(actions::cancel))
        .route("/api/queues/{queue}/retry-dead", post(actions::retry_all_dead))
        .route("/api/queues/{queue}/purge-dead", post(actions::purge_dead))
        .route("/api/queues/{queue}/pause", post(actions::pause_queue))
        .route("/api/queues/{queue}/resume", post(actions::resume_queue))
        .route("/api/queues/{queue}/limits", post(actions::set_limits))
        .route("/api/queues/{queue}/breaker", post(actions::set_breaker))
        .route("/api/schedules/{name}/pause", post(actions::pause_schedule))
        .route("/api/schedules/{name}/resume", post(actions::resume_schedule))
        .route("/api/schedules/{name}/run", post(actions::run_schedule))
        .route("/api/schedules/{name}/remove", post(actions::remove_schedule))
        .route("/api/flows/{id}/cancel", post(flows::cancel))
        .route_layer(middleware::from_fn_with_state(state.clone(), actions::require_admin));
    let reads = Router::new()
        .route("/api/stats", get(read::stats))
        .route("/api/throughput", get(read::throughput_all))
        .route("/api/queues/{queue}/jobs", get(read::list_jobs))
        .route("/api/queues/{queue}/throughput", get(read::throughput))
        .route("/api/queues/{queue}/limits", get(read::limits))
        .route("/api/queues/{queue}/groups", get(read::groups))
        .route("/api/queues/{queue}/events", get(events::events))
        .route("/api/jobs/{id}", get(read::job))
        .route("/api/workers", get(read::workers))
        .route("/api/schedules", get(read::schedules))
        .route("/api/flows", get(flows::list))
        .route("/api/flows/{id}", get(flows::show))
        .route_layer(middleware::from_fn_with_state(state.clone(), read::require_reader));
    Router::new()
        .route("/api/auth", get(read::auth))
        .merge(reads)
        .merge(actions)
        .route("/api/{*rest}", any(unknown))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::map_response(no_store))
}

/// Refuses a request whose declared body is larger than [`MAX_BODY`] (413),
/// before authentication and before any handler.
async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY as u64 => ApiError::PayloadTooLarge(n).into_response(),
        _ => next.run(req).await,
    }
}

/// Every API answer is live data: never cached, never sniffed.
async fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

async fn unknown() -> ApiError {
    ApiError::NotFound("no such API endpoint (see the jobs-web README for the list)".to_owned())
}

/// A queue name from the path, checked.
fn queue_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(queue) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    jobs_core::validate_queue_name(&queue)?;
    Ok(queue)
}

/// A job id from the path, parsed.
fn job_param(path: Result<Path<String>, PathRejection>) -> Result<JobId, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(id.parse()?)
}

/// A query string, parsed.
fn query_param<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(e.body_text()))
}
