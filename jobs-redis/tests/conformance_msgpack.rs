//! The conformance suite with payloads stored as MessagePack: the backend
//! transcodes on the way in and out, and nothing else may change.
#![cfg(feature = "msgpack")]
#![allow(clippy::unwrap_used)]

use jobs_redis::testing::shared_server_url;
use jobs_redis::{PayloadFormat, RedisConfig, RedisQueue};

jobs_core::conformance_suite!(|| async {
    let prefix = jobs_core::testing::unique_queue("msgpack");
    let config =
        RedisConfig { prefix, payload_format: PayloadFormat::MessagePack, ..RedisConfig::new(shared_server_url()) };
    RedisQueue::from_config(&config).await.unwrap()
});
