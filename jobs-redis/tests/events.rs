//! Job events on Redis beyond the conformance suite: one stream entry per
//! script call, cursors inside an entry, names a finish does not record,
//! the stream's bound and the gap a reader behind it is told about.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jobs_core::backend::{FetchRequest, Finish, Outcome};
use jobs_core::prelude::*;
use jobs_core::{EventCursor, EventFilter, EventKind, EventStream};
use jobs_redis::testing::shared_server_url;
use jobs_redis::{RedisConfig, RedisQueue};

#[jobs_core::job(queue = "evbound")]
async fn tick(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

async fn isolated(history: usize) -> (RedisQueue, String) {
    let prefix = jobs_core::testing::unique_queue("evp");
    let config =
        RedisConfig { prefix: prefix.clone(), event_history: history, ..RedisConfig::new(shared_server_url()) };
    (RedisQueue::from_config(&config).await.unwrap(), prefix)
}

async fn stream_len(prefix: &str, queue: &str) -> usize {
    let mut c = redis::Client::open(shared_server_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("XLEN").arg(format!("{prefix}:{{{queue}}}:events")).query_async(&mut c).await.unwrap()
}

/// A batch of 100 enqueues is one stream entry, its 100 events in order; a
/// reader that stopped inside the entry resumes just after the event it
/// saw, by `read_events` and by [`EventStream::resume`] alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_entry_and_a_cursor_inside_it_resumes_after_its_event() {
    let (q, prefix) = isolated(100).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let ids = Tick::enqueue_all(&q, (0..100).map(|n| Tick { n })).await.unwrap();
    assert_eq!(stream_len(&prefix, "evbound").await, 1, "one script call, one entry");

    let first = q.read_events("evbound", &l.cursor, 30).await.unwrap();
    let got: Vec<_> = first.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[..30].to_vec());
    assert!(first.events.iter().all(|e| e.kind == EventKind::Enqueued && e.name == Tick::NAME));
    let cursors: std::collections::HashSet<_> = first.events.iter().map(|e| e.cursor.clone()).collect();
    assert_eq!(cursors.len(), 30, "every event has a cursor of its own");

    let rest = q.read_events("evbound", &first.events[29].cursor, 1000).await.unwrap();
    assert!(!rest.missed);
    let got: Vec<_> = rest.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[30..].to_vec(), "exactly the events after the cursor's");
    let last = rest.events.last().unwrap().cursor.clone();
    assert!(q.read_events("evbound", &last, 10).await.unwrap().events.is_empty());

    // A cursor's text survives a round trip (Last-Event-ID, `--after`).
    let text = first.events[9].cursor.to_string();
    let mut s = EventStream::resume(&q, EventFilter::queue("evbound"), text.parse().unwrap()).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), s.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(e.job, ids[10]);

    let bad = q.read_events("evbound", &EventCursor::from_backend("not-a-cursor"), 10).await;
    assert!(matches!(bad, Err(jobs_core::Error::InvalidArgument(_))), "{bad:?}");
}

/// A call of 600 events writes entries of at most 256; pages of 100 read
/// them all, in order, each once, across the entries' bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_split_into_entries_and_read_across_them() {
    let (q, prefix) = isolated(100).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let ids = Tick::enqueue_all(&q, (0..600).map(|n| Tick { n })).await.unwrap();
    assert_eq!(stream_len(&prefix, "evbound").await, 3, "256 + 256 + 88 events");
    let (mut got, mut cursor) = (Vec::new(), l.cursor);
    loop {
        let page = q.read_events("evbound", &cursor, 100).await.unwrap();
        assert!(!page.missed);
        let Some(last) = page.events.last() else { break };
        cursor = last.cursor.clone();
        got.extend(page.events.iter().map(|e| e.job.clone()));
    }
    assert_eq!(got, ids);
}

/// A finish records no job name; a reader names its events all the same,
/// from the job's earlier events or, for a reader that never saw them, from
/// the job's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_finish_are_named_for_every_reader() {
    let (q, prefix) = isolated(100).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let ids = Tick::enqueue_all(&q, (0..5).map(|n| Tick { n })).await.unwrap();
    let req = FetchRequest {
        queues: vec!["evbound".into()],
        max: 5,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    };
    let fetched = q.fetch(&req).await.unwrap();
    assert_eq!(fetched.jobs.len(), 5);
    let started = q.read_events("evbound", &l.cursor, 100).await.unwrap();
    assert!(started.events.iter().all(|e| e.name == Tick::NAME), "{started:?}");
    let after_start = started.events.last().unwrap().cursor.clone();
    // The third fails: a run of its own, with its error.
    let batch: Vec<Finish> = fetched
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let outcome = if i == 2 {
                Outcome::Retry { error: "a | b".into(), at: jobs_core::When::In(Duration::from_secs(60)) }
            } else {
                Outcome::Succeeded { result: None }
            };
            Finish { id: j.id.clone(), token: j.token, outcome }
        })
        .collect();
    q.finish(batch).await.unwrap();
    assert_eq!(stream_len(&prefix, "evbound").await, 3, "enqueue, fetch and finish: one entry each");

    // This handle saw the jobs' earlier events.
    // (The events of one call happened at once: compared by job.)
    let page = q.read_events("evbound", &after_start, 100).await.unwrap();
    let mut seen: Vec<_> =
        page.events.iter().map(|e| (e.job.clone(), e.kind, e.name.as_str(), e.detail.as_deref())).collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<_> = fetched
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let (kind, detail) =
                if i == 2 { (EventKind::Retrying, Some("a | b")) } else { (EventKind::Succeeded, None) };
            (j.id.clone(), kind, Tick::NAME, detail)
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, want);
    // A new handle did not: the names come from the records.
    let config = RedisConfig { prefix, event_history: 100, ..RedisConfig::new(shared_server_url()) };
    let fresh = RedisQueue::from_config(&config).await.unwrap();
    let page = fresh.read_events("evbound", &after_start, 100).await.unwrap();
    let mut got: Vec<_> = page.events.iter().map(|e| (e.job.clone(), e.name.as_str())).collect();
    got.sort();
    let mut want: Vec<_> = fetched.jobs.iter().map(|j| (j.id.clone(), Tick::NAME)).collect();
    want.sort();
    assert_eq!(got, want);
    let mut named =
        EventStream::resume(&fresh, EventFilter::queue("evbound").name(Tick::NAME), after_start).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), named.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(e.name, Tick::NAME, "a name filter passes them");
    assert!(matches!(e.kind, EventKind::Succeeded | EventKind::Retrying), "{e:?}");
    assert!(ids.contains(&e.job));
}

#[jobs_core::job(queue = "evbound")]
async fn tock(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

/// An entry writes a run's shared attempt once and each attempt only when
/// they differ; either way every event reads back its own attempt, and a
/// batch of two job types names each event after its own job. (The retried
/// job comes last, after a job of its own type: one run, two attempts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_call_keep_their_own_attempts_and_names() {
    let (q, _) = isolated(100).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let jobs = (0..6u32).map(|n| {
        if n.is_multiple_of(5) {
            Tock { n }.into_new_job(JobOptions::new()).unwrap()
        } else {
            Tick { n }.into_new_job(JobOptions::new()).unwrap()
        }
    });
    let ids = q.enqueue_many(jobs.collect()).await.unwrap();
    let req = |max| FetchRequest {
        queues: vec!["evbound".into()],
        max,
        lease: Duration::from_secs(30),
        default_max_retries: 3,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    };
    // The first job fails once and is due again at once: the next fetch
    // starts it at attempt 2 beside five jobs at attempt 1.
    let first = q.fetch(&req(1)).await.unwrap().jobs.remove(0);
    let retry = Outcome::Retry { error: "again".into(), at: jobs_core::When::In(Duration::ZERO) };
    q.finish(vec![Finish { id: first.id.clone(), token: first.token, outcome: retry }]).await.unwrap();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while all.len() < 6 {
        assert!(tokio::time::Instant::now() < deadline, "fetched {} of 6", all.len());
        all.extend(q.fetch(&req(6)).await.unwrap().jobs);
    }
    let mut cursor = l.cursor;
    let mut events = Vec::new();
    loop {
        let page = q.read_events("evbound", &cursor, 100).await.unwrap();
        let Some(last) = page.events.last() else { break };
        cursor = last.cursor.clone();
        events.extend(page.events);
    }
    let of = |kind: EventKind| -> Vec<_> {
        events.iter().filter(|e| e.kind == kind).map(|e| (e.job.clone(), e.name.clone(), e.attempt)).collect()
    };
    let name = |i: usize| if i.is_multiple_of(5) { Tock::NAME } else { Tick::NAME }.to_owned();
    let enqueued: Vec<_> = ids.iter().enumerate().map(|(i, id)| (id.clone(), name(i), 0)).collect();
    assert_eq!(of(EventKind::Enqueued), enqueued);
    let mut started = of(EventKind::Started);
    assert_eq!(started.remove(0), (ids[0].clone(), name(0), 1), "the first fetch");
    started.sort();
    let mut want: Vec<_> =
        ids.iter().enumerate().map(|(i, id)| (id.clone(), name(i), if i == 0 { 2 } else { 1 })).collect();
    want.sort();
    assert_eq!(started, want, "each start at its own attempt, under its own name");
}

/// Batches of one job type whose jobs are not all new: one replaces a
/// waiting job by its key, one is a job sent again (as after a lost reply).
/// Each new job has its `enqueued` event, the replaced one its `replaced`
/// event, and the jobs not stored none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_one_name_with_jobs_not_new_record_exactly_the_new_ones() {
    let (q, _) = isolated(100).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let keyed = || JobOptions::new().key("k", jobs_core::KeyMode::Replace);
    let job = |n, options| Tick { n }.into_new_job(options).unwrap();
    let (a, b, c, d, e) = (
        job(1, keyed()),
        job(2, JobOptions::new()),
        job(3, keyed()),
        job(4, JobOptions::new()),
        job(5, JobOptions::new()),
    );
    q.enqueue_many(vec![a.clone(), b.clone()]).await.unwrap();
    let ids = q.enqueue_many(vec![c, d.clone()]).await.unwrap();
    assert_eq!(ids, vec![a.id.clone(), d.id.clone()], "the first replaced a");
    let ids = q.enqueue_many(vec![b.clone(), e.clone()]).await.unwrap();
    assert_eq!(ids, vec![b.id.clone(), e.id.clone()]);
    let page = q.read_events("evbound", &l.cursor, 100).await.unwrap();
    let seen: Vec<_> =
        page.events.iter().map(|e| (e.job.clone(), e.kind, e.name.as_str(), e.detail.as_deref())).collect();
    let enq = |id: &jobs_core::JobId, detail| (id.clone(), EventKind::Enqueued, Tick::NAME, detail);
    let want =
        vec![enq(&a.id, None), enq(&b.id, None), enq(&a.id, Some("replaced")), enq(&d.id, None), enq(&e.id, None)];
    assert_eq!(seen, want);
}

/// The history counts stream entries: with 10 kept, 300 calls of 2 events
/// leave about 10 to 110 entries (Redis trims the capped stream by whole
/// nodes of 100 entries), the newest ones, and a reader from before them
/// is told it missed some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_capped_and_gaps_are_reported() {
    let (q, _) = isolated(10).await;
    let l = q.listen("evbound", Duration::from_secs(60)).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..300 {
        ids.extend(Tick::enqueue_all(&q, [Tick { n: 2 * n }, Tick { n: 2 * n + 1 }]).await.unwrap());
    }
    let page = q.read_events("evbound", &l.cursor, 1000).await.unwrap();
    assert!(page.missed, "300 entries cannot fit a history of 10");
    let n = page.events.len();
    assert!((20..=220).contains(&n), "{n} events kept");
    let got: Vec<_> = page.events.iter().map(|e| e.job.clone()).collect();
    assert_eq!(got, ids[600 - n..].to_vec(), "the newest are kept, in order");
    // From the start of what is held, nothing is missed.
    let page = q.read_events("evbound", &EventCursor::start(), 1000).await.unwrap();
    assert!(!page.missed);
    let mut s = EventStream::resume(&q, EventFilter::queue("evbound"), l.cursor).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), s.next()).await.unwrap().unwrap();
    assert!(matches!(first, Err(jobs_core::Error::EventsMissed { .. })), "{first:?}");
}
