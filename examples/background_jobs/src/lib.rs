#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod db;
pub mod demo;
pub mod env;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod progress;
pub mod reporter;
pub mod tls;

pub use app::{App, AppError, BackendKind, Http, StartOptions};
pub use config::{AppConfig, ConfigError, Settings};
pub use demo::{run_demo, DemoReport};
pub use env::AppEnv;
