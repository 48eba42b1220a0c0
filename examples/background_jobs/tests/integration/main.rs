//! Integration tests of the example application: every kind of job, run by
//! a real worker pool on the embedded MemoryQueue, with real files, a real
//! SQLite database, a local webhook receiver and a local fake SMTP server;
//! and the demo end to end.
//!
//! The jobs' environment is process-wide, so tests that start an
//! application take a lock (see `support::Harness`) and run one at a time.

mod cleanup;
mod demo;
mod email;
mod endpoints;
mod files;
mod notify;
mod signals;
mod smtp;
mod support;
