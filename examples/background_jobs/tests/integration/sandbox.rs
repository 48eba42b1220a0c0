//! `background-jobs demo` as a process: its image, PDF and video jobs run
//! in sandbox children (the binary serves them), and every job still ends
//! as expected.
#![cfg(unix)]

use crate::support::{binary, TempDir};

#[test]
fn the_demo_binary_runs_the_file_jobs_in_sandbox_children() {
    let dir = TempDir::new("sandbox-demo");
    // With `info` logs the children log what their jobs did; the worker
    // forwards it.
    let out = binary("demo", &dir.0).output().expect("the background-jobs binary runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the demo failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("Every job ended as expected."), "{stdout}");
    // An image job ran in a child: its log line comes through the child's
    // forwarded standard error, never from the worker itself.
    let from_child = |what: &str| stderr.lines().any(|l| l.starts_with("[sandbox child ") && l.contains(what));
    assert!(from_child("image written"), "{stderr}");
    assert!(!stderr.lines().any(|l| !l.starts_with("[sandbox child ") && l.contains("image written")), "{stderr}");
    assert!(from_child("text extracted"), "{stderr}");
}
