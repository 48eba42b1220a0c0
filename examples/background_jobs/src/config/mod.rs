//! The application's configuration: the `jobs:` and `queues:` sections of
//! `jobs_core::config::Config` plus an `app:` section of its own, all in
//! one YAML file.
//!
//! `jobs_core::config::Config::from_app_yaml` reads `jobs:` and `queues:` and skips
//! the rest; the `app:` section is read here from the same text, and any
//! other top-level key is an error. Both keep the file's line numbers.
//!
//! Where the configuration comes from: `--config PATH`, else the file named by
//! `JOBS_CONFIG`, else the shipped `config.yaml` built into the binary. Then
//! the environment overrides apply: every `JOBS_*` variable of
//! `jobs_core::config` (any key of `jobs:` and `queues:`, e.g.
//! `JOBS_WORKER_POOL__WORKER_COUNT`; `JOBS_REDIS_URL` selects Redis), and these:
//!
//! | variable | key |
//! | --- | --- |
//! | `APP_DATA_DIR` | `app.data_dir` |
//! | `APP_SMTP_URL` | `app.email.smtp_url` |
//! | `APP_WEBHOOK_URL` | `app.notify.webhook_url` |
//! | `APP_WEBHOOK_SECRET` | `app.notify.signing_secret` |
//! | `APP_HTTP_ADMIN` | `app.http.admin` (`true` or `false`) |

mod app;

use std::path::{Component, Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

pub use app::{AppConfig, CleanupConfig, DemoConfig, EmailConfig, FilesConfig, HttpAppConfig, NotifyConfig};

/// The configuration shipped with the example, used when no file is named.
pub const DEFAULT_CONFIG: &str = include_str!("../../config.yaml");

/// The environment variable that names a configuration file.
pub const CONFIG_ENV: &str = "JOBS_CONFIG";

/// What is wrong with the configuration; each message names the file or
/// variable and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `jobs:` or `queues:` section (checked by `jobs_core`).
    #[error(transparent)]
    Jobs(#[from] jobs_core::config::ConfigError),
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `app:` section does not parse: the message starts with the key path.
    #[error("{file}: {message}")]
    App {
        /// The file.
        file: String,
        /// `app.key.path: what is wrong at line L column C`.
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("{source_name}: {key}: {message}")]
    Invalid {
        /// The file or environment variable.
        source_name: String,
        /// The key.
        key: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// The whole configuration: the job system's and the application's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `jobs:` and `queues:` (backend, worker pool, metrics, HTTP, queue limits).
    pub jobs: jobs_core::config::Config,
    /// `app:`.
    pub app: AppConfig,
    /// Where it came from (a path, or `built-in config.yaml`).
    pub source: String,
}

/// The file's top level as the application sees it: its own `app:` section,
/// and the sections `jobs_core::config::Config::from_app_yaml` reads.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AppFile {
    #[serde(default)]
    app: AppConfig,
    #[serde(default, rename = "jobs")]
    _jobs: IgnoredAny,
    #[serde(default, rename = "queues")]
    _queues: IgnoredAny,
}

impl Settings {
    /// Reads the configuration from `path` (else `JOBS_CONFIG`, else the
    /// built-in file) and applies this process's environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Settings::load`] with the environment given as `(name, value)` pairs.
    pub fn load_with_env<I, K, V>(path: Option<&Path>, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect();
        let named = path.map(Path::to_path_buf).or_else(|| {
            vars.iter().find(|(k, v)| k == CONFIG_ENV && !v.trim().is_empty()).map(|(_, v)| PathBuf::from(v.trim()))
        });
        let (text, source) = match named {
            Some(p) => {
                let file = p.display().to_string();
                let text =
                    std::fs::read_to_string(&p).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
                (text, file)
            }
            None => (DEFAULT_CONFIG.to_owned(), "built-in config.yaml".to_owned()),
        };
        Ok(Self::from_yaml(&text, &source)?.with_env_overrides(vars)?.with_archive_dir())
    }

    /// Archives go to `archive` in the data folder unless `jobs.archive.dir`
    /// names a folder.
    pub fn with_archive_dir(mut self) -> Self {
        if self.jobs.jobs.archive.dir.is_none() {
            self.jobs.jobs.archive.dir = Some(self.data_dir().join("archive"));
        }
        self
    }

    /// The folder archived jobs are written to and read from.
    pub fn archive_dir(&self) -> PathBuf {
        self.jobs.jobs.archive.dir.clone().unwrap_or_else(|| self.data_dir().join("archive"))
    }

    /// Parses YAML text read from `source` (named in errors), without
    /// environment overrides.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self, ConfigError> {
        let jobs = jobs_core::config::Config::from_app_yaml(text, source)?;
        let app = if text.trim().is_empty() {
            AppConfig::default()
        } else {
            serde_yaml_ng::from_str::<AppFile>(text)
                .map_err(|e| ConfigError::App { file: source.to_owned(), message: e.to_string() })?
                .app
        };
        let settings = Settings { jobs, app, source: source.to_owned() };
        settings.validate(source)?;
        Ok(settings)
    }

    /// Applies `JOBS_*` (through `jobs_core`) and `APP_*` overrides.
    pub fn with_env_overrides<I, K, V>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect();
        self.jobs = self.jobs.with_env_overrides(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        for (k, v) in &vars {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "APP_DATA_DIR" => self.app.data_dir = PathBuf::from(v),
                "APP_SMTP_URL" => self.app.email.smtp_url = Some(v.to_owned()),
                "APP_WEBHOOK_URL" => self.app.notify.webhook_url = Some(v.to_owned()),
                "APP_WEBHOOK_SECRET" => self.app.notify.signing_secret = Some(v.to_owned()),
                "APP_HTTP_ADMIN" => {
                    self.app.http.admin = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => {
                            return Err(ConfigError::Invalid {
                                source_name: k.clone(),
                                key: "app.http.admin",
                                message: format!("`{v}` is not a boolean: write true or false"),
                            })
                        }
                    }
                }
                _ => continue,
            }
            self.validate(k)?;
        }
        Ok(self)
    }

    /// Checks what the types alone do not; `source` names the file or variable.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { source_name: source.to_owned(), key, message };
        let e = &self.app.email;
        e.from.parse::<lettre::message::Mailbox>().map_err(|err| {
            invalid(
                "app.email.from",
                format!("`{}` is not a mailbox ({err}): write e.g. \"App <app@example.com>\"", e.from),
            )
        })?;
        if let Some(url) = &e.smtp_url {
            crate::mail::SmtpTarget::parse(url).map_err(|err| invalid("app.email.smtp_url", err.to_string()))?;
        }
        if let Some(url) = &self.app.notify.webhook_url {
            crate::http::parse_http_url(url).map_err(|err| invalid("app.notify.webhook_url", err.to_string()))?;
        }
        crate::http::AddressPolicy::from_config(&self.app.notify)
            .map_err(|err| invalid("app.notify.allow", err.to_string()))?;
        if self.app.files.max_file_size == 0 {
            return Err(invalid("app.files.max_file_size", "must be at least 1 byte".into()));
        }
        if self.app.cleanup.log_keep == 0 {
            return Err(invalid("app.cleanup.log_keep", "must be at least 1".into()));
        }
        let relative: [(&'static str, &Path); 5] = [
            ("app.email.outbox", &e.outbox),
            ("app.cleanup.database", &self.app.cleanup.database),
            ("app.cleanup.temp_dir", &self.app.cleanup.temp_dir),
            ("app.cleanup.user_files_dir", &self.app.cleanup.user_files_dir),
            ("app.cleanup.log_dir", &self.app.cleanup.log_dir),
        ];
        for (key, p) in relative {
            // `.` alone names the data folder itself: a cleanup there would
            // delete the database and everything else.
            let names_a_subfolder = p.components().any(|c| matches!(c, Component::Normal(_)));
            if !names_a_subfolder || p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                return Err(invalid(
                    key,
                    format!("`{}` must be a path inside app.data_dir, like \"logs\"", p.display()),
                ));
            }
        }
        let c = &self.app.cleanup;
        for (key, area) in [("app.cleanup.temp_dir", &c.temp_dir), ("app.cleanup.user_files_dir", &c.user_files_dir)] {
            if normalized(&c.database).starts_with(normalized(area)) {
                return Err(invalid(
                    key,
                    format!(
                        "`{}` holds the database `{}`: its cleanup would delete it; keep them apart",
                        area.display(),
                        c.database.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `app.data_dir`, made absolute: relative to the working folder, and
    /// `background-jobs` in the system's temporary folder when empty.
    pub fn data_dir(&self) -> PathBuf {
        let d = &self.app.data_dir;
        if d.as_os_str().is_empty() {
            std::env::temp_dir().join("background-jobs")
        } else if d.is_absolute() {
            d.clone()
        } else {
            std::env::current_dir().map(|cwd| cwd.join(d)).unwrap_or_else(|_| d.clone())
        }
    }
}

/// A relative path without its `.` components, for comparing.
fn normalized(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    #[test]
    fn the_shipped_file_parses() {
        let s = Settings::from_yaml(DEFAULT_CONFIG, "config.yaml").expect("valid");
        assert!(s.jobs.jobs.redis.is_none(), "the shipped configuration runs on the MemoryQueue");
        assert!(s.jobs.queues.get("email").is_some());
        assert_eq!(s.app.email.outbox, PathBuf::from("outbox"));
    }

    #[test]
    fn errors_keep_the_file_line_numbers() {
        let text = "jobs:\n  worker_pool: { worker_count: 2 }\napp:\n  email:\n    fromm: x\nqueues:\n  email: { max_jobs: 5 }\n";
        let e = Settings::from_yaml(text, "c.yaml").expect_err("bad app key");
        let msg = e.to_string();
        assert!(msg.starts_with("c.yaml: app.email: unknown field `fromm`"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        let fixed = text.replace("fromm: x", "from: a@example.com").replace("max_jobs: 5", "max_jobs: many");
        let msg = Settings::from_yaml(&fixed, "c.yaml").expect_err("bad queue key").to_string();
        assert!(msg.contains("queues.email.max_jobs") && msg.contains("line 7"), "{msg}");
    }

    #[test]
    fn one_file_holds_both_sections_in_any_style() {
        let text =
            "{ app: { cleanup: { log_keep: 3 } }, jobs: { worker_pool: { worker_count: 2 } }, queues: { email: {} } }";
        let s = Settings::from_yaml(text, "c.yaml").expect("flow style is read too");
        assert_eq!((s.app.cleanup.log_keep, s.jobs.jobs.worker_pool.worker_count), (3, 2));
        assert_eq!(s.jobs.queues.names().collect::<Vec<_>>(), ["email"]);
        let msg = Settings::from_yaml("ap:\n  email: {}\n", "c.yaml").expect_err("unknown section").to_string();
        assert!(msg.starts_with("c.yaml: unknown field `ap`") && msg.contains("`app`"), "{msg}");
        let msg = Settings::from_yaml("jobs:\n  worker_pol: {}\napp: {}\n", "c.yaml").expect_err("typo").to_string();
        assert!(msg.starts_with("c.yaml: jobs: unknown field `worker_pol`") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn environment_overrides_apply_and_are_checked() {
        let vars = [("JOBS_REDIS_URL", "redis://127.0.0.1:7000"), ("APP_WEBHOOK_URL", "http://127.0.0.1:9/hook")];
        let s = Settings::from_yaml(DEFAULT_CONFIG, "c").and_then(|s| s.with_env_overrides(vars)).expect("valid");
        assert_eq!(s.jobs.jobs.redis.as_ref().and_then(|r| r.url()), Some("redis://127.0.0.1:7000"));
        assert_eq!(s.app.notify.webhook_url.as_deref(), Some("http://127.0.0.1:9/hook"));
        let e = Settings::from_yaml(DEFAULT_CONFIG, "c")
            .and_then(|s| s.with_env_overrides([("APP_SMTP_URL", "smtps://u:hunter2@mail:port")]))
            .expect_err("not a port");
        let msg = e.to_string();
        assert!(msg.starts_with("APP_SMTP_URL: app.email.smtp_url:"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let s = Settings::from_yaml(DEFAULT_CONFIG, "c")
            .and_then(|s| s.with_env_overrides([("APP_WEBHOOK_SECRET", "whsec_1")]))
            .expect("valid");
        assert_eq!(s.app.notify.signing_secret.as_deref(), Some("whsec_1"));
        assert!(!format!("{:?}", s.app.notify).contains("whsec_1"), "the secret is not shown");
        assert!(s.app.email.starttls, "STARTTLS is required unless turned off");
        assert!(Settings::load_with_env(None, NO_ENV).is_ok());
    }

    #[test]
    fn paths_must_stay_inside_the_data_dir() {
        let text = "app:\n  cleanup: { log_dir: \"../etc\" }\n";
        let msg = Settings::from_yaml(text, "c").expect_err("escapes").to_string();
        assert!(msg.contains("app.cleanup.log_dir"), "{msg}");
    }

    #[test]
    fn cleanup_areas_are_subfolders_apart_from_the_database() {
        for (text, key) in [
            ("app:\n  cleanup: { temp_dir: \".\" }\n", "app.cleanup.temp_dir"),
            ("app:\n  cleanup: { user_files_dir: \"./.\" }\n", "app.cleanup.user_files_dir"),
            ("app:\n  cleanup: { temp_dir: \"tmp\", database: \"tmp/app.db\" }\n", "app.cleanup.temp_dir"),
        ] {
            let msg = Settings::from_yaml(text, "c").expect_err(text).to_string();
            assert!(msg.contains(key), "{text}: {msg}");
        }
    }

    #[test]
    fn admin_routes_and_webhook_targets_are_opt_in() {
        let s = Settings::from_yaml(DEFAULT_CONFIG, "c").expect("valid");
        assert!(!s.app.http.admin, "metrics and health only, by default");
        assert!(!s.app.notify.allow_private && s.app.notify.allow.is_empty(), "public webhook targets only");
        let s = s.with_env_overrides([("APP_HTTP_ADMIN", "true")]).expect("valid");
        assert!(s.app.http.admin);
        let e = Settings::from_yaml(DEFAULT_CONFIG, "c")
            .and_then(|s| s.with_env_overrides([("APP_HTTP_ADMIN", "maybe")]))
            .expect_err("not a boolean");
        assert!(e.to_string().contains("APP_HTTP_ADMIN: app.http.admin"), "{e}");
        let text = "app:\n  notify: { allow: [\"127.0.0.1:9000\", \"intranet.local\"] }\n";
        let msg = Settings::from_yaml(text, "c").expect_err("a name").to_string();
        assert!(msg.contains("app.notify.allow") && msg.contains("intranet.local"), "{msg}");
    }
}
