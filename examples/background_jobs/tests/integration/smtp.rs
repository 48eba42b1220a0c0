//! Email jobs through plain SMTP (`app.email.starttls: false`), against a
//! small fake SMTP server on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use background_jobs::jobs::email::SendWelcomeEmail;
use background_jobs::mail::Delivery;
use jobs_core::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{dead_after, succeeded, Harness};

/// What the fake server received: one entry per accepted message.
type Inbox = Arc<Mutex<Vec<String>>>;

/// A fake SMTP server. `RCPT TO` decides the reply by the address:
/// `reject@..` gets 550, `busy@..` gets 451 the first time, anything else 250.
async fn fake_smtp() -> (u16, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let inbox = Inbox::default();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let inbox2 = inbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (inbox, seen) = (inbox2.clone(), seen.clone());
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake.test ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            inbox.lock().expect("lock").push(std::mem::take(body));
                            data = None;
                            let _ = w.write_all(b"250 2.0.0 queued as 42\r\n").await;
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-fake.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO") {
                        let n = {
                            let mut seen = seen.lock().expect("lock");
                            let n = seen.entry(upper.clone()).or_insert(0);
                            *n += 1;
                            *n
                        };
                        if upper.contains("REJECT@") {
                            b"550 5.1.1 no such user\r\n"
                        } else if upper.contains("BUSY@") && n == 1 {
                            b"451 4.3.0 try again later\r\n"
                        } else {
                            b"250 2.1.5 ok\r\n"
                        }
                    } else if upper == "DATA" {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, inbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_and_sorts_replies_into_retry_and_dead() {
    let (port, inbox) = fake_smtp().await;
    let h = Harness::start(|s| {
        s.app.email.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        // This server speaks plain SMTP only (see smtp_tls for STARTTLS).
        s.app.email.starttls = false;
    })
    .await;
    let q = &h.app.queue;
    let ok = SendWelcomeEmail::new("ann@example.com".into(), "Ann".into()).enqueue(q).await.expect("valid");
    let rejected = SendWelcomeEmail::new("reject@example.com".into(), "R".into()).enqueue(q).await.expect("valid");
    let busy = SendWelcomeEmail::new("busy@example.com".into(), "B".into()).enqueue(q).await.expect("valid");

    let info = h.finished(&ok).await;
    let d: Delivery = serde_json::from_value(succeeded(&info)).expect("a Delivery");
    assert_eq!(d.transport, "smtp");
    assert!(d.reply.as_deref().is_some_and(|r| r.starts_with("250")), "{d:?}");

    let err = dead_after(&h.finished(&rejected).await, 1);
    assert!(err.contains("SMTP delivery failed") && err.contains("no such user"), "a 5xx is permanent: {err}");

    let info = h.finished(&busy).await;
    succeeded(&info);
    assert_eq!(info.attempts, 2, "a 4xx is retried: {:?}", info.attempt_log);
    assert!(info.attempt_log[0].error.as_deref().is_some_and(|e| e.contains("try again later")), "{info:?}");

    let got = inbox.lock().expect("lock").clone();
    assert_eq!(got.len(), 2, "ann and busy (on its second try)");
    assert!(got.iter().any(|m| m.contains("Subject: Welcome to Example App, Ann!")), "{got:?}");
    h.stop().await;
}
