//! The commands: [`execute`] runs a parsed [`Cli`] against a [`Context`].

pub(crate) mod archive;
mod control;
mod dead;
mod enqueue;
mod events;
mod flows;
mod inspect;
mod schedules;
mod worker;

use std::future::Future;

use jobs_core::backend::BoxFuture;
use jobs_core::config::Config;
use jobs_core::SharedQueue;
use serde::Serialize;

use crate::args::{Cli, Command, DeadCommand, FlowCommand, QueueCommand, ScheduleCommand};
use crate::backend::Backend;
use crate::error::CliError;
use crate::io::Io;

/// What a command runs against: the queue, the configuration (worker pool
/// settings, queue policies) and what ends `worker`.
pub struct Context {
    pub(crate) queue: SharedQueue,
    pub(crate) config: Config,
    pub(crate) shutdown: Option<BoxFuture<'static, ()>>,
    pub(crate) data: jobs_core::Extensions,
    pub(crate) reload: Option<ConfigLoader>,
    pub(crate) reloads: Option<tokio::sync::mpsc::Receiver<()>>,
}

/// Reads the configuration again (for `worker`'s reloads).
pub(crate) type ConfigLoader = Box<dyn Fn() -> Result<Config, CliError> + Send + Sync>;

impl Context {
    /// Commands on `queue`, with the default configuration; `worker` stops
    /// on SIGINT or SIGTERM.
    pub fn new(queue: SharedQueue) -> Self {
        Context {
            queue,
            config: Config::default(),
            shutdown: None,
            data: jobs_core::Extensions::default(),
            reload: None,
            reloads: None,
        }
    }

    /// Uses this configuration (`worker` takes its pool settings and queues
    /// from it, and applies its queue policies).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// `worker` stops when `signal` resolves, instead of on SIGINT or
    /// SIGTERM (for tests, and for applications with their own signal
    /// handling).
    pub fn with_shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// `worker` reads the configuration again with `load` on SIGHUP (or each
    /// time the channel of [`Context::with_reload_signal`] receives) and
    /// applies its queue limits (`max_jobs`, `max_running`, rates, group
    /// bounds) to the backend, for every process; pool settings need a
    /// restart. A configuration that fails to load or apply is reported
    /// and the running limits stay.
    pub fn with_config_loader(mut self, load: impl Fn() -> Result<Config, CliError> + Send + Sync + 'static) -> Self {
        self.reload = Some(Box::new(load));
        self
    }

    /// `worker` reloads the configuration each time `reloads` receives,
    /// instead of on SIGHUP (for tests, and applications with their own
    /// signal handling). Needs [`Context::with_config_loader`].
    pub fn with_reload_signal(mut self, reloads: tokio::sync::mpsc::Receiver<()>) -> Self {
        self.reloads = Some(reloads);
        self
    }

    /// Shares `value` with the jobs of the pool `worker` starts: a job takes
    /// it as a `Data<T>` parameter (one value per type, as
    /// `WorkerPoolBuilder::data`). Without the values its jobs take, `worker`
    /// refuses to start, naming the job and the type.
    pub fn with_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// Shares every value of `data` with the jobs of the pool `worker`
    /// starts, as [`Context::with_data`] does for one.
    pub fn with_extensions(mut self, data: jobs_core::Extensions) -> Self {
        self.data.extend(data);
        self
    }

    /// The queue commands run on.
    pub fn queue(&self) -> &SharedQueue {
        &self.queue
    }
}

impl From<Backend> for Context {
    fn from(b: Backend) -> Self {
        Context::new(b.queue).with_config(b.config)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("custom_shutdown", &self.shutdown.is_some()).finish_non_exhaustive()
    }
}

/// Runs one parsed command. Output goes to `io`; the error, if any, is for
/// the caller to print (see [`CliError::one_line`] and
/// [`CliError::exit_code`]), as [`crate::run`] does.
pub async fn execute(cli: &Cli, ctx: Context, io: &mut Io<'_>) -> Result<(), CliError> {
    let q = &ctx.queue;
    match &cli.command {
        Command::Worker(args) => worker::run(args, ctx, io).await,
        Command::Archive(args) => archive::run(args, &ctx.config, io),
        Command::Enqueue(args) => enqueue::run(args, q, io).await,
        Command::Stats(o) => inspect::stats(q, o.json, io).await,
        Command::Queues(o) => inspect::queues(q, o.json, io).await,
        Command::Job { id, output } => inspect::job(q, id, output.json, io).await,
        Command::Workers(o) => inspect::workers(q, o.json, io).await,
        Command::Events(args) => {
            let q = ctx.queue.clone();
            let stop: jobs_core::backend::BoxFuture<'static, ()> = match ctx.shutdown {
                Some(s) => s,
                None => Box::pin(jobs_core::shutdown_signal()?),
            };
            events::follow(&q, args, stop, io).await
        }
        Command::Cancel { id, output } => control::cancel(q, id, output.json, io).await,
        Command::Dead(DeadCommand::List { queue, limit, output }) => {
            dead::list(q, queue.as_deref(), *limit, output.json, io).await
        }
        Command::Dead(DeadCommand::Show { id, output }) => dead::show(q, id, output.json, io).await,
        Command::Dead(DeadCommand::Retry { id, all: _, queue, flags }) => match id {
            Some(id) => dead::retry_one(q, id, flags.json, io).await,
            None => {
                let queue = queue.as_deref().ok_or_else(|| CliError::Usage("--all needs --queue Q".into()))?;
                dead::retry_all(q, queue, *flags, io).await
            }
        },
        Command::Dead(DeadCommand::Purge { queue, flags }) => dead::purge(q, queue, *flags, io).await,
        Command::Workflows(c) => flow_command(q, jobs_core::FlowKind::Workflow, c, io).await,
        Command::Batches(c) => flow_command(q, jobs_core::FlowKind::Batch, c, io).await,
        Command::Schedules(ScheduleCommand::List(o)) => control::schedules(q, o.json, io).await,
        Command::Schedules(ScheduleCommand::Add(args)) => schedules::add(args, q, io).await,
        Command::Schedules(ScheduleCommand::Trigger { name, output }) => {
            schedules::trigger(q, name, output.json, io).await
        }
        Command::Schedules(ScheduleCommand::Pause { name, output }) => {
            control::schedule_pause(q, name, true, output.json, io).await
        }
        Command::Schedules(ScheduleCommand::Resume { name, output }) => {
            control::schedule_pause(q, name, false, output.json, io).await
        }
        Command::Schedules(ScheduleCommand::Remove { name, flags }) => {
            control::schedule_remove(q, name, *flags, io).await
        }
        Command::Queue(QueueCommand::Pause { name, output }) => {
            control::queue_pause(q, name, true, output.json, io).await
        }
        Command::Queue(QueueCommand::Resume { name, output }) => {
            control::queue_pause(q, name, false, output.json, io).await
        }
        Command::Queue(QueueCommand::Groups { name, limit, output }) => {
            control::queue_groups(q, name, *limit, output.json, io).await
        }
        Command::Queue(QueueCommand::Breaker { name, group, open, close, output }) => {
            let action = match (open, close) {
                (Some(d), _) => Some(jobs_core::BreakerAction::Open(*d)),
                (None, true) => Some(jobs_core::BreakerAction::Close),
                (None, false) => None,
            };
            control::queue_breaker(q, name, group.as_deref(), action, output.json, io).await
        }
        Command::Queue(QueueCommand::Limits {
            name,
            max_running,
            max_jobs,
            rate,
            group_concurrency,
            group_rate,
            breaker,
            group_breaker,
            keep_succeeded,
            max_succeeded,
            keep_dead,
            max_dead,
            archive,
            output,
        }) => {
            let change = control::LimitChange {
                max_running: *max_running,
                max_jobs: *max_jobs,
                rate: *rate,
                group_concurrency: *group_concurrency,
                group_rate: *group_rate,
                breaker: *breaker,
                group_breaker: *group_breaker,
                keep_succeeded: *keep_succeeded,
                max_succeeded: *max_succeeded,
                keep_dead: *keep_dead,
                max_dead: *max_dead,
                archive: *archive,
            };
            control::queue_limits(q, name, change, output.json, io).await
        }
    }
}

/// `workflows ..` and `batches ..`.
async fn flow_command(
    q: &SharedQueue,
    kind: jobs_core::FlowKind,
    c: &FlowCommand,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    match c {
        FlowCommand::List { status, limit, offset, output } => {
            flows::list(q, kind, *status, *offset, *limit, output.json, io).await
        }
        FlowCommand::Show { id, output } => flows::show(q, kind, id, output.json, io).await,
        FlowCommand::Cancel { id, output } => flows::cancel(q, kind, id, output.json, io).await,
    }
}

/// Writes one JSON document on stdout.
fn print_json(io: &mut Io<'_>, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *io.out, value).map_err(std::io::Error::from)?;
    writeln!(io.out)?;
    Ok(())
}
