//! The `background-jobs worker` process: SIGTERM and SIGINT stop it
//! gracefully, with exit code 0.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::support::{binary, TempDir, DEADLINE};

/// Starts a worker on the MemoryQueue, sends it `signal` once it runs, and
/// returns its exit status and standard error.
fn worker_stopped_by(signal: &str) -> (std::process::ExitStatus, String) {
    let dir = TempDir::new("signals");
    let mut child = binary("worker", &dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the background-jobs binary runs");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    loop {
        let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("the worker starts; it said:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("worker started") {
            break;
        }
    }
    let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill(1)");
    assert!(sent.success());
    // The reader ends when the process closes its standard error.
    loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("SIG{signal} did not stop the worker; it said:\n{log}");
            }
        }
    }
    let status = child.wait().expect("the worker exits");
    (status, log)
}

#[test]
fn sigterm_and_sigint_stop_the_worker_gracefully() {
    for signal in ["TERM", "INT"] {
        let (status, log) = worker_stopped_by(signal);
        assert!(status.success(), "SIG{signal}: {status}\n{log}");
        assert!(log.contains("shutting down: running jobs get the grace period"), "SIG{signal}:\n{log}");
        assert!(log.lines().last().is_some_and(|l| l.ends_with("stopped")), "SIG{signal}:\n{log}");
    }
}
