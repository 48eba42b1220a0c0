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

/// The suite again with every queue spread over three partitions: each
/// case's jobs, ids, counts, listings and events go through the partitions.
/// All but the `queue_wide` cases, which need a queue in one slot (see
/// `docs/partitions.md`; `partitions.rs` in this directory tests what holds
/// instead).
mod partitioned {
    use super::*;

    async fn partitioned() -> RedisQueue {
        let prefix = jobs_core::testing::unique_queue("jobs");
        let partitions = [("*".to_owned(), 3)].into();
        RedisQueue::from_config(&RedisConfig { prefix, partitions, ..RedisConfig::new(shared_server_url()) })
            .await
            .unwrap()
    }

    jobs_core::conformance_suite!(partitioned; hot, admin, presence, history, schedules, events);

    mod workflows {
        use super::*;
        jobs_core::conformance_suite!(partitioned; workflows);
    }
}
