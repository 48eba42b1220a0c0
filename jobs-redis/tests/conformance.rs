//! The backend conformance suite of `jobs-core`, against a `redis-server`
//! this test binary starts itself and shares between the cases.
//!
//! Each case gets a key prefix of its own: queue names already differ per
//! case, but schedules and pool presence are backend-wide (a scheduler pass
//! handles every stored schedule), so cases sharing a prefix would see each
//! other's.
#![allow(clippy::unwrap_used)]

use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

jobs_core::conformance_suite!(|| async {
    let prefix = jobs_core::testing::unique_queue("jobs");
    RedisQueue::from_config(&RedisConfig { prefix, ..RedisConfig::new(shared_server_url()) }).await.unwrap()
});

mod workflows {
    use super::*;

    jobs_core::conformance_suite!(|| async {
        let prefix = jobs_core::testing::unique_queue("jobs");
        RedisQueue::from_config(&RedisConfig { prefix, ..RedisConfig::new(shared_server_url()) }).await.unwrap()
    }; workflows);
}
