#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod acl;
mod admin;
mod archive;
mod codec;
mod config;
mod conn;
mod connect;
mod decode;
mod error;
mod events;
mod flows;
mod hot;
pub mod keys;
mod list;
mod partitions;
mod port;
mod queue;
mod routed;
mod schedules;
mod scripts;
mod waiter;

#[cfg(feature = "testing")]
pub mod testing;

pub use acl::acl_rules;
pub use codec::PayloadFormat;
pub use config::{RedisConfig, TlsFiles};
pub use error::{mask_url, RedisQueueError};
pub use partitions::MAX_PARTITIONS;
pub use queue::RedisQueue;
pub use routed::{open, DEFAULT_BACKEND};
