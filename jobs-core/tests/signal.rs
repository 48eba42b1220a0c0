//! `shutdown_signal()` on real signals. This binary's only test that sends
//! signals, to its own process: the handlers are installed before each
//! signal is sent, so none of them ends the process.
#![cfg(all(unix, feature = "signal"))]
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::time::Duration;

/// Sends `signal` to this process (with `kill(1)`: no libc binding needed).
fn send_to_self(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &std::process::id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{signal} failed");
}

#[tokio::test]
async fn resolves_on_sigterm_and_on_sigint() {
    for name in ["TERM", "INT"] {
        let signal = jobs_core::shutdown_signal().unwrap();
        send_to_self(name);
        tokio::time::timeout(Duration::from_secs(30), signal).await.unwrap_or_else(|_| panic!("resolved on SIG{name}"));
    }
}

#[test]
fn outside_a_runtime_it_is_an_error_not_a_panic() {
    let err = jobs_core::shutdown_signal().err().expect("no runtime");
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}
