#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod api;
mod cache;
mod health;
mod host;
mod state;
mod ui;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};

pub use health::{JobsHealth, PoolHealth, QueueHealth, QueuesHealth, Status, WorkersHealth};
pub use jobs_core::config::DEFAULT_HTTP_BIND as DEFAULT_BIND;
pub use state::{QueueLimits, Thresholds, WebState, DEFAULT_STATS_TTL};
pub use ui::CONTENT_SECURITY_POLICY;

/// The `axum` these routes are built with, to mount them in your own app.
pub use axum;

/// Why the ready server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Every route: [`observability_router`]'s and [`admin_router`]'s, ready to
/// serve or to merge into your own router
/// (`Router::new().merge(jobs_web::router(state))`, or `.nest("/jobs", ..)`).
pub fn router(state: WebState) -> Router {
    let routes = observability_routes().merge(admin_routes(&state));
    host_checked(routes, state)
}

/// `/metrics`, `/health/jobs`, `/health/queues` and `/health/workers` alone:
/// for a port that Prometheus and the orchestrator reach but operators'
/// browsers should not (the dashboard shows job payloads).
pub fn observability_router(state: WebState) -> Router {
    host_checked(observability_routes(), state)
}

/// The dashboard (`/ui/`) and the JSON admin API it uses (`/api/...`) alone.
/// Read-only unless the state has an admin token ([`WebState::admin_token`]);
/// reads open to everyone who reaches it unless the state requires the token
/// for them too ([`WebState::require_token_for_reads`]).
pub fn admin_router(state: WebState) -> Router {
    let routes = admin_routes(&state);
    host_checked(routes, state)
}

/// `routes` behind the `Host` check (outermost, so that a request for a
/// host this server does not serve reaches nothing else).
fn host_checked(routes: Router<WebState>, state: WebState) -> Router {
    routes.layer(middleware::from_fn_with_state(state.clone(), host::check)).with_state(state)
}

fn observability_routes() -> Router<WebState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/jobs", get(health::jobs))
        .route("/health/queues", get(health::queues))
        .route("/health/workers", get(health::workers))
}

fn admin_routes(state: &WebState) -> Router<WebState> {
    api::routes(state).merge(ui::routes())
}

/// `GET /metrics`: the Prometheus text exposition. Queue sizes are read
/// from the backend through the state's short cache first; when the backend
/// is unreachable the rest is still served, with `jobs_backend_up 0`.
async fn metrics(State(state): State<WebState>) -> Response {
    let Some(m) = state.inner.metrics.clone() else {
        return (StatusCode::NOT_FOUND, "metrics are disabled (jobs.metrics.enabled: false)\n").into_response();
    };
    if let Err(e) = state.stats().await {
        tracing::warn!(error = %e, "cannot read queue sizes for /metrics");
    }
    match m.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, jobs_core::metrics::prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// A bound HTTP server for every route of [`router`]: bind first (and learn the port
/// when binding port 0), then run.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    state: WebState,
}

impl Server {
    /// Binds `addr` (use [`DEFAULT_BIND`], `127.0.0.1:8080`, unless you mean
    /// to expose the endpoints beyond this host). Whatever the address,
    /// requests are served only when addressed to `localhost`, an IP address
    /// or a name allowed with [`WebState::allow_host`].
    pub async fn bind(addr: SocketAddr, state: WebState) -> Result<Self, WebError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| WebError::Bind { addr, source })?;
        Ok(Server { listener, state })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, WebError> {
        self.listener.local_addr().map_err(WebError::Serve)
    }

    /// Serves until an I/O error.
    pub async fn run(self) -> Result<(), WebError> {
        axum::serve(self.listener, router(self.state)).await.map_err(WebError::Serve)
    }

    /// Serves until `shutdown` resolves, then finishes the requests in
    /// flight and returns.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), WebError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        axum::serve(self.listener, router(self.state)).with_graceful_shutdown(shutdown).await.map_err(WebError::Serve)
    }
}

/// Binds `bind` and serves the endpoints until an I/O error: the ready server.
pub async fn serve(bind: SocketAddr, state: WebState) -> Result<(), WebError> {
    Server::bind(bind, state).await?.run().await
}
