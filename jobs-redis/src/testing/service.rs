//! A stand-in for an upstream HTTP service, for the circuit breaker test:
//! a loopback listener that counts calls and answers `200` or `503` as the
//! test says, and [`CallJob`], which calls it and fails on a `503`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::JobError;

/// The service: its port on 127.0.0.1, its calls, whether it is down.
#[derive(Debug)]
pub struct Service {
    port: u16,
    calls: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Service {
    /// Listens on a free loopback port, answering on a thread of its own.
    pub fn start() -> std::io::Result<Service> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let (calls, down, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (c, d, s) = (calls.clone(), down.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let status = if d.load(Ordering::SeqCst) { "503 Service Unavailable" } else { "200 OK" };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 256];
                let _ = conn.read(&mut request);
                let _ = write!(conn, "HTTP/1.0 {status}\r\ncontent-length: 0\r\n\r\n");
            }
        });
        Ok(Service { port, calls, down, stop })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Calls answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Answers `503` from now on (`true`) or `200` (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Whether the service on `port` answered `200`.
fn call(port: u16) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /call HTTP/1.0\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    Ok(&head[9..12] == b"200")
}

/// Calls the service on `port` (127.0.0.1): succeeds on a `200`, fails
/// (retryably) otherwise. Registered by
/// [`use_test_jobs`](super::use_test_jobs).
#[jobs_core::job(register = false, name = "jobs_redis.testing.call", queue = "crash", retries = 100)]
pub async fn call_job(port: u16, seq: u64) -> Result<(), JobError> {
    let _ = seq;
    // A blocking call of a few milliseconds, off the runtime's threads.
    let answered = tokio::task::spawn_blocking(move || call(port))
        .await
        .map_err(|e| JobError::retryable(format!("the call did not finish: {e}")))?;
    match answered {
        Ok(true) => Ok(()),
        Ok(false) => Err(JobError::retryable("the service answered 503")),
        Err(e) => Err(JobError::retryable(format!("the service did not answer: {e}"))),
    }
}
