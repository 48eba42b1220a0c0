//! The `app:` section of the configuration: the application's own settings.

use std::path::PathBuf;
use std::time::Duration;

use jobs_core::config::mask_url_password;
use serde::Deserialize;

/// The `app:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// The folder every file path of the application is relative to (the
    /// outbox, uploads, the SQLite database, logs). Empty: `background-jobs`
    /// in the system's temporary folder.
    pub data_dir: PathBuf,
    /// Mail.
    pub email: EmailConfig,
    /// File processing.
    pub files: FilesConfig,
    /// Cleanup.
    pub cleanup: CleanupConfig,
    /// Webhooks.
    pub notify: NotifyConfig,
    /// What the HTTP port serves besides metrics and health.
    pub http: HttpAppConfig,
    /// The demo run.
    pub demo: DemoConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            data_dir: PathBuf::new(),
            email: EmailConfig::default(),
            files: FilesConfig::default(),
            cleanup: CleanupConfig::default(),
            notify: NotifyConfig::default(),
            http: HttpAppConfig::default(),
            demo: DemoConfig::default(),
        }
    }
}

/// `app.email`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    /// Links in mails start with this.
    pub base_url: String,
    /// `smtp://[user:password@]host[:port]` (STARTTLS as `starttls` says,
    /// port 25 by default) or `smtps://..` (TLS from the first byte, port
    /// 465 by default): deliver through this SMTP server. Absent: write
    /// `.eml` files into `outbox`.
    pub smtp_url: Option<String>,
    /// For `smtp://`: require STARTTLS (on by default): a server that does
    /// not offer it gets no mail and no password. Off: plain text, for a
    /// local relay or test server (Mailpit, MailHog) only.
    pub starttls: bool,
    /// A PEM file of certificates the SMTP server's may chain to, trusted
    /// besides the system's roots (a private CA, a self-signed server).
    pub ca_file: Option<PathBuf>,
    /// The outbox folder, relative to `data_dir`.
    pub outbox: PathBuf,
    /// Load the mail templates from this folder instead of the ones built
    /// into the binary (the files of `templates/`, same names).
    pub templates_dir: Option<PathBuf>,
    /// How long one SMTP conversation may take.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: "Example App <no-reply@example.com>".into(),
            base_url: "http://localhost:3000".into(),
            smtp_url: None,
            starttls: true,
            ca_file: None,
            outbox: "outbox".into(),
            templates_dir: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Shows the SMTP URL with its password masked.
impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .field("smtp_url", &self.smtp_url.as_deref().map(mask_url_password))
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("outbox", &self.outbox)
            .field("templates_dir", &self.templates_dir)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `app.files`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Files larger than this many bytes are refused (default 10 MiB).
    pub max_file_size: u64,
    /// The `ffmpeg` program for video jobs (a name on `PATH` or a path).
    pub ffmpeg: String,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { max_file_size: 10 * 1024 * 1024, ffmpeg: "ffmpeg".into() }
    }
}

/// `app.cleanup`: what the nightly maintenance does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    /// The SQLite database of users and sessions, relative to `data_dir`.
    pub database: PathBuf,
    /// Scratch files, relative to `data_dir`.
    pub temp_dir: PathBuf,
    /// Scratch files older than this are deleted.
    #[serde(with = "duration")]
    pub temp_max_age: Duration,
    /// Users' uploaded files, relative to `data_dir`; a file there that no
    /// row of the `files` table names is an orphan.
    pub user_files_dir: PathBuf,
    /// Orphans younger than this are kept (an upload may be in progress).
    #[serde(with = "duration")]
    pub orphan_min_age: Duration,
    /// Verified users who have not logged in for this long are deactivated.
    #[serde(with = "duration")]
    pub inactive_after: Duration,
    /// Users who have not verified their address this long after signing up
    /// are deleted.
    #[serde(with = "duration")]
    pub unverified_after: Duration,
    /// Deactivated users are deleted for good this long after.
    #[serde(with = "duration")]
    pub deleted_grace: Duration,
    /// Log files (`*.log`), relative to `data_dir`.
    pub log_dir: PathBuf,
    /// A log file this large or larger is rotated.
    pub log_max_size: u64,
    /// Compressed generations kept per log file.
    pub log_keep: u32,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        CleanupConfig {
            database: "app.db".into(),
            temp_dir: "tmp".into(),
            temp_max_age: Duration::from_secs(DAY),
            user_files_dir: "user_files".into(),
            orphan_min_age: Duration::from_secs(3600),
            inactive_after: Duration::from_secs(365 * DAY),
            unverified_after: Duration::from_secs(7 * DAY),
            deleted_grace: Duration::from_secs(30 * DAY),
            log_dir: "logs".into(),
            log_max_size: 1024 * 1024,
            log_keep: 5,
        }
    }
}

/// `app.notify`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Where webhooks are POSTed unless a job names its own URL (`https://`
    /// or `http://`). Absent: the demo starts a local receiver.
    pub webhook_url: Option<String>,
    /// The shared secret webhooks are signed with (HMAC-SHA256 of
    /// `"{timestamp}.{body}"` in `X-Webhook-Signature: t=..,v1=..`; see
    /// `http::signature`). Better set through `APP_WEBHOOK_SECRET`.
    /// Absent: webhooks go unsigned (with a warning at start).
    pub signing_secret: Option<String>,
    /// How long one delivery may take, connecting included.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// A PEM file of certificates that HTTPS receivers' may chain to,
    /// trusted besides the system's roots (a private CA, a self-signed
    /// receiver).
    pub ca_file: Option<PathBuf>,
    /// Deliver to public addresses (on by default). Off: only addresses
    /// that `allow_private` or `allow` allow are reached (what tests set, so
    /// that nothing they run leaves the machine).
    pub allow_public: bool,
    /// Deliver to loopback, private, link-local and other non-public
    /// addresses too. Off: such targets are refused (a webhook URL comes
    /// from a job's payload and must not reach internal services).
    pub allow_private: bool,
    /// Targets allowed even when `allow_private` (or `allow_public`) is off:
    /// each an IP address (`"10.1.2.3"`, `"::1"`) or an address and port
    /// (`"127.0.0.1:9000"`, `"[::1]:9000"`). An entry with a port applies to
    /// URLs that name the address itself; a host name's addresses are
    /// checked when it resolves, without the port, so they need an entry
    /// without one.
    pub allow: Vec<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook_url: None,
            signing_secret: None,
            timeout: Duration::from_secs(10),
            ca_file: None,
            allow_public: true,
            allow_private: false,
            allow: Vec::new(),
        }
    }
}

/// Shows the webhook URL with any password masked.
impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("webhook_url", &self.webhook_url.as_deref().map(mask_url_password))
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("allow_public", &self.allow_public)
            .field("allow_private", &self.allow_private)
            .field("allow", &self.allow)
            .finish()
    }
}

/// `app.http`: what `jobs.http.bind` serves besides `/metrics` and
/// `/health/*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpAppConfig {
    /// Serve the dashboard (`/ui/`) and the JSON admin API (`/api/`) too.
    /// Both show job payloads and can retry, cancel and purge jobs, so this
    /// needs `jobs.http.admin_token` (`JOBS_HTTP_ADMIN_TOKEN`), and every
    /// `/api/` request but `/api/auth`, reads included, must carry it as
    /// `Authorization: Bearer <token>` (the dashboard asks for it). Off by
    /// default.
    pub admin: bool,
}

/// `app.demo`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// The demo gives up waiting for its jobs after this long.
    #[serde(with = "duration")]
    pub deadline: Duration,
    /// The retry backoff base of the demo's pool (short, so that a retry
    /// shows within the run; `jobs.worker_pool.retry_delay` applies to the
    /// `worker` command).
    #[serde(with = "duration")]
    pub retry_delay: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { deadline: Duration::from_secs(120), retry_delay: Duration::from_millis(500) }
    }
}

/// Serde helper: a duration written the `humantime` way (`"30s"`, `"7days"`).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "invalid duration `{s}`: {e}; write e.g. \"30s\", \"12h\" or \"7days\""
            ))
        })
    }
}
