//! The backend conformance suite of `jobs-core`, against a `redis-server`
//! this test binary starts itself (shared by every case: each uses queue
//! names of its own).
#![allow(clippy::unwrap_used)]

use jobs_redis::testing::shared_server_url;
use jobs_redis::RedisQueue;

jobs_core::conformance_suite!(|| async { RedisQueue::connect(&shared_server_url()).await.unwrap() });
