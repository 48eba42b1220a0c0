//! [`Sandbox`]: how a pool runs sandboxed jobs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How a pool runs the jobs declared `#[job(sandbox)]` (and, with
/// [`Sandbox::every_job`], all of its jobs): each attempt in a child
/// process of the worker's executable, under limits. Given to
/// [`WorkerPoolBuilder::sandbox`](crate::WorkerPoolBuilder::sandbox); a pool
/// that is given none uses [`Sandbox::default`].
///
/// ```
/// use std::time::Duration;
/// use jobs_core::sandbox::Sandbox;
///
/// let sandbox = Sandbox::default()
///     .warm_children(4)
///     .memory_limit(Some(512 * 1024 * 1024))
///     .cpu_time_limit(Some(Duration::from_secs(60)))
///     .network(false);
/// # let _ = sandbox;
/// ```
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub(crate) enabled: bool,
    pub(crate) every_job: bool,
    pub(crate) warm: usize,
    pub(crate) memory: Option<u64>,
    pub(crate) cpu_time: Option<Duration>,
    pub(crate) open_files: Option<u64>,
    pub(crate) network: bool,
    pub(crate) jobs_per_child: u32,
    pub(crate) program: Option<(PathBuf, Vec<OsString>)>,
    pub(crate) start_timeout: Duration,
}

/// The default memory limit of a child (its address space): 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1024 * 1024 * 1024;
/// The default limit on a child's open files.
pub const DEFAULT_OPEN_FILES: u64 = 256;
/// The default number of idle children a pool keeps ready.
pub const DEFAULT_WARM_CHILDREN: usize = 2;
/// The default number of attempts one child runs before it is replaced.
pub const DEFAULT_JOBS_PER_CHILD: u32 = 1000;

impl Default for Sandbox {
    /// Enabled for `#[job(sandbox)]` jobs; 2 warm children; 1 GiB of
    /// address space, 256 open files, no CPU time limit (the job's
    /// timeout bounds a hang), network allowed; 1,000 attempts per child;
    /// the worker's own executable and arguments as the child.
    fn default() -> Self {
        Sandbox {
            enabled: true,
            every_job: false,
            warm: DEFAULT_WARM_CHILDREN,
            memory: Some(DEFAULT_MEMORY_LIMIT),
            cpu_time: None,
            open_files: Some(DEFAULT_OPEN_FILES),
            network: true,
            jobs_per_child: DEFAULT_JOBS_PER_CHILD,
            program: None,
            start_timeout: Duration::from_secs(10),
        }
    }
}

impl Sandbox {
    /// Sandboxed jobs run in the worker itself, like any other job, and no
    /// child is started: for a test harness, which cannot serve children
    /// (see [`serve_if_child`](crate::sandbox::serve_if_child)).
    pub fn in_process() -> Self {
        Sandbox { enabled: false, ..Sandbox::default() }
    }

    /// Whether sandboxed jobs run in children (`false`: see
    /// [`Sandbox::in_process`]).
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Runs every job of the pool in a child, not only the `#[job(sandbox)]`
    /// ones.
    pub fn every_job(mut self, on: bool) -> Self {
        self.every_job = on;
        self
    }

    /// How many idle children the pool keeps started, so that an attempt
    /// does not wait for a process to start (default 2). A child that dies
    /// is replaced. They start with the pool when it serves a queue that a
    /// sandboxed job declares (or with [`Sandbox::every_job`]), else with
    /// the first sandboxed attempt.
    pub fn warm_children(mut self, n: usize) -> Self {
        self.warm = n;
        self
    }

    /// The most address space a child may map, in bytes (`RLIMIT_AS`;
    /// default [`DEFAULT_MEMORY_LIMIT`]); `None` for no limit. An
    /// allocation past it fails, which aborts the child: a failed attempt.
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory = bytes;
        self
    }

    /// The most CPU time one attempt may use, in whole seconds rounded up
    /// (`RLIMIT_CPU`, set anew before each attempt; default none). Past it
    /// the child is killed by `SIGXCPU`: a failed attempt.
    pub fn cpu_time_limit(mut self, limit: Option<Duration>) -> Self {
        self.cpu_time = limit;
        self
    }

    /// The most files a child may have open (`RLIMIT_NOFILE`; default
    /// [`DEFAULT_OPEN_FILES`]); `None` for the worker's own limit.
    pub fn open_files_limit(mut self, n: Option<u64>) -> Self {
        self.open_files = n;
        self
    }

    /// Whether children may use the network (default `true`). With
    /// `false`, each child starts in a network namespace of its own (with
    /// only a loopback device that is down), through util-linux's
    /// `unshare --net --map-root-user`; a pool refuses to start when this
    /// machine does not allow that.
    pub fn network(mut self, allowed: bool) -> Self {
        self.network = allowed;
        self
    }

    /// How many attempts one child runs before it is replaced by a fresh
    /// one (default [`DEFAULT_JOBS_PER_CHILD`]; at least 1): memory a job
    /// leaks does not build up.
    pub fn jobs_per_child(mut self, n: u32) -> Self {
        self.jobs_per_child = n.max(1);
        self
    }

    /// The program started as a child, with its arguments (default: this
    /// process's executable and arguments). It must call
    /// [`serve_if_child`](crate::sandbox::serve_if_child) (or
    /// [`child`](crate::sandbox::child)) first thing, and link the same
    /// jobs.
    pub fn program(mut self, path: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.program = Some((path.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// How long a new child may take to say it is ready (default 10 s):
    /// past it, the program is taken not to serve children, and the attempt
    /// fails saying so.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }
}
