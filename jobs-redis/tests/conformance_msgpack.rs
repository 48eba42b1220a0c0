//! The conformance suite with payloads stored as MessagePack (typed
//! enqueues encode in it, the worker decodes it): nothing else may change.
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

mod workflows {
    use super::*;

    jobs_core::conformance_suite!(|| async {
        let prefix = jobs_core::testing::unique_queue("msgpack");
        let config =
            RedisConfig { prefix, payload_format: PayloadFormat::MessagePack, ..RedisConfig::new(shared_server_url()) };
        RedisQueue::from_config(&config).await.unwrap()
    }; workflows);
}

mod carried {
    //! The payload's format travels with it: what a typed enqueue encodes is
    //! what the worker receives, byte for byte, whatever the handle reading it.

    use std::time::Duration;

    use jobs_core::backend::{FetchRequest, PayloadFormat};
    use jobs_core::prelude::*;
    use jobs_core::testing::unique_queue;
    use jobs_redis::testing::shared_server_url;
    use jobs_redis::{RedisConfig, RedisQueue};
    use serde::Serialize;

    #[job]
    async fn carry(to: String, tries: u32, note: Option<String>) -> Result<(), JobError> {
        let _ = (to, tries, note);
        Ok(())
    }

    /// The same fields in the same order, encoded directly.
    #[derive(Serialize)]
    struct Expected<'a> {
        to: &'a str,
        tries: u32,
        note: Option<&'a str>,
    }

    async fn handle(prefix: &str, format: PayloadFormat) -> RedisQueue {
        let config =
            RedisConfig { prefix: prefix.to_owned(), payload_format: format, ..RedisConfig::new(shared_server_url()) };
        RedisQueue::from_config(&config).await.unwrap()
    }

    fn req(queue: &str) -> FetchRequest {
        FetchRequest {
            queues: vec![queue.into()],
            max: 10,
            lease: Duration::from_secs(30),
            default_max_retries: 3,
            max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
        }
    }

    #[test]
    fn a_typed_payload_reaches_the_worker_as_encoded_under_either_setting() {
        jobs_core::testing::run(async {
            let prefix = unique_queue("carry");
            let queue = unique_queue("carried");
            let msgpack = handle(&prefix, PayloadFormat::MessagePack).await;
            let json = handle(&prefix, PayloadFormat::Json).await;
            let expected = Expected { to: "a@example.com", tries: 3, note: None };
            let mut want_msgpack = Vec::new();
            expected.serialize(&mut rmp_serde::Serializer::new(&mut want_msgpack).with_struct_map()).unwrap();
            let want_json = serde_json::to_vec(&expected).unwrap();

            let job = || Carry { to: "a@example.com".into(), tries: 3, note: None };
            let options = || JobOptions::new().queue(&queue);
            let by_msgpack = job().enqueue_with(&msgpack, options()).await.unwrap();
            let by_json = job().enqueue_with(&json, options()).await.unwrap();

            // Read through the other handle: the setting decides how a
            // payload is written, never how one is read.
            let leased = json.fetch(&req(&queue)).await.unwrap().jobs;
            assert_eq!(leased.len(), 2);
            // Found by id: two ids of one millisecond are in no set order.
            let of = |id: &JobId| leased.iter().find(|l| &l.id == id).unwrap_or_else(|| panic!("{id} leased"));
            assert_eq!(of(&by_msgpack).format, PayloadFormat::MessagePack);
            assert_eq!(of(&by_msgpack).payload, want_msgpack, "the bytes the producer encoded");
            assert_eq!(of(&by_json).format, PayloadFormat::Json);
            assert_eq!(of(&by_json).payload, want_json);
            for l in &leased {
                let back: Carry = l.format.decode(&l.payload).unwrap();
                assert_eq!((back.to.as_str(), back.tries, back.note), ("a@example.com", 3, None));
            }

            // Views show both as JSON.
            for id in [&by_msgpack, &by_json] {
                let info = msgpack.job(id).await.unwrap().unwrap();
                assert_eq!(info.payload, serde_json::json!({"to": "a@example.com", "tries": 3, "note": null}));
            }
        });
    }

    #[test]
    fn a_messagepack_payload_that_is_not_a_map_is_refused() {
        jobs_core::testing::run(async {
            let q = handle(&unique_queue("carry"), PayloadFormat::MessagePack).await;
            let mut j = Carry { to: "x".into(), tries: 1, note: None }.into_new_job(JobOptions::new()).unwrap();
            j.format = PayloadFormat::MessagePack;
            let e = q.enqueue_many(vec![j]).await.unwrap_err();
            assert!(e.to_string().contains("a MessagePack payload must be a map"), "{e}");
        });
    }
}
