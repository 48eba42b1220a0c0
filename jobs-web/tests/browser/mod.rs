//! A headless Chromium driven over WebDriver: Debian's `chromium` and
//! `chromium-driver`, a chromedriver started on a free loopback port, a
//! fresh profile per run, and helpers that wait on conditions with
//! deadlines (never a fixed sleep for an outcome).
//!
//! Missing chromedriver or Chromium is a failure with a message saying what
//! to install, never a silent skip. `CHROMEDRIVER` and `CHROME_BIN` point
//! at other binaries.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
const INSTALL: &str = "install Debian's packages with `apt-get install -y chromium chromium-driver` \
                       (scripts/test does when they are missing), or set CHROMEDRIVER and CHROME_BIN";

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env} names {}, which is not a file; {INSTALL}", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("bound").port()
}

/// The chromedriver process, its log and the profile directory; on drop it
/// ends a session left open (a test that panicked), then stops chromedriver.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    dir: PathBuf,
    log: PathBuf,
}

impl Driver {
    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited at start ({status}); {INSTALL}\n{}", self.log_tail());
            }
            assert!(start.elapsed() < DEADLINE, "chromedriver did not listen within {DEADLINE:?}\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.reverse();
        format!("chromedriver log ({}), last lines:\n{}", self.log.display(), tail.join("\n"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    self.port
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running chromedriver with one headless Chromium session; both end when
/// it is closed or dropped.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let Some(driver_bin) = find_binary("CHROMEDRIVER", &["chromedriver"]) else {
            panic!("the browser test needs chromedriver, which is not installed: {INSTALL}");
        };
        let Some(chrome_bin) = find_binary("CHROME_BIN", &["chromium", "chromium-browser"]) else {
            panic!("the browser test needs Chromium, which is not installed: {INSTALL}");
        };
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!("jobs-web-e2e-{}-{stamp}", std::process::id()));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).expect("a temporary profile directory");
        let log = dir.join("chromedriver.log");

        let port = free_port();
        let child = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", driver_bin.display()));
        let mut driver = Driver { child, port, session: None, dir, log };
        driver.wait_until_listening();

        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome_bin,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else { unreachable!("an object literal") };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}\n{}", driver.log_tail()));
        driver.session = client.session_id().await.ok().flatten();
        Browser { client, driver }
    }

    /// Ends the session (and Chromium) cleanly.
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.driver.session = None;
        }
    }

    /// Waits until `css` matches an element whose text satisfies `ok`;
    /// returns that text.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut seen = String::from("<no such element>");
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if ok(&text) {
                        return text;
                    }
                    seen = text;
                }
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what} (`{css}`); last seen: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` matches an element, and returns it.
    pub async fn wait_for(&self, css: &str, what: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                return el;
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what} (`{css}`)");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` matches, waiting for it first (and finding
    /// it again when a refresh replaced it between finding and clicking).
    pub async fn click(&self, css: &str, what: &str) {
        let start = Instant::now();
        loop {
            let el = self.wait_for(css, what).await;
            match el.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && start.elapsed() < DEADLINE => continue,
                Err(e) => panic!("cannot click {what} (`{css}`): {e}"),
            }
        }
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.map(|v| v.len()).unwrap_or(0)
    }

    /// Saves a PNG of the window as `dir/name.png` when `dir` is given;
    /// returns its size in bytes.
    pub async fn screenshot(&self, dir: Option<&Path>, name: &str) -> Option<usize> {
        let dir = dir?;
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("screenshot written");
        println!("screenshot {} ({} KB)", path.display(), png.len() / 1024);
        Some(png.len())
    }
}
