//! The floor under a pickup: how long one hop through Redis takes on this
//! machine with nothing of jobs in it. One connection pushes to a list
//! 500 times a second while another waits on it in `BLPOP`; the figure is
//! the time from before the push to the waiter's answer, through the same
//! driver and runtime as jobs-bench's latency run.
//!
//! `cargo run --release -p jobs-bench --example hop_floor -- URL [N] [MODE]`
//! MODE `rpush` (the default) sends a bare `RPUSH`; `script` runs a small
//! script that writes a hash field of 200 bytes and pushes, the shape of
//! an enqueue that hands its job over. Progress on stderr; one JSON line
//! on stdout.

use std::time::{Duration, Instant};

use jobs_bench::Target;

type Failure = Box<dyn std::error::Error + Send + Sync>;

const LIST: &str = "jobs-bench-hop-floor";

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3_000).max(1);
    let mode = args.get(3).map_or("rpush", String::as_str).to_owned();
    if mode != "rpush" && mode != "script" {
        return Err(format!("unknown mode `{mode}`: `rpush` or `script`").into());
    }
    let target = Target::connect(&url)?;
    let client = redis::Client::open(target.url())?;
    let mut push = client.get_multiplexed_async_connection().await?;
    let mut wait = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL").arg(LIST).arg(format!("{LIST}:h")).query_async(&mut push).await?;

    // The waiter reports when each answer arrived.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let waiter = tokio::spawn(async move {
        loop {
            let got: redis::RedisResult<Option<(String, String)>> =
                redis::cmd("BLPOP").arg(LIST).arg(0).query_async(&mut wait).await;
            if got.is_err() || tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    let script = redis::Script::new(
        "redis.call('HSET', KEYS[1] .. ':h', ARGV[1], ARGV[2]); return redis.call('RPUSH', KEYS[1], ARGV[1])",
    );
    let filler = "x".repeat(200);

    let mut micros = Vec::with_capacity(n);
    let mut next = Instant::now();
    for i in 0..n {
        next += Duration::from_millis(2);
        tokio::time::sleep_until(next.into()).await;
        let before = Instant::now();
        let _: i64 = if mode == "rpush" {
            redis::cmd("RPUSH").arg(LIST).arg(i).query_async(&mut push).await?
        } else {
            script.key(LIST).arg(i).arg(&filler).invoke_async(&mut push).await?
        };
        let answered = rx.recv().await.ok_or("the waiter stopped")?;
        micros.push(answered.saturating_duration_since(before).as_secs_f64() * 1e6);
        if (i + 1) % 1_000 == 0 {
            eprintln!("{} of {n} hops", i + 1);
        }
    }
    waiter.abort();
    let _: () = redis::cmd("DEL").arg(LIST).arg(format!("{LIST}:h")).query_async(&mut push).await?;

    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    let (p50, p99, p999) = (at(0.5), at(0.99), at(0.999));
    eprintln!("{mode}: p50 {p50:.0} µs, p99 {p99:.0} µs, p99.9 {p999:.0} µs");
    println!("{}", serde_json::json!({ "mode": mode, "hops": n, "p50_us": p50, "p99_us": p99, "p999_us": p999 }));
    Ok(())
}
