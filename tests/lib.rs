//! Workspace-level integration tests of `jobs` (see `tests/`), and the
//! compile-fail suite (`ui/`). This library itself is empty but for the
//! guides in `docs/`, whose Rust blocks are its doctests
//! (`cargo test -p jobs-tests --doc`).

/// The Rust blocks of `docs/getting-started.md`, compiled (and run unless
/// marked `no_run`) as doctests.
#[doc = include_str!("../docs/getting-started.md")]
pub mod getting_started {}

/// The Rust blocks of `docs/deploying.md`.
#[doc = include_str!("../docs/deploying.md")]
pub mod deploying {}

/// The Rust blocks of `docs/operations.md`.
#[doc = include_str!("../docs/operations.md")]
pub mod operations {}

/// The Rust blocks of `docs/hooks.md`.
#[doc = include_str!("../docs/hooks.md")]
pub mod hooks {}

/// The Rust blocks of `docs/coming-from.md`.
#[doc = include_str!("../docs/coming-from.md")]
pub mod coming_from {}

/// The Rust blocks of `docs/results-and-events.md`.
#[doc = include_str!("../docs/results-and-events.md")]
pub mod results_and_events {}

/// The Rust blocks of `docs/tracing.md` (feature `otel`).
#[cfg(feature = "otel")]
#[doc = include_str!("../docs/tracing.md")]
pub mod tracing_guide {}

/// The Rust blocks of `docs/sandbox.md`.
#[cfg(unix)]
#[doc = include_str!("../docs/sandbox.md")]
pub mod sandbox {}

/// The Rust blocks of `docs/webhooks.md`.
#[doc = include_str!("../docs/webhooks.md")]
pub mod webhooks {}

/// The Rust blocks of `docs/snooze-and-expiry.md`.
#[doc = include_str!("../docs/snooze-and-expiry.md")]
pub mod snooze_and_expiry {}

/// The Rust blocks of `docs/ids-and-keys.md`.
#[doc = include_str!("../docs/ids-and-keys.md")]
pub mod ids_and_keys {}

/// The Rust blocks of `docs/schedules.md`.
#[doc = include_str!("../docs/schedules.md")]
pub mod schedules {}

/// The Rust blocks of `docs/flow-control.md`.
#[doc = include_str!("../docs/flow-control.md")]
pub mod flow_control {}

/// The Rust blocks of `docs/archival.md`.
#[doc = include_str!("../docs/archival.md")]
pub mod archival {}

/// The Rust blocks of `docs/several-servers.md`.
#[doc = include_str!("../docs/several-servers.md")]
pub mod several_servers {}

/// The Rust blocks of `docs/workflows.md`.
#[doc = include_str!("../docs/workflows.md")]
pub mod workflows {}
