//! `--peers` at tiny sizes against a throwaway Redis. A test binary of its
//! own: the benchmark counts runs in one process-wide sink, so it must not
//! share a process with the other smoke test. No timing is asserted.

use jobs_bench::{Progress, Target};

/// `--peers` at tiny sizes: jobs and the peers built in that run a job at
/// once (apalis-redis is left out: with the shared payload its jobs run
/// some 30 s late, see its settings), every figure of each reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_comparison_reports_every_library() {
    use jobs_bench::peers::{self, PeerSettings};
    let target = Target::start().expect("redis-server starts");
    let only: Vec<String> = peers::built_in().into_iter().filter(|p| *p != "apalis-redis").map(String::from).collect();
    let s = PeerSettings { only: only.clone(), ..PeerSettings::smoke() };
    let figures = peers::run(&target, &s, &Progress::new("smoke", true)).await.expect("the comparison runs");
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, only, "one column per library, jobs first");
    for f in &figures {
        for (what, sp) in [("e2e small", &f.e2e_small), ("e2e large", &f.e2e_large), ("drain", &f.drain_large)] {
            assert!(sp.failed.is_none() && sp.runs.len() == 1 && sp.median > 0.0, "{} {what}: {sp:?}", f.name);
        }
        assert!(f.pickup_p50_ms.median > 0.0 && f.pickup_p99_ms.median >= f.pickup_p50_ms.median, "{}: {f:?}", f.name);
    }
    let table = peers::table(&s, &figures);
    assert!(table.starts_with("| figure | jobs "), "{table}");
}
