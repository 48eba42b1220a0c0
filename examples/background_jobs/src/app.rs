//! [`App`]: the running application — the backend chosen at run time (Redis
//! when configured, the embedded `MemoryQueue` otherwise), metrics, the
//! environment jobs run in, the worker pool and the HTTP endpoints.
//!
//! The HTTP port serves `/metrics` and `/health/*` only. The dashboard and
//! the JSON admin API show job payloads and can retry, cancel and purge
//! jobs: they are served only with `app.http.admin: true`, which needs
//! `jobs.http.admin_token`, and then every `/api/` request, reads included,
//! must carry `Authorization: Bearer <token>` (the dashboard asks for it).
//! Every route answers only requests addressed to `localhost`, an IP address
//! or a name in `jobs.http.allowed_hosts`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::config::mask_url_password;
use jobs_core::{JobMetrics, MemoryQueue, SharedQueue, WorkerHandle};
use jobs_web::axum::Router;
use jobs_web::{Thresholds, WebState};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, Settings};
use crate::env::{AppEnv, EnvError};

/// Why the application could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend could not be reached or refused a call.
    #[error("{context}: {source}")]
    Backend {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: jobs_core::Error,
    },
    /// The metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] jobs_core::metrics::MetricsError),
    /// The environment (folders, database, mail) could not be set up.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The HTTP endpoints could not be served.
    #[error(transparent)]
    Web(#[from] jobs_web::WebError),
}

fn backend(context: impl Into<String>) -> impl FnOnce(jobs_core::Error) -> AppError {
    let context = context.into();
    move |source| AppError::Backend { context, source }
}

/// Which backend the application runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// The embedded in-process queue: nothing survives the process.
    Memory,
    /// Redis at this URL (password masked).
    Redis(String),
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendKind::Memory => f.write_str("MemoryQueue (embedded; set JOBS_REDIS_URL for Redis)"),
            BackendKind::Redis(url) => write!(f, "Redis at {url}"),
        }
    }
}

/// Opens the backend the configuration names: Redis when `jobs.redis` is set
/// (or `JOBS_REDIS_URL`), else a new `MemoryQueue`.
pub async fn open_queue(settings: &Settings) -> Result<(SharedQueue, BackendKind), AppError> {
    match &settings.jobs.jobs.redis {
        None => Ok((Arc::new(MemoryQueue::new()), BackendKind::Memory)),
        Some(r) => {
            let url = mask_url_password(r.url().unwrap_or_default()).into_owned();
            let config = jobs_redis::RedisConfig::from_section(r).map_err(ConfigError::Jobs)?;
            // Routes to other servers make this a router over all of them.
            let queue =
                jobs_redis::open(&config).await.map_err(backend(format!("cannot connect to Redis at {url}")))?;
            Ok((queue, BackendKind::Redis(url)))
        }
    }
}

/// Whether and how [`App::start`] serves `/metrics` and `/health/*` (and,
/// with `app.http.admin`, the dashboard and admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// Not at all.
    Off,
    /// On `jobs.http.bind`; failing to bind is an error.
    Required,
    /// On `jobs.http.bind` if it is free; otherwise a warning (the demo:
    /// another program may hold port 8080).
    BestEffort,
    /// On this address instead (port 0: any free port).
    At(SocketAddr),
}

/// What [`App::start`] starts.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// Run a worker pool in this process.
    pub workers: bool,
    /// The pool's retry backoff base instead of `jobs.worker_pool.retry_delay`.
    pub retry_delay: Option<Duration>,
    /// The HTTP endpoints.
    pub http: Http,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions { workers: true, retry_delay: None, http: Http::Required }
    }
}

/// The running application. Stop it with [`App::shutdown`].
pub struct App {
    /// The configuration.
    pub settings: Settings,
    /// The backend, counted by the metrics when they are on.
    pub queue: SharedQueue,
    /// Which backend it is.
    pub backend: BackendKind,
    /// The metrics, when `jobs.metrics.enabled`.
    pub metrics: Option<JobMetrics>,
    /// The environment jobs run in (installed process-wide).
    pub env: Arc<AppEnv>,
    /// Where the HTTP endpoints listen, when served.
    pub http_addr: Option<SocketAddr>,
    /// Worker slots of the pool, when one runs.
    pub workers: Option<usize>,
    pool: Option<WorkerHandle>,
    web: Option<WebTask>,
}

/// The HTTP server's task and the sender that stops it.
type WebTask = (oneshot::Sender<()>, JoinHandle<Result<(), jobs_web::WebError>>);

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.backend)
            .field("http_addr", &self.http_addr)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens the backend, applies the queue policies, sets up and installs
    /// the environment, then starts the pool and the HTTP endpoints.
    pub async fn start(settings: Settings, options: StartOptions) -> Result<App, AppError> {
        let (raw, backend_kind) = open_queue(&settings).await?;
        Self::start_on(settings, raw, backend_kind, options).await
    }

    /// [`App::start`] on a backend the caller opened (tests use their own).
    pub async fn start_on(
        settings: Settings,
        raw: SharedQueue,
        backend_kind: BackendKind,
        options: StartOptions,
    ) -> Result<App, AppError> {
        let settings = settings.with_archive_dir();
        let metrics = settings.jobs.job_metrics()?;
        let queue: SharedQueue = match &metrics {
            Some(m) => Arc::new(m.instrument(raw)),
            None => raw,
        };
        // The routes first: a dashboard asked for without a token is a
        // configuration error, found before anything starts.
        let router = match options.http {
            Http::Off => None,
            _ => Some(routes(&settings, queue.clone(), metrics.clone())?),
        };
        settings.jobs.apply_queue_policies(&*queue).await.map_err(backend("cannot apply the queue policies"))?;
        let env = Arc::new(AppEnv::new(settings.clone(), queue.clone())?);
        let pool = if options.workers {
            let mut b =
                settings.jobs.pool_builder(queue.clone()).extensions(env.share()).on_dead(crate::reporter::report_dead);
            if let Some(d) = options.retry_delay {
                b = b.retry_delay(d);
            }
            if let Some(m) = &metrics {
                b = b.metrics(m);
            }
            Some(b.start().map_err(backend("cannot start the worker pool"))?)
        } else {
            None
        };
        let mut app = App {
            workers: pool.as_ref().map(|_| settings.jobs.jobs.worker_pool.worker_count),
            settings,
            queue,
            backend: backend_kind,
            metrics,
            env,
            http_addr: None,
            pool,
            web: None,
        };
        if let Some(router) = router {
            app.serve(options.http, router).await?;
        }
        Ok(app)
    }

    async fn serve(&mut self, http: Http, router: Router) -> Result<(), AppError> {
        let addr = match http {
            Http::Off => return Ok(()),
            Http::At(a) => a,
            Http::Required | Http::BestEffort => self.settings.jobs.jobs.http.bind,
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if http == Http::BestEffort => {
                tracing::warn!(
                    "not serving /metrics and /health: cannot listen on {addr}: {e} (set JOBS_HTTP_BIND to another \
                     address)"
                );
                return Ok(());
            }
            Err(source) => return Err(jobs_web::WebError::Bind { addr, source }.into()),
        };
        self.http_addr = Some(listener.local_addr().map_err(jobs_web::WebError::Serve)?);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            jobs_web::axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .map_err(jobs_web::WebError::Serve)
        });
        self.web = Some((tx, task));
        Ok(())
    }

    /// Stops the pool gracefully (running jobs get the grace period, the
    /// rest go back to the queue) and the HTTP endpoints.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        let pool = self.pool.take().map(WorkerHandle::shutdown);
        let pooled = match pool {
            Some(f) => f.await.map_err(backend("the worker pool did not shut down cleanly")),
            None => Ok(()),
        };
        self.stop_web().await;
        pooled
    }

    /// Runs until `signal` resolves (e.g. [`jobs_core::shutdown_signal`]),
    /// then shuts down as [`App::shutdown`] does. Should the pool stop
    /// taking jobs by itself first, everything is shut down all the same
    /// and the error says why.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), AppError> {
        let pooled = match self.pool.take() {
            Some(pool) => pool.run_until(signal).await.map_err(|e| match e {
                e @ jobs_core::Error::PoolStopped(_) => backend("cannot keep running")(e),
                e => backend("the worker pool did not shut down cleanly")(e),
            }),
            None => {
                signal.await;
                Ok(())
            }
        };
        self.stop_web().await;
        pooled
    }

    /// Stops the HTTP endpoints, when served.
    async fn stop_web(&mut self) {
        if let Some((stop, task)) = self.web.take() {
            let _ = stop.send(());
            if let Ok(Err(e)) = task.await {
                tracing::warn!("the HTTP server ended with an error: {e}");
            }
        }
    }
}

/// The routes the HTTP port serves: `/metrics` and `/health/*`; and with
/// `app.http.admin`, the dashboard (`/ui/`) and the admin API (`/api/`),
/// whose every request must carry the admin token, reads included (they
/// show job payloads). Each answers only requests addressed to `localhost`,
/// an IP address or a name of `jobs.http.allowed_hosts`.
pub fn routes(settings: &Settings, queue: SharedQueue, metrics: Option<JobMetrics>) -> Result<Router, AppError> {
    let http = &settings.jobs.jobs.http;
    let mut state = WebState::new(queue).thresholds(Thresholds::from_config(&settings.jobs));
    if let Some(m) = metrics {
        state = state.metrics(m);
    }
    // Checked when the configuration was loaded: each entry is a host name.
    for host in &http.allowed_hosts {
        state = state.allow_host(host);
    }
    if !settings.app.http.admin {
        return Ok(jobs_web::observability_router(state));
    }
    let token =
        http.admin_token.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| ConfigError::Invalid {
            source_name: settings.source.clone(),
            key: "app.http.admin",
            message: "serving the dashboard and admin API needs an admin token: set jobs.http.admin_token \
                      (better: JOBS_HTTP_ADMIN_TOKEN) to a long random secret"
                .into(),
        })?;
    let state = state.admin_token(token).require_token_for_reads(true);
    Ok(jobs_web::router(state))
}
