//! Sandboxed jobs (`#[job(sandbox)]`): each misbehaving job of the sandbox
//! worker (`tests/bin/sandbox_worker.rs`) ends as a failed attempt whose
//! error gives the reason, the pools go on running jobs in and out of the
//! sandbox, cancelling a sandboxed job kills its child, the restarts are
//! counted, no child is left behind, and a child
//! without network cannot reach the worker's loopback listener. On a
//! `MemoryQueue` and on Redis.
#![cfg(unix)]

use std::process::{Command, Stdio};

use serde_json::Value;

/// Runs the sandbox worker to its end and reads its report.
fn run_worker(args: &[String]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox-worker"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the sandbox worker runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the sandbox worker failed: {}\n{stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("its report ({e}): {stderr}"))
}

/// The one attempt of a dead job, and its error.
fn only_error(report: &Value, job: &str) -> String {
    let j = &report["jobs"][job];
    assert_eq!(j["status"], "Dead", "{job}: {j}");
    let errors = j["errors"].as_array().unwrap_or_else(|| panic!("{job}: {j}"));
    assert_eq!(errors.len(), 1, "{job}: one failed attempt: {j}");
    errors[0].as_str().unwrap_or_default().to_owned()
}

fn check(report: &Value) {
    let abort = only_error(report, "sandbox.abort");
    assert_eq!(abort, "sandbox: the child was killed by SIGABRT (it aborted)");
    let alloc = only_error(report, "sandbox.alloc");
    assert!(alloc.starts_with("sandbox: the child was killed by SIGABRT"), "{alloc}");
    assert!(alloc.contains("memory allocation of"), "the allocator's message is the reason: {alloc}");
    let segv = only_error(report, "sandbox.segv");
    assert_eq!(segv, "sandbox: the child was killed by SIGSEGV (invalid memory access)");
    let spin = only_error(report, "sandbox.spin");
    assert_eq!(spin, "timed out after 2s; the sandbox child was killed");
    // A panic is caught in the child, which lives on (not a restart below).
    assert_eq!(only_error(report, "sandbox.panic"), "panicked: on purpose");
    let burn = only_error(report, "sandbox.burn");
    assert_eq!(burn, "sandbox: the child was killed by SIGXCPU (over its CPU time limit of 1s)");

    // After all that, the pool runs jobs in a child and in the worker.
    let worker = report["worker_pid"].as_u64().expect("the worker's pid");
    let ok = &report["jobs"]["sandbox.ok"];
    assert_eq!(ok["status"], "Succeeded", "{ok}");
    assert_eq!(ok["result"]["word"], "sandboxed", "{ok}");
    assert_ne!(ok["result"]["pid"].as_u64(), Some(worker), "a sandboxed job runs in another process: {ok}");
    assert_eq!(ok["progress"], serde_json::json!([0.5, "half way"]), "its progress reaches the backend: {ok}");
    let plain = &report["jobs"]["sandbox.plain"];
    assert_eq!(plain["status"], "Succeeded", "{plain}");
    assert_eq!(plain["result"]["pid"].as_u64(), Some(worker), "{plain}");

    // A sandboxed workflow step reads its dependency's result and its place.
    let step = &report["jobs"]["sandbox.step"];
    assert_eq!(step["status"], "Succeeded", "{step}");
    assert_eq!(step["result"]["word"], "from the first step", "{step}");
    assert_eq!(
        (step["result"]["flow"].clone(), step["result"]["member"].clone()),
        ("sandboxed-steps".into(), "second".into())
    );
    assert_ne!(step["result"]["pid"].as_u64(), Some(worker), "the step ran in a child: {step}");

    // Without network, the worker's own loopback listener is out of reach.
    let connect = &report["jobs"]["sandbox.connect"];
    assert_eq!(connect["status"], "Succeeded", "{connect}");
    assert_eq!(connect["result"], false, "{connect}");

    // Cancelling a running sandboxed job kills its child.
    let wait = &report["jobs"]["sandbox.wait"];
    assert_eq!(wait["status"], "Cancelled", "{wait}");
    assert_eq!(report["cancelled_child_gone"], true, "{report}");

    // The six children that died or were killed were counted, and none is
    // left.
    assert_eq!(report["restarts"], 6, "{report}");
    assert_eq!(report["zombies"], 0, "{report}");
}

#[test]
fn misbehaving_sandboxed_jobs_fail_with_their_reason_on_memory() {
    check(&run_worker(&[]));
}

#[test]
fn misbehaving_sandboxed_jobs_fail_with_their_reason_on_redis() {
    let server = jobs_redis::testing::RedisServer::start();
    check(&run_worker(&[server.url()]));
}
