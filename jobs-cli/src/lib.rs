#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod args;
mod backend;
mod cmd;
mod error;
mod io;
mod table;
mod view;

use std::ffi::OsString;
use std::io::{BufReader, IsTerminal};
use std::process::ExitCode;

use clap::Parser;

pub use args::{
    BackendArgs, BulkFlags, Cli, Command, DeadCommand, EnqueueArgs, FlowCommand, JobArgs, JsonFlag, QueueCommand,
    ScheduleCommand, WorkerArgs,
};
pub use backend::{connect, load_config, load_config_with_env, open, Backend, BackendKind, CONFIG_ENV};
pub use cmd::{execute, Context};
pub use error::{exit, CliError};
pub use io::Io;

/// Runs the command line of this process (`std::env::args_os()`) on its
/// standard streams: what an application's `main` calls. See the crate docs.
pub async fn main() -> ExitCode {
    run_stdio(std::env::args_os()).await
}

/// Runs a command line (`args[0]` is the program name) on this process's
/// standard streams, with the backend its flags, `JOBS_CONFIG` and `JOBS_*`
/// variables name. Confirmations are asked when stdin is a terminal.
pub async fn run_stdio<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut input = BufReader::new(std::io::stdin());
    let interactive = std::io::stdin().is_terminal();
    let err_is_terminal = err.is_terminal();
    let mut io = Io::new(&mut out, &mut err).err_is_terminal(err_is_terminal);
    if interactive {
        io = io.interactive(&mut input);
    }
    let cli = match parse(args, &mut io) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    // Reading the archive needs its folder, not the backend.
    if let Command::Archive(args) = &cli.command {
        let result = load_config(&cli.backend).and_then(|config| cmd::archive::run(args, &config, &mut io));
        return ExitCode::from(report(result, &mut io));
    }
    let backend = match connect(&cli.backend).await {
        Ok(b) => b,
        Err(e) => return ExitCode::from(report(Err(e), &mut io)),
    };
    if backend.kind == BackendKind::Memory && !matches!(cli.command, Command::Worker(_)) {
        let _ = writeln!(
            io.err,
            "warning: no Redis is configured (--redis-url, JOBS_REDIS_URL or jobs.redis.url in --config): \
             this command sees only this process's own, empty in-memory queue"
        );
    }
    let args = cli.backend.clone();
    let ctx = Context::from(backend).with_config_loader(move || load_config(&args));
    let result = execute(&cli, ctx, &mut io).await;
    ExitCode::from(report(result, &mut io))
}

/// Parses `args` (`args[0]` is the program name) and runs the command on
/// `ctx` (the caller's backend), writing to `io`; returns the exit code.
/// The backend flags (`--config`, `--redis-url`) are accepted and ignored:
/// the context decides.
///
/// ```
/// use std::sync::Arc;
/// use jobs_cli::{run, Context, Io};
/// use jobs_core::MemoryQueue;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let ctx = Context::new(Arc::new(MemoryQueue::new()));
/// let code = run(["jobs", "queues", "--json"], ctx, &mut Io::new(&mut out, &mut err)).await;
/// assert_eq!(code, 0);
/// assert_eq!(String::from_utf8(out).unwrap(), "{\n  \"queues\": []\n}\n");
/// # }
/// ```
pub async fn run<I, T>(args: I, ctx: Context, io: &mut Io<'_>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse(args, io) {
        Ok(cli) => report(execute(&cli, ctx, io).await, io),
        Err(code) => code,
    }
}

/// Parses with clap; help and version go to stdout (exit 0), usage errors
/// to stderr in clap's format (exit 2).
fn parse<I, T>(args: I, io: &mut Io<'_>) -> Result<Cli, u8>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(|e| {
        let text = e.render().to_string();
        let code = u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
        let sink = if e.use_stderr() { &mut *io.err } else { &mut *io.out };
        let _ = sink.write_all(text.as_bytes());
        code
    })
}

/// Prints an error as `error: <one line>` on stderr and returns its exit
/// code; a write to a closed pipe ends quietly with 0.
fn report(result: Result<(), CliError>, io: &mut Io<'_>) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(e) if e.is_broken_pipe() => exit::OK,
        Err(e) => {
            // Messages may quote stored or given text: escaped and cut.
            let _ = writeln!(io.err, "error: {}", view::printable(&e.one_line(), view::MAX_TEXT_ERROR));
            e.exit_code()
        }
    }
}
