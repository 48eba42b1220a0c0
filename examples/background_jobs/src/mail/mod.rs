//! Mail delivery through `lettre`: an SMTP server when `app.email.smtp_url`
//! is set, else `.eml` files in the outbox folder.
//!
//! SMTP is spoken in plain text, without STARTTLS or TLS: every TLS stack
//! `lettre` offers would add C code to the build (OpenSSL, aws-lc, ring), and
//! this example keeps its build pure Rust. Point it at a local relay or a
//! test server (Mailpit, MailHog); for a real provider, enable one of
//! `lettre`'s TLS features and build the transport with `relay(..)`.

mod templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

pub use templates::{Rendered, TemplateError, Templates, TEMPLATE_FILES};

/// Why a mail was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address does not parse.
    #[error("`{address}` is not a mail address")]
    Address {
        /// The text.
        address: String,
        /// Why.
        #[source]
        source: lettre::address::AddressError,
    },
    /// The message could not be built.
    #[error("cannot build the message")]
    Build(#[from] lettre::error::Error),
    /// The template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The outbox file could not be written.
    #[error("cannot write to the outbox")]
    Outbox(#[source] lettre::transport::file::Error),
    /// The SMTP server refused the mail or could not be reached.
    #[error("SMTP delivery failed")]
    Smtp(#[source] lettre::transport::smtp::Error),
}

impl MailError {
    /// Whether no retry can help: a bad address or template, or a 5xx reply
    /// of the SMTP server. Timeouts, connection failures and 4xx replies are
    /// worth retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            MailError::Address { .. } | MailError::Build(_) | MailError::Template(_) => true,
            MailError::Outbox(_) => false,
            MailError::Smtp(e) => e.is_permanent(),
        }
    }
}

/// Where `smtp_url` points: `smtp://[user[:password]@]host[:port]` (port
/// 25 by default). `smtps://` is refused: this build has no TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User and password for `AUTH`, if given.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

/// An `smtp_url` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SmtpUrlError(String);

impl SmtpTarget {
    /// Parses `smtp://[user[:password]@]host[:port]`.
    pub fn parse(url: &str) -> Result<Self, SmtpUrlError> {
        let masked = jobs_core::config::mask_url_password(url);
        let rest = match url.split_once("://") {
            Some(("smtp", rest)) => rest,
            Some(("smtps", _)) => {
                return Err(SmtpUrlError(format!(
                    "`{masked}`: this build speaks plain SMTP only (no TLS, to keep C code out of the build); \
                     use smtp://host:port with a local relay"
                )))
            }
            _ => return Err(SmtpUrlError(format!("`{masked}` is not an SMTP URL: write e.g. smtp://127.0.0.1:1025"))),
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse().map_err(|_| SmtpUrlError(format!("`{masked}`: `{p}` is not a port number")))?;
                (h, port)
            }
            None => (hostport, 25),
        };
        if host.is_empty() {
            return Err(SmtpUrlError(format!("`{masked}` names no host")));
        }
        let credentials = userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (user.to_owned(), pass.to_owned()),
            None => (u.to_owned(), String::new()),
        });
        Ok(SmtpTarget { host: host.to_owned(), port, credentials })
    }
}

/// Where a mail went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `outbox` or `smtp`.
    pub transport: String,
    /// The outbox file, for the outbox.
    pub path: Option<PathBuf>,
    /// The server's reply, for SMTP.
    pub reply: Option<String>,
    /// The `Message-ID` header.
    pub message_id: String,
}

/// A mail transport.
pub enum Mailer {
    /// `.eml` files in a folder.
    Outbox {
        /// The folder.
        dir: PathBuf,
        /// lettre's file transport.
        transport: AsyncFileTransport<Tokio1Executor>,
    },
    /// An SMTP server.
    Smtp {
        /// `host:port`, for messages.
        server: String,
        /// lettre's SMTP transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
            Mailer::Smtp { server, .. } => write!(f, "Mailer::Smtp({server})"),
        }
    }
}

impl Mailer {
    /// Writes `.eml` files into `dir` (which must exist).
    pub fn outbox(dir: &Path) -> Self {
        Mailer::Outbox { dir: dir.to_path_buf(), transport: AsyncFileTransport::new(dir) }
    }

    /// Delivers through the SMTP server at `target`; one conversation may
    /// take up to `timeout`.
    pub fn smtp(target: &SmtpTarget, timeout: Duration) -> Self {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
            .port(target.port)
            .timeout(Some(timeout));
        if let Some((user, pass)) = &target.credentials {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Mailer::Smtp { server: format!("{}:{}", target.host, target.port), transport: b.build() }
    }

    /// What it delivers to, for people.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Outbox { dir, .. } => format!("outbox {}", dir.display()),
            Mailer::Smtp { server, .. } => format!("SMTP server {server} (plain, no TLS)"),
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<Delivery, MailError> {
        let message_id = message.headers().get_raw("Message-ID").map(str::to_owned).unwrap_or_default();
        match self {
            Mailer::Outbox { dir, transport } => {
                let id = transport.send(message).await.map_err(MailError::Outbox)?;
                Ok(Delivery {
                    transport: "outbox".into(),
                    path: Some(dir.join(format!("{id}.eml"))),
                    reply: None,
                    message_id,
                })
            }
            Mailer::Smtp { transport, .. } => {
                let reply = transport.send(message).await.map_err(MailError::Smtp)?;
                Ok(Delivery {
                    transport: "smtp".into(),
                    path: None,
                    reply: Some(format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" "))),
                    message_id,
                })
            }
        }
    }
}

/// Parses an address or `Name <address>`.
pub fn mailbox(text: &str) -> Result<Mailbox, MailError> {
    text.parse().map_err(|source| MailError::Address { address: text.to_owned(), source })
}

/// Builds a text + HTML message. `message_id` becomes `<message_id@domain
/// of from>`, so a retried job sends the same Message-ID and a receiving
/// system can drop the duplicate.
pub fn compose(from: &Mailbox, to: Mailbox, mail: Rendered, message_id: &str) -> Result<Message, MailError> {
    let domain = from.email.domain().to_owned();
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .message_id(Some(format!("<{message_id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let t = SmtpTarget::parse("smtp://ann:s3cret@mail.local:2525").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("mail.local", 2525));
        assert_eq!(t.credentials, Some(("ann".into(), "s3cret".into())));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(SmtpTarget::parse("smtp://127.0.0.1").expect("valid").port, 25);
        let e = SmtpTarget::parse("smtps://ann:s3cret@mail").expect_err("no TLS").to_string();
        assert!(e.contains("no TLS") && !e.contains("s3cret"), "{e}");
        assert!(SmtpTarget::parse("http://x").is_err());
        assert!(SmtpTarget::parse("smtp://host:port").is_err());
    }
}
