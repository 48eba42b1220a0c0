//! The error reporter: every job that ends dead is logged once, with what
//! an operator needs to find it (`jobs dead show ID`), whichever process
//! ran it — also when the worker running its last attempt was killed (the
//! pool that reclaims its lease reports it). A real deployment would send
//! the same fields to its error tracker (spawned: the handler runs on the
//! pool's acknowledgement task).

use jobs_core::hooks::DeadJob;

/// The pool's `on_dead` handler.
pub fn report_dead(dead: &DeadJob) {
    tracing::error!(
        target: "background_jobs::dead",
        job = %dead.id,
        name = %dead.name,
        attempts = dead.attempts,
        error = %dead.error,
        "job is dead; see `jobs dead show {}`",
        dead.id
    );
}
