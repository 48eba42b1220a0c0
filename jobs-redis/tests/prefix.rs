//! Two applications share one Redis with different key prefixes and the
//! same queue names: neither sees the other's jobs, statistics, paused
//! queues, dead jobs, schedules or worker pools, and a pool of one never
//! runs a job of the other.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use jobs_core::testing::jobs::{Act, ProbeJob};
use jobs_core::testing::{eventually, probe, run, test_pool, unique_queue, wait_status};
use jobs_core::{
    CatchUp, JobExt, JobOptions, JobStatus, PoolPresence, QueueAdmin, QueueInspect, ScheduleDef, ScheduleStore,
};
use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

async fn app(prefix: &str) -> RedisQueue {
    RedisQueue::from_config(&RedisConfig { prefix: prefix.to_owned(), ..RedisConfig::new(shared_server_url()) })
        .await
        .unwrap()
}

fn schedule(name: &str, queue: &str) -> ScheduleDef {
    ScheduleDef {
        payload: br#"{"key":"x","seq":0,"act":"Succeed"}"#.to_vec(),
        catch_up: CatchUp::default(),
        created_at: SystemTime::now(),
        ..ScheduleDef::new(name, "0 0 3 * * *", "UTC", "conformance.probe", queue)
    }
}

#[test]
fn two_applications_share_a_server_without_seeing_each_other() {
    run(async {
        let tag = unique_queue("apps");
        let (one, two) = (app(&format!("{tag}.one")).await, app(&format!("{tag}.two")).await);
        // The same queue name in both; the probe key tells their jobs apart.
        let queue = unique_queue("shared");
        let (key1, key2) = (format!("{queue}.one"), format!("{queue}.two"));
        let job = |key: &str, seq| ProbeJob { key: key.to_owned(), seq, act: Act::Succeed };
        let mut ids1 = Vec::new();
        for seq in 0..3 {
            ids1.push(job(&key1, seq).enqueue_with(&one, JobOptions::new().queue(&queue)).await.unwrap());
        }
        let id2 = job(&key2, 0).enqueue_with(&two, JobOptions::new().queue(&queue)).await.unwrap();
        let dead2 = ProbeJob { key: key2.clone(), seq: 1, act: Act::Permanent }
            .enqueue_with(&two, JobOptions::new().queue(&queue))
            .await
            .unwrap();

        // Jobs and statistics.
        assert!(two.job(&ids1[0]).await.unwrap().is_none(), "app two cannot look up app one's job");
        assert!(one.job(&id2).await.unwrap().is_none());
        assert_eq!(one.stats().await.unwrap().queue(&queue).pending, 3);
        assert_eq!(two.stats().await.unwrap().queue(&queue).pending, 2);
        assert!(one.cancel(&id2).await.is_err(), "app one cannot cancel app two's job");

        // Pausing a queue of one application leaves the other's running.
        one.pause(&queue).await.unwrap();
        assert!(!two.stats().await.unwrap().queues[&queue].paused);
        let pool2 = test_pool(two.clone(), &[&queue]).start().unwrap();
        wait_status(&two, &id2, JobStatus::Succeeded).await;
        wait_status(&two, &dead2, JobStatus::Dead).await;
        assert_eq!(probe(&key1).start_count(), 0, "app two's pool ran none of app one's jobs");
        assert_eq!(one.stats().await.unwrap().queue(&queue).pending, 3);
        assert!(one.dead_jobs(&queue, 10).await.unwrap().is_empty());
        assert_eq!(two.dead_jobs(&queue, 10).await.unwrap().len(), 1);

        // Worker pools and schedules.
        eventually("app two's pool is listed", || async { !two.pools().await.unwrap().is_empty() }).await;
        assert!(one.pools().await.unwrap().is_empty(), "app one sees no pool of app two");
        // (A pool adds the attribute schedules of the jobs it links: app two
        // has some of its own by now.)
        let names = |s: Vec<jobs_core::ScheduleState>| s.into_iter().map(|s| s.def.name).collect::<Vec<_>>();
        one.put_schedule(schedule("nightly", &queue)).await.unwrap();
        assert_eq!(names(one.schedules().await.unwrap()), ["nightly"]);
        assert!(
            !names(two.schedules().await.unwrap()).contains(&"nightly".to_owned()),
            "app two sees no schedule of app one"
        );
        assert!(!two.remove_schedule("nightly").await.unwrap());
        assert_eq!(names(one.schedules().await.unwrap()), ["nightly"]);
        pool2.shutdown().await.unwrap();

        one.resume(&queue).await.unwrap();
        let pool1 = test_pool(one.clone(), &[&queue]).start().unwrap();
        for id in &ids1 {
            wait_status(&one, id, JobStatus::Succeeded).await;
        }
        pool1.shutdown().await.unwrap();
        assert_eq!(probe(&key2).start_count(), 2, "app one's pool ran none of app two's jobs");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(two.stats().await.unwrap().queue(&queue).processed, 1);
        assert_eq!(one.stats().await.unwrap().queue(&queue).processed, 3);
    });
}
