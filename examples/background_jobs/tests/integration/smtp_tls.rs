//! Mail over SMTP with STARTTLS, against a small SMTP server on 127.0.0.1
//! written here: it offers STARTTLS, upgrades the connection with a
//! self-signed certificate (trusted through `app.email.ca_file`) and records
//! every command with whether it came encrypted.

use std::sync::{Arc, Mutex};

use background_jobs::jobs::email::SendWelcomeEmail;
use background_jobs::mail::Delivery;
use jobs_core::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::{dead_after, succeeded, Harness};
use crate::tls::TestCert;

/// What the server saw.
#[derive(Debug, Default)]
struct Transcript {
    /// Every command line, with whether it arrived over TLS.
    commands: Vec<(bool, String)>,
    /// Every message accepted, with whether it arrived over TLS.
    messages: Vec<(bool, String)>,
}

type Shared = Arc<Mutex<Transcript>>;

/// Serves SMTP on 127.0.0.1; offers STARTTLS when `offer_starttls`.
async fn smtp_server(acceptor: TlsAcceptor, offer_starttls: bool) -> (u16, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Shared::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let mut plain = BufReader::new(stream);
                let _ = plain.get_mut().write_all(b"220 tls.test ESMTP\r\n").await;
                if session(&mut plain, false, offer_starttls, &log).await == Next::StartTls {
                    // The client waits for the 220 before its handshake, so
                    // nothing is left in the buffer.
                    if let Ok(tls) = acceptor.accept(plain.into_inner()).await {
                        session(&mut BufReader::new(tls), true, false, &log).await;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    Close,
    StartTls,
}

/// One SMTP conversation on `stream` until QUIT, a closed connection, or
/// STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    encrypted: bool,
    offer_starttls: bool,
    log: &Shared,
) -> Next {
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return Next::Close,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']).to_owned();
        if let Some(body) = data.as_mut() {
            if text == "." {
                log.lock().expect("lock").messages.push((encrypted, std::mem::take(body)));
                data = None;
                let _ = stream.get_mut().write_all(b"250 2.0.0 queued\r\n").await;
            } else {
                body.push_str(&text);
                body.push('\n');
            }
            continue;
        }
        log.lock().expect("lock").commands.push((encrypted, text.clone()));
        let upper = text.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offer_starttls {
                b"250-tls.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else {
                b"250-tls.test\r\n250 8BITMIME\r\n"
            }
        } else if upper == "STARTTLS" && offer_starttls {
            let _ = stream.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n").await;
            return Next::StartTls;
        } else if upper == "DATA" {
            data = Some(String::new());
            b"354 go ahead\r\n"
        } else if upper == "QUIT" {
            let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
            return Next::Close;
        } else {
            b"250 ok\r\n"
        };
        let _ = stream.get_mut().write_all(reply).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_after_starttls_and_arrives_encrypted() {
    let cert = TestCert::new();
    let (port, seen) = smtp_server(cert.acceptor(), true).await;
    let h = Harness::start(|s| {
        s.app.email.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.app.email.starttls = true;
        s.app.email.ca_file = Some(cert.ca_file.clone());
    })
    .await;
    let id = SendWelcomeEmail::new("ann@example.com".into(), "Ann".into()).enqueue(&h.app.queue).await.expect("valid");
    let d: Delivery = serde_json::from_value(succeeded(&h.finished(&id).await)).expect("a Delivery");
    assert_eq!(d.transport, "smtp");
    assert!(d.reply.as_deref().is_some_and(|r| r.starts_with("250")), "{d:?}");

    let t = std::mem::take(&mut *seen.lock().expect("lock"));
    let position = |verb: &str| t.commands.iter().position(|(_, c)| c.to_ascii_uppercase().starts_with(verb));
    let starttls = position("STARTTLS").expect("STARTTLS was sent");
    let mail_from = position("MAIL FROM").expect("MAIL FROM was sent");
    assert!(starttls < mail_from, "STARTTLS before MAIL FROM: {:?}", t.commands);
    assert!(!t.commands[starttls].0, "STARTTLS itself in plain text");
    assert!(t.commands[starttls + 1..].iter().all(|(encrypted, _)| *encrypted), "then TLS only: {:?}", t.commands);
    assert!(t.commands[mail_from].1.contains("<no-reply@example.com>"), "{:?}", t.commands);
    assert_eq!(t.messages.len(), 1);
    let (encrypted, message) = &t.messages[0];
    assert!(encrypted, "the message came over TLS");
    assert!(message.contains("To: Ann <ann@example.com>"), "{message}");
    assert!(message.contains("Your account at Example App is ready."), "{message}");
    assert!(message.contains("Subject: Welcome to Example App, Ann!"), "{message}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_gets_no_mail_when_it_is_required() {
    let cert = TestCert::new();
    let (port, seen) = smtp_server(cert.acceptor(), false).await;
    let h = Harness::start(|s| {
        s.app.email.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.app.email.ca_file = Some(cert.ca_file.clone());
    })
    .await;
    let id = SendWelcomeEmail::new("ann@example.com".into(), "Ann".into())
        .enqueue_with(&h.app.queue, JobOptions::new().max_retries(0))
        .await
        .expect("valid");
    let err = dead_after(&h.finished(&id).await, 1);
    assert!(err.contains("SMTP delivery failed"), "{err}");
    let t = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(t.commands.iter().any(|(_, c)| c.starts_with("EHLO")), "the client spoke: {:?}", t.commands);
    assert!(!t.commands.iter().any(|(_, c)| c.starts_with("MAIL FROM")), "no envelope in plain text: {:?}", t.commands);
    assert!(t.messages.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_checks_the_certificate() {
    let cert = TestCert::new();
    let (port, seen) = smtp_server(cert.acceptor(), true).await;
    // No ca_file: the self-signed certificate is not trusted.
    let h = Harness::start(|s| s.app.email.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    let id = SendWelcomeEmail::new("ann@example.com".into(), "Ann".into())
        .enqueue_with(&h.app.queue, JobOptions::new().max_retries(0))
        .await
        .expect("valid");
    let err = dead_after(&h.finished(&id).await, 1);
    assert!(err.contains("certificate"), "{err}");
    let t = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(t.commands.iter().any(|(_, c)| c == "STARTTLS"), "{:?}", t.commands);
    assert!(!t.commands.iter().any(|(_, c)| c.starts_with("MAIL FROM")), "{:?}", t.commands);
    h.stop().await;
}
