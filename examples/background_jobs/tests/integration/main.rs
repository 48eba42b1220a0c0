//! Integration tests of the example application: every kind of job, run by
//! a real worker pool on the embedded MemoryQueue, with real files, a real
//! SQLite database, local webhook receivers (HTTP, and HTTPS with a
//! certificate made by the test) and local SMTP servers (plain, and with
//! STARTTLS); and the demo end to end. Webhooks may reach loopback only
//! (`support::settings`): no test sends anything off the machine.
//!
//! The jobs' environment is process-wide, so tests that start an
//! application take a lock (see `support::Harness`) and run one at a time.

mod cleanup;
mod demo;
mod email;
mod endpoints;
mod files;
mod notify;
mod sandbox;
mod signals;
mod smtp;
mod smtp_tls;
mod support;
mod tls;
mod webhook_tls;
