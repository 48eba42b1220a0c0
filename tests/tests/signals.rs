//! `shutdown_signal()` in a worker process: the first SIGINT starts the
//! graceful shutdown, a second one ends the process at once.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().expect("kill(1)");
    assert!(ok.success());
}

#[test]
fn a_second_signal_ends_the_grace_period_at_once() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signal-worker"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the signal worker runs");
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(DEADLINE).expect("the job starts"), "running");
    kill("INT", child.id());
    // The job ignores cancellation and the grace period is 10 minutes: the
    // pool waits. Only the second signal ends the process before that.
    assert!(
        matches!(rx.recv_timeout(Duration::from_millis(300)), Err(mpsc::RecvTimeoutError::Timeout)),
        "the first signal waits for the running job"
    );
    kill("INT", child.id());
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a second SIGINT did not end the process");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130), "{status}");
}
