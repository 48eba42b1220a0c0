//! Bad input: malformed jobs, given to `enqueue_many` as raw
//! payload bytes and written straight into the queue's Redis keys, must each
//! end dead with a clear error while the pool survives and other jobs flow.
//!
//! The direct writes follow the jobs-redis key layout of `keys.rs` and
//! `scripts/common.lua` (a queue's `jobs` hash: ulid -> record
//! `<rank>|<max_retries>|<timeout_ms>|<enqueued_delta>|<name_len>|<headers_len>|`
//! name, headers, payload; `ready:<rank>` lists of ulids). When that layout
//! changes, `direct` below must follow it.

use std::time::{Duration, Instant};

use jobs_chaos::{Fsync, RedisProc};
use jobs_core::prelude::*;
use jobs_core::{Backoff, JobInfo, JobStatus, NewJob, WorkerHandle};
use jobs_redis::keys::QueueKeys;
use jobs_redis::RedisQueue;
use serde::{Deserialize, Serialize};

const QUEUE: &str = "bad";

/// A nested payload type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Address {
    city: String,
    zip: u32,
}

/// The typed job the bad payloads claim to be.
#[job(name = "bad.typed", queue = "bad", retries = 2)]
async fn typed(
    #[validate(email)] email: String,
    count: u32,
    tags: Vec<String>,
    address: Option<Address>,
) -> Result<u32, JobError> {
    let _ = (email, tags, address);
    Ok(count)
}

fn raw(name: &str, payload: &[u8]) -> NewJob {
    // JSON whatever the bytes look like: these are bad JSON payloads.
    NewJob { format: jobs_core::backend::PayloadFormat::Json, ..NewJob::new(JobId::new(QUEUE), name, payload.to_vec()) }
}

/// `(case, job, what its error must say)`.
fn enqueued_cases() -> Vec<(&'static str, NewJob, &'static str)> {
    let huge = "x".repeat(300 * 1024);
    let deep = "[".repeat(100_000);
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    vec![
        ("truncated JSON", raw("bad.typed", br#"{"email":"a@b.example","count":1,"ta"#), "does not decode"),
        ("wrong types", raw("bad.typed", br#"{"email":5,"count":"x","tags":{},"address":[]}"#), "invalid type"),
        ("missing fields", raw("bad.typed", b"{}"), "missing field"),
        ("null payload", raw("bad.typed", b"null"), "does not decode"),
        ("array payload", raw("bad.typed", b"[1,2,3]"), "does not decode"),
        ("empty payload", raw("bad.typed", b""), "EOF"),
        ("binary garbage", raw("bad.typed", &garbage), "does not decode"),
        ("nesting 100,000 deep", raw("bad.typed", deep.as_bytes()), "does not decode"),
        (
            "huge string in a number field",
            raw("bad.typed", format!(r#"{{"email":"a@b.example","count":"{huge}","tags":[]}}"#).as_bytes()),
            "invalid type",
        ),
        (
            "huge string breaking a rule",
            raw("bad.typed", format!(r#"{{"email":"{huge}","count":1,"tags":[]}}"#).as_bytes()),
            "is not an email address",
        ),
        ("unknown name", raw("no.such.job", br#"{"email":"a@b.example","count":1,"tags":[]}"#), "no handler for job"),
        ("unknown name, garbage payload", raw("\u{1b}[31mred", &garbage), "no handler for job"),
    ]
}

struct Setup {
    _redis: RedisProc,
    url: String,
    q: RedisQueue,
    pool: WorkerHandle,
}

async fn setup() -> Setup {
    let redis = tokio::task::block_in_place(|| RedisProc::start_temp(Fsync::Everysec)).expect("redis-server starts");
    let url = redis.url();
    let q = jobs_chaos::connect(&url).await;
    let pool = WorkerPool::builder(q.clone())
        .queues([QUEUE])
        .workers(4)
        .lease(Duration::from_millis(800))
        .backoff(Backoff {
            base: Duration::from_millis(50),
            factor: 2.0,
            cap: Duration::from_millis(200),
            jitter: false,
        })
        .scheduler(false)
        .start()
        .expect("the pool starts");
    Setup { _redis: redis, url, q, pool }
}

/// Waits until the job has finished; `Err` with what was seen on timeout.
async fn finished(q: &RedisQueue, id: &JobId, within: Duration) -> Result<JobInfo, String> {
    let deadline = Instant::now() + within;
    let mut last = String::from("nothing read");
    while Instant::now() < deadline {
        match q.job(id).await {
            Ok(Some(info)) if info.status.is_finished() => return Ok(info),
            Ok(Some(info)) => last = format!("{} after {} attempts", info.status, info.attempts),
            Ok(None) => last = "no such job".into(),
            Err(e) => last = format!("cannot be read: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

/// Good jobs still flow: 50 of them succeed.
async fn good_jobs_flow(q: &RedisQueue) {
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| {
            Typed { email: "ann@example.com".into(), count: i, tags: vec![], address: None }
                .into_new_job(JobOptions::new())
                .expect("valid")
        })
        .collect();
    let ids = q.enqueue_many(jobs).await.expect("enqueue good jobs");
    for id in &ids {
        let info = finished(q, id, Duration::from_secs(20)).await.expect("a good job finished");
        assert_eq!(info.status, JobStatus::Succeeded, "{info:?}");
    }
}

fn shown(e: Option<&str>) -> String {
    let e = e.unwrap_or("<none>");
    let cut: String = e.chars().take(160).collect();
    if cut.len() < e.len() {
        format!("{cut}... ({} bytes)", e.len())
    } else {
        cut
    }
}

#[test]
fn malformed_payloads_end_dead_with_a_clear_error() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let s = setup().await;
        let cases = enqueued_cases();
        let ids = s.q.enqueue_many(cases.iter().map(|c| c.1.clone()).collect()).await.expect("raw jobs are stored");
        let mut failures = Vec::new();
        for ((case, _, expect), id) in cases.iter().zip(&ids) {
            match finished(&s.q, id, Duration::from_secs(20)).await {
                Ok(info) => {
                    let err = info.last_error();
                    eprintln!("{case:<32} {:<9} attempts {}  {}", info.status.as_str(), info.attempts, shown(err));
                    if info.status != JobStatus::Dead || info.attempts != 1 {
                        failures.push(format!("{case}: {} after {} attempts", info.status, info.attempts));
                    }
                    if !err.is_some_and(|e| e.contains(expect)) {
                        failures.push(format!("{case}: error {:?} does not say `{expect}`", shown(err)));
                    }
                }
                Err(seen) => failures.push(format!("{case}: not finished ({seen})")),
            }
        }
        good_jobs_flow(&s.q).await;
        let _ = &s.url;
        s.pool.shutdown().await.expect("the pool survived and shuts down cleanly");
        assert!(failures.is_empty(), "{failures:#?}");
    });
}

// ---- corrupt entries written straight into the queue's keys --------------

/// A record as `common.lua` lays it out (normal priority, no retries or
/// timeout set, enqueued at the ulid's time).
fn record(name: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut r = format!("2||||{}|0|", name.len()).into_bytes();
    r.extend_from_slice(name);
    r.extend_from_slice(payload);
    r
}

/// Writes `rec` as the record of a new ulid (or of `field`, when given) and
/// lists it on the normal-priority ready list; returns the job's id.
async fn direct(url: &str, field: Option<&str>, rec: Option<&[u8]>, state: Option<&[u8]>) -> (String, JobId) {
    let client = redis::Client::open(url).expect("url");
    let mut c = client.get_multiplexed_async_connection().await.expect("connect");
    let keys = QueueKeys::new("jobs", QUEUE);
    let id = JobId::new(QUEUE);
    let field = field.map_or(id.ulid().to_string(), str::to_owned);
    if let Some(rec) = rec {
        let _: () = redis::cmd("HSET").arg(keys.jobs()).arg(&field).arg(rec).query_async(&mut c).await.expect("HSET");
    }
    let listed = match state {
        Some(st) => {
            let _: () =
                redis::cmd("HSET").arg(keys.state()).arg(&field).arg(st).query_async(&mut c).await.expect("HSET");
            format!("+{field}")
        }
        None => field.clone(),
    };
    let _: () = redis::cmd("RPUSH").arg(keys.ready(2)).arg(&listed).query_async(&mut c).await.expect("RPUSH");
    let _: () = redis::cmd("PUBLISH").arg(keys.wake()).arg("1").query_async(&mut c).await.expect("PUBLISH");
    (field, id)
}

/// Corrupt entries the backend can still read as a job: a payload of binary
/// garbage and a name that is not UTF-8.
#[test]
fn corrupt_job_entries_end_dead_with_a_clear_error() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let s = setup().await;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("record with a garbage payload", record(b"bad.typed", b"\x00\xff{{\x01garbage"), "does not decode"),
            ("record with a name that is not UTF-8", record(b"\xff\xfe\x1b[2J", b"{}"), "no handler for job"),
            (
                "record with an unknown name and a huge payload",
                record(b"gone", &vec![b'7'; 200_000]),
                "no handler for job",
            ),
        ];
        let mut failures = Vec::new();
        for (case, rec, expect) in cases {
            let (_, id) = direct(&s.url, None, Some(&rec), None).await;
            match finished(&s.q, &id, Duration::from_secs(20)).await {
                Ok(info) => {
                    let err = info.last_error();
                    eprintln!("{case:<48} {:<9} attempts {}  {}", info.status.as_str(), info.attempts, shown(err));
                    if info.status != JobStatus::Dead || !err.is_some_and(|e| e.contains(expect)) {
                        failures.push(format!("{case}: {} with {:?}", info.status, shown(err)));
                    }
                }
                Err(seen) => failures.push(format!("{case}: not finished ({seen})")),
            }
        }
        // An entry of the ready list with no record at all is skipped.
        let _ = direct(&s.url, None, None, None).await;
        good_jobs_flow(&s.q).await;
        s.pool.shutdown().await.expect("the pool survived and shuts down cleanly");
        assert!(failures.is_empty(), "{failures:#?}");
    });
}

/// An entry the backend cannot read as a job at all must end dead with a
/// clear error, without holding up the fetches of other jobs or looping,
/// and the pool must go on running other jobs.
async fn unreadable_entry(case: &str, field: Option<&str>, rec: &[u8], state: Option<&[u8]>) {
    let s = setup().await;
    let (_, id) = direct(&s.url, field, Some(rec), state).await;
    let started = Instant::now();
    good_jobs_flow(&s.q).await;
    let flowed = started.elapsed();
    let mut failures = Vec::new();
    if flowed > Duration::from_secs(5) {
        failures.push(format!("{case}: 50 good jobs took {flowed:?} beside it"));
    }
    if field.is_some() {
        // No job id can name it: it must at least not linger in the queue.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let c = s.q.stats().await.expect("stats").queue(QUEUE);
            if c.pending + c.running + c.scheduled + c.retrying == 0 {
                break;
            }
            if Instant::now() > deadline {
                failures.push(format!("{case}: still in the queue after 20 s ({c:?})"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.pool.shutdown().await.expect("the pool survived and shuts down cleanly");
        assert!(failures.is_empty(), "{failures:#?}");
        return;
    }
    match finished(&s.q, &id, Duration::from_secs(20)).await {
        Ok(info) => {
            let err = info.last_error();
            eprintln!("{case:<40} {:<9} attempts {}  {}", info.status.as_str(), info.attempts, shown(err));
            if info.status != JobStatus::Dead || err.is_some_and(|e| e.contains("lease expired")) {
                failures.push(format!("{case}: {} with {:?}", info.status, shown(err)));
            }
        }
        Err(seen) => failures.push(format!("{case}: not finished ({seen})")),
    }
    s.pool.shutdown().await.expect("the pool survived and shuts down cleanly");
    assert!(failures.is_empty(), "{failures:#?}");
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(f);
}

#[test]
fn a_record_that_is_not_one_ends_dead() {
    block_on(unreadable_entry("record that is not one", None, b"\xff\x00 not a record", None));
}

#[test]
fn a_record_whose_lengths_run_past_its_end_ends_dead() {
    block_on(unreadable_entry("record whose name runs past its end", None, b"2||||1000|0|bad.typed{}", None));
}

#[test]
fn a_ready_entry_that_is_not_a_ulid_is_dropped() {
    block_on(unreadable_entry(
        "ready entry that is not a ulid",
        Some("not-a-ulid!"),
        &record(b"bad.typed", b"{}"),
        None,
    ));
}

#[test]
fn a_state_that_is_not_one_ends_dead() {
    block_on(unreadable_entry("state that is not one", None, &record(b"bad.typed", b"{}"), Some(b"garbage|state")));
}

/// A decode error keeps a bounded part of serde's message: one 300 KB
/// string in a number field must not become a 300 KB error stored with
/// every attempt (and logged, and shown).
#[test]
fn decode_errors_are_bounded() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let s = setup().await;
        let huge = "x".repeat(300 * 1024);
        let job = raw("bad.typed", format!(r#"{{"email":"a@b.example","count":"{huge}","tags":[]}}"#).as_bytes());
        let id = s.q.enqueue_many(vec![job]).await.expect("stored").remove(0);
        let info = finished(&s.q, &id, Duration::from_secs(20)).await.expect("finished");
        let len = info.last_error().map_or(0, str::len);
        s.pool.shutdown().await.expect("the pool shuts down");
        assert!(len <= 4096, "the stored error is {len} bytes");
    });
}
