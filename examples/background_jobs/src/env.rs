//! [`AppEnv`]: what the jobs of this process work with — folders, the mail
//! transport and templates, the HTTP client and webhook signer, the database, and the queue
//! (for jobs that enqueue others).
//!
//! The worker pool shares it with its jobs: a job takes it (or only the
//! database, [`Db`]) as a `Data<AppEnv>` parameter, and a pool that is not
//! given it refuses to start ([`AppEnv::share`] adds both to a pool).
//! Payloads carry only data (paths relative to the data folder, not
//! absolute ones), so any process with the same configuration can run them.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use jobs_core::{JobError, SharedQueue};
use lettre::message::Mailbox;

use crate::config::Settings;
use crate::db::{Db, DbError};
use crate::http::{HttpClient, WebhookSigner};
use crate::mail::{self, Mailer, SmtpTarget, TemplateError, Templates};

/// Why the environment could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A folder could not be created.
    #[error("cannot create {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or set up.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The templates do not load.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A mail setting is wrong.
    #[error("mail settings: {0}")]
    Mail(String),
    /// The SMTP transport's TLS settings are wrong.
    #[error(transparent)]
    Smtp(#[from] crate::mail::SmtpSetupError),
    /// The webhook client's settings are wrong.
    #[error(transparent)]
    Webhooks(#[from] crate::http::HttpSetupError),
}

/// The folders of the application, all absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The data folder every other path is inside.
    pub data_dir: PathBuf,
    /// `.eml` files, when mails go to the outbox.
    pub outbox: PathBuf,
    /// The SQLite database.
    pub database: PathBuf,
    /// Scratch files.
    pub temp: PathBuf,
    /// Users' uploaded files.
    pub user_files: PathBuf,
    /// Log files.
    pub logs: PathBuf,
    /// Where file jobs write their outputs unless told otherwise.
    pub processed: PathBuf,
}

impl Paths {
    /// The folders the configuration names (nothing is created).
    pub fn new(settings: &Settings) -> Self {
        let data_dir = settings.data_dir();
        let app = &settings.app;
        Paths {
            outbox: data_dir.join(&app.email.outbox),
            database: data_dir.join(&app.cleanup.database),
            temp: data_dir.join(&app.cleanup.temp_dir),
            user_files: data_dir.join(&app.cleanup.user_files_dir),
            logs: data_dir.join(&app.cleanup.log_dir),
            processed: data_dir.join("processed"),
            data_dir,
        }
    }
}

/// The environment jobs run in. Built by [`AppEnv::new`], shared with a
/// worker pool's jobs by [`AppEnv::share`].
pub struct AppEnv {
    /// The configuration it was built from.
    pub settings: Settings,
    /// Folders.
    pub paths: Paths,
    /// The mail sender.
    pub from: Mailbox,
    /// The mail transport.
    pub mailer: Mailer,
    /// The mail templates.
    pub templates: Templates,
    /// The webhook client.
    pub http: HttpClient,
    /// Signs webhooks, when `app.notify.signing_secret` is set.
    pub webhook_signer: Option<WebhookSigner>,
    /// The users and sessions database.
    pub db: Db,
    /// The backend, for jobs that enqueue other jobs.
    pub queue: SharedQueue,
}

impl std::fmt::Debug for AppEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppEnv").field("paths", &self.paths).field("mailer", &self.mailer).finish_non_exhaustive()
    }
}

impl AppEnv {
    /// What a worker pool shares with this application's jobs: the
    /// environment itself and its database (for jobs that take only that).
    pub fn share(self: &Arc<Self>) -> jobs_core::Extensions {
        let mut data = jobs_core::Extensions::default();
        data.insert_shared(Arc::clone(self));
        data.insert(self.db.clone());
        data
    }

    /// Creates the folders and the database schema, loads the templates and
    /// builds the mail transport.
    pub fn new(settings: Settings, queue: SharedQueue) -> Result<Self, EnvError> {
        let paths = Paths::new(&settings);
        let app = &settings.app;
        for dir in [&paths.data_dir, &paths.outbox, &paths.temp, &paths.user_files, &paths.logs, &paths.processed] {
            std::fs::create_dir_all(dir)
                .map_err(|source| EnvError::Folder { path: dir.display().to_string(), source })?;
        }
        let db = Db::new(&paths.database);
        db.migrate()?;
        let templates = match &app.email.templates_dir {
            Some(dir) => Templates::from_dir(dir)?,
            None => Templates::builtin()?,
        };
        let from = mail::mailbox(&app.email.from).map_err(|e| EnvError::Mail(e.to_string()))?;
        let mailer = match &app.email.smtp_url {
            Some(url) => {
                let target = SmtpTarget::parse(url).map_err(|e| EnvError::Mail(e.to_string()))?;
                let ca = crate::tls::read_ca_file(app.email.ca_file.as_deref()).map_err(mail::SmtpSetupError::from)?;
                Mailer::smtp(&target, target.security(app.email.starttls), ca.as_deref(), app.email.timeout)?
            }
            None => Mailer::outbox(&paths.outbox),
        };
        let http = HttpClient::from_config(&app.notify)?;
        let webhook_signer = app.notify.signing_secret.as_deref().map(|s| WebhookSigner::new(s.as_bytes()));
        if webhook_signer.is_none() {
            tracing::warn!("app.notify.signing_secret is not set: webhooks go out unsigned");
        }
        Ok(AppEnv { settings, paths, from, mailer, templates, http, webhook_signer, db, queue })
    }

    /// A path of a payload, inside the data folder. Payload paths are checked
    /// by [`relative_path`] when enqueued; this checks again (a producer of
    /// another version may have skipped it) and fails permanently.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, JobError> {
        check_relative(rel).map_err(JobError::permanent)?;
        Ok(self.paths.data_dir.join(rel))
    }

    /// `path` relative to the data folder, for results and messages.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.paths.data_dir).unwrap_or(path).display().to_string()
    }
}

/// Validator of payload paths (`#[validate(custom = relative_path)]`): a
/// relative path that stays inside the data folder.
#[allow(clippy::ptr_arg)] // `custom` validators take `&T` of the field's type, here `String`.
pub fn relative_path(p: &String) -> Result<(), String> {
    check_relative(p)
}

/// [`relative_path`] on a `&str`.
pub fn check_relative(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("is empty".into());
    }
    if path.is_absolute() || path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("`{p}` must be a path inside the data folder, like \"uploads/photo.jpg\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn payload_paths_stay_inside() {
        assert!(relative_path(&"uploads/a.png".to_owned()).is_ok());
        assert!(relative_path(&"./a.png".to_owned()).is_ok());
        assert!(relative_path(&"/etc/passwd".to_owned()).is_err());
        assert!(relative_path(&"uploads/../../x".to_owned()).is_err());
        assert!(relative_path(&String::new()).is_err());
    }
}
