//! Mail delivery through `lettre`: an SMTP server when `app.email.smtp_url`
//! is set, else `.eml` files in the outbox folder.
//!
//! SMTP goes over TLS through rustls (ring): `smtp://` upgrades with
//! STARTTLS, required unless `app.email.starttls` is off (then plain text,
//! for a local relay or test server only), and `smtps://` speaks TLS from
//! the first byte. The server's certificate is verified against the
//! system's roots plus the certificates of `app.email.ca_file`.

mod templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (`smtps://`).
    ImplicitTls,
    /// Plain text upgraded with STARTTLS, which the server must offer
    /// (`smtp://`, `app.email.starttls` on).
    StartTls,
    /// Plain text (`smtp://`, `app.email.starttls` off).
    Plain,
}

/// Where `smtp_url` points: `smtp://[user[:password]@]host[:port]` (port
/// 25 by default) or `smtps://..` (port 465 by default).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    /// Host name or address; also the name its certificate must carry.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User and password for `AUTH`, if given.
    pub credentials: Option<(String, String)>,
    /// `smtps://`.
    pub implicit_tls: bool,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

/// An `smtp_url` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SmtpUrlError(String);

impl SmtpTarget {
    /// Parses `smtp://[user[:password]@]host[:port]` or `smtps://..`.
    pub fn parse(url: &str) -> Result<Self, SmtpUrlError> {
        let masked = jobs_core::config::mask_url_password(url);
        let (rest, implicit_tls) = match url.split_once("://") {
            Some(("smtp", rest)) => (rest, false),
            Some(("smtps", rest)) => (rest, true),
            _ => {
                return Err(SmtpUrlError(format!(
                    "`{masked}` is not an SMTP URL: write e.g. smtp://mail.example.com:587 or smtps://mail.example.com"
                )))
            }
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
            None => (hostport, if implicit_tls { 465 } else { 25 }),
        };
        if host.is_empty() {
            return Err(SmtpUrlError(format!("`{masked}` names no host")));
        }
        let credentials = userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (user.to_owned(), pass.to_owned()),
            None => (u.to_owned(), String::new()),
        });
        Ok(SmtpTarget { host: host.to_owned(), port, credentials, implicit_tls })
    }

    /// How the connection is secured, `starttls` being `app.email.starttls`.
    pub fn security(&self, starttls: bool) -> SmtpSecurity {
        match (self.implicit_tls, starttls) {
            (true, _) => SmtpSecurity::ImplicitTls,
            (false, true) => SmtpSecurity::StartTls,
            (false, false) => SmtpSecurity::Plain,
        }
    }
}

/// Why the SMTP transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    /// `app.email.ca_file` could not be read.
    #[error("app.email.ca_file: {0}")]
    CaFile(#[from] crate::tls::CaFileError),
    /// The CA file or the TLS settings were refused.
    #[error("app.email: TLS settings")]
    Tls(#[source] lettre::transport::smtp::Error),
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
        /// How the connection is secured.
        security: SmtpSecurity,
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

    /// Delivers through the SMTP server at `target`, secured as `security`
    /// says, trusting the certificates of `ca_pem` besides the system's
    /// roots; one conversation may take up to `timeout`.
    pub fn smtp(
        target: &SmtpTarget,
        security: SmtpSecurity,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, SmtpSetupError> {
        let tls = match security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls => {
                crate::tls::install_ring_provider();
                let mut params = TlsParameters::builder(target.host.clone());
                if let Some(pem) = ca_pem {
                    params = params.add_root_certificate(Certificate::from_pem(pem).map_err(SmtpSetupError::Tls)?);
                }
                let params = params.build_rustls().map_err(SmtpSetupError::Tls)?;
                if security == SmtpSecurity::StartTls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        // `builder_dangerous` only means "no TLS unless told": `tls` says.
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
            .port(target.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, pass)) = &target.credentials {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer::Smtp { server: format!("{}:{}", target.host, target.port), security, transport: b.build() })
    }

    /// What it delivers to, for people.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Outbox { dir, .. } => format!("outbox {}", dir.display()),
            Mailer::Smtp { server, security, .. } => {
                let how = match security {
                    SmtpSecurity::ImplicitTls => "TLS",
                    SmtpSecurity::StartTls => "STARTTLS required",
                    SmtpSecurity::Plain => "plain text, no TLS",
                };
                format!("SMTP server {server} ({how})")
            }
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
        assert_eq!(t.security(true), SmtpSecurity::StartTls);
        assert_eq!(t.security(false), SmtpSecurity::Plain);
        assert_eq!(SmtpTarget::parse("smtp://127.0.0.1").expect("valid").port, 25);
        let t = SmtpTarget::parse("smtps://ann:s3cret@mail").expect("valid");
        assert_eq!((t.port, t.security(false)), (465, SmtpSecurity::ImplicitTls));
        let e = SmtpTarget::parse("smtps://ann:s3cret@mail:x").expect_err("no port").to_string();
        assert!(e.contains("not a port number") && !e.contains("s3cret"), "{e}");
        assert!(SmtpTarget::parse("http://x").is_err());
        assert!(SmtpTarget::parse("smtp://host:port").is_err());
    }
}
