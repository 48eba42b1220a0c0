//! `background-jobs`: the example application of `jobs`. See the README.

use std::ffi::OsString;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use background_jobs::progress::Progress;
use background_jobs::{app, run_demo, App, AppEnv, BackendKind, Http, Settings, StartOptions};
use clap::{Parser, Subcommand};

/// The example application of `jobs`: email, file, cleanup and notification
/// jobs, over Redis (JOBS_REDIS_URL) or the embedded MemoryQueue.
#[derive(Debug, Parser)]
#[command(name = "background-jobs", version)]
struct Cli {
    /// YAML configuration (default: the file JOBS_CONFIG names, else the
    /// built-in config.yaml); JOBS_* and APP_* variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seed a workspace, run a mix of every kind of job, print a summary
    /// (the default). Exits 1 when a job did not end as expected.
    Demo,
    /// Run the worker pool and the HTTP endpoints until SIGINT or SIGTERM,
    /// then shut down gracefully (running jobs get the grace period).
    Worker,
    /// The operator command line (jobs-cli) on this application's backend:
    /// `jobs stats`, `jobs queues`, `jobs dead list`, `jobs --help`, ...
    #[command(disable_help_flag = true)]
    Jobs {
        /// The jobs-cli command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The worker starts this program again to run the jobs that handle
    // untrusted files (`#[job(sandbox)]`): such a process only serves them.
    if let Some(child) = jobs_core::sandbox::child() {
        return serve_sandbox(child, cli.config.as_deref());
    }
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => {
            // Failed attempts are in the summary; the pool's own log of them is noise here.
            init_tracing("warn,jobs_core::worker::exec=off");
            let report = run_demo(settings, Http::BestEffort).await?;
            report.print(&mut std::io::stdout().lock())?;
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Worker => {
            init_tracing("info");
            // The handlers first: a signal that arrives while the worker
            // starts (or right after it says so) stops it gracefully.
            let signal = jobs_core::shutdown_signal()?;
            let app = App::start(settings, StartOptions::default()).await?;
            tracing::info!(
                backend = %app.backend,
                http = ?app.http_addr,
                workers = ?app.workers,
                mail = %app.env.mailer.describe(),
                webhooks = if app.env.webhook_signer.is_some() { "signed" } else { "unsigned" },
                "worker started"
            );
            if app.backend == BackendKind::Memory {
                tracing::warn!(
                    "no Redis is configured: this worker runs only what this process enqueues (its schedules)"
                );
            }
            let progress = Progress::spawn(app.queue.clone(), Duration::from_secs(1), true);
            app.run_until(async move {
                signal.await;
                tracing::info!("shutting down: running jobs get the grace period, then go back to the queue");
                progress.stop();
            })
            .await?;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { args } => {
            init_tracing("warn");
            operate(settings, cli.config.clone(), args).await
        }
    }
}

/// Serves as a sandbox child: the sandboxed jobs take the application's
/// environment, built from the same configuration as the worker's. They
/// enqueue nothing, so it gets an in-memory queue rather than a connection
/// to the worker's backend.
fn serve_sandbox(child: jobs_core::sandbox::SandboxChild, config: Option<&std::path::Path>) -> ExitCode {
    init_tracing("warn");
    let queue: jobs_core::SharedQueue = Arc::new(jobs_core::MemoryQueue::new());
    let env = Settings::load(config).map_err(anyhow::Error::from).and_then(|settings| {
        let env = AppEnv::new(settings, queue)?;
        Ok(Arc::new(env))
    });
    match env {
        Ok(env) => child.extensions(env.share()).serve(),
        Err(e) => {
            eprintln!("error: the sandbox child cannot set up its environment: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// `background-jobs jobs ..`: jobs-cli on the backend this configuration names.
async fn operate(settings: Settings, config: Option<PathBuf>, args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let (queue, kind) = app::open_queue(&settings).await?;
    let command = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    let mut data = jobs_core::Extensions::default();
    if command == "worker" {
        // `jobs worker` runs this application's jobs: they need their environment.
        settings.jobs.apply_queue_policies(&*queue).await?;
        data = Arc::new(AppEnv::new(settings.clone(), queue.clone())?).share();
    } else if kind == BackendKind::Memory && !["", "archive"].contains(&command) && !asks_for_help(&args) {
        eprintln!(
            "warning: no Redis is configured (JOBS_REDIS_URL or jobs.redis.url): this command sees only this \
             process's own, empty in-memory queue"
        );
    }
    // `jobs worker` applies the file's queue limits again on SIGHUP.
    let reload = move || {
        Settings::load(config.as_deref())
            .map(|s| s.jobs)
            .map_err(|e| jobs_cli::CliError::Usage(format!("the configuration: {e}")))
    };
    let ctx = jobs_cli::Context::new(queue)
        .with_config(settings.jobs.clone())
        .with_extensions(data)
        .with_config_loader(reload);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut input = BufReader::new(std::io::stdin());
    let interactive = std::io::stdin().is_terminal();
    let err_is_terminal = err.is_terminal();
    let mut io = jobs_cli::Io::new(&mut out, &mut err).err_is_terminal(err_is_terminal);
    if interactive {
        io = io.interactive(&mut input);
    }
    let argv = std::iter::once(OsString::from("background-jobs jobs")).chain(args);
    Ok(ExitCode::from(jobs_cli::run(argv, ctx, &mut io).await))
}

/// Whether a jobs-cli command line only asks for help or the version.
fn asks_for_help(args: &[OsString]) -> bool {
    args.iter().any(|a| matches!(a.to_str(), Some("-h" | "--help" | "help" | "-V" | "--version")))
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The error and its causes, `: `-separated, skipping a cause whose text the
/// message already shows (some errors repeat their cause, some do not).
fn chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
