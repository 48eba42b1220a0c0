//! The pool's sandbox at start and stop: whether it needs children, and
//! ending them.

use std::collections::HashMap;

use super::shared::Core;
use crate::error::Error;
use crate::registry::JobDescriptor;

/// The sandbox children of a pool about to start with `settings`: `None`
/// when no job of it is sandboxed or the sandbox runs jobs in process.
/// `metrics` counts the children's restarts.
#[cfg(all(unix, feature = "sandbox"))]
pub(super) fn children(
    settings: &crate::sandbox::Sandbox,
    #[cfg(feature = "metrics")] metrics: Option<&crate::metrics::JobMetrics>,
    registry: &HashMap<&'static str, &'static JobDescriptor>,
) -> Result<Option<super::shared::Sandboxed>, Error> {
    let sandboxed = settings.every_job || registry.values().any(|d| d.sandbox);
    if !sandboxed || !settings.enabled {
        return Ok(None);
    }
    if crate::sandbox::is_child() {
        return Err(Error::InvalidArgument(format!(
            "this process was started as a sandbox child ({} is set) and starts a worker pool: call \
             `jobs_core::sandbox::serve_if_child()` first thing in `main`",
            crate::sandbox::CHILD_ENV
        )));
    }
    #[cfg(feature = "metrics")]
    let hook = metrics.cloned().map(|m| Box::new(move || m.sandbox_restart()) as crate::sandbox::RestartHook);
    #[cfg(not(feature = "metrics"))]
    let hook: Option<crate::sandbox::RestartHook> = None;
    crate::sandbox::Children::new(settings.clone(), hook).map(Some).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// Without the sandbox feature, a sandboxed job is refused rather than run
/// in the worker unguarded.
#[cfg(not(all(unix, feature = "sandbox")))]
pub(super) fn children(registry: &HashMap<&'static str, &'static JobDescriptor>) -> Result<(), Error> {
    match registry.values().find(|d| d.sandbox) {
        Some(d) => Err(Error::InvalidArgument(format!(
            "job `{}` ({}) is declared `#[job(sandbox)]`, but jobs-core was built without its `sandbox` feature \
             (or not for Unix)",
            d.name,
            d.location()
        ))),
        None => Ok(()),
    }
}

/// Starts the warm children at once when a served queue is one a
/// sandboxed job declares (or every job is sandboxed); otherwise the first
/// sandboxed attempt starts them. So a program that merely links a
/// sandboxed job (a test harness among them) starts no child until one
/// runs.
pub(super) fn warm_up(core: &Core) {
    #[cfg(all(unix, feature = "sandbox"))]
    if let Some(children) = &core.sandbox {
        let jobs = core.registry.values().map(|d| (d.queue, d.sandbox));
        if core.sandbox_every_job || serves_sandboxed(&core.queues, jobs) {
            children.warm_up();
        }
    }
    #[cfg(not(all(unix, feature = "sandbox")))]
    let _ = core;
}

/// Whether one of `queues` is declared by a sandboxed job (`jobs`: each
/// job's queue and whether it is sandboxed).
#[cfg(all(unix, feature = "sandbox"))]
fn serves_sandboxed<'a>(queues: &[String], mut jobs: impl Iterator<Item = (&'a str, bool)>) -> bool {
    jobs.any(|(queue, sandboxed)| sandboxed && queues.iter().any(|q| q == queue))
}

/// Ends the pool's idle children; running ones end with their attempts.
pub(super) fn close(core: &Core) {
    #[cfg(all(unix, feature = "sandbox"))]
    if let Some(children) = &core.sandbox {
        children.close();
    }
    #[cfg(not(all(unix, feature = "sandbox")))]
    let _ = core;
}

#[cfg(all(test, unix, feature = "sandbox"))]
mod tests {
    use super::serves_sandboxed;

    #[test]
    fn children_warm_up_at_start_only_for_a_served_queue_of_a_sandboxed_job() {
        let queues = vec!["files".to_owned(), "default".to_owned()];
        assert!(serves_sandboxed(&queues, [("default", false), ("files", true)].into_iter()));
        // Linked, sandboxed, but on a queue this pool does not serve.
        assert!(!serves_sandboxed(&queues, [("video", true), ("files", false)].into_iter()));
        assert!(!serves_sandboxed(&queues, std::iter::empty()));
    }
}
