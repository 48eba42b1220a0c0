//! A throwaway Redis Cluster: three (or more) `redis-server`s with
//! `cluster-enabled yes` on free loopback ports, joined by
//! `redis-cli --cluster create ... --cluster-replicas 0`, ready once every
//! node answers `CLUSTER INFO` with `cluster_state:ok` and knows every
//! other node.
//!
//! `redis-cli` must be on `PATH` (Debian: `redis-tools`), or named by
//! `JOBS_REDIS_CLI`.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{RedisServer, ServerOptions};

/// A running Redis Cluster of masters without replicas; every node is
/// stopped when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How long the cluster may take to form.
const FORM_DEADLINE: Duration = Duration::from_secs(60);

/// The `redis-cli` binary.
pub(crate) fn cli_binary() -> String {
    let bin = std::env::var("JOBS_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned());
    let found = Command::new(&bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    match found {
        Ok(s) if s.success() => bin,
        _ => panic!(
            "`{bin}` cannot be run: the Redis Cluster tests need redis-cli. \
             Install it (`apt-get install redis-tools`) or set JOBS_REDIS_CLI to its path."
        ),
    }
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3) and forms the cluster, the 16384
    /// slots spread evenly.
    pub fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 3, "Redis Cluster needs at least 3 masters");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| RedisServer::start_with(ServerOptions { cluster: true, ..Default::default() }))
            .collect();
        let cluster = RedisCluster { nodes };
        let mut create = Command::new(cli_binary());
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port()));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` and knows every
    /// node, panicking after a deadline.
    pub fn wait_until_ok(&self) {
        let started = Instant::now();
        loop {
            let ready = self.nodes.iter().all(|n| {
                let info = self.cli(n.port(), &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
            });
            if ready {
                return;
            }
            assert!(started.elapsed() < FORM_DEADLINE, "the cluster did not form within {FORM_DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The nodes' ports, in creation order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The nodes themselves (to stop or signal one).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Runs `redis-cli -p <port> <args>` and returns its output (errors
    /// included, as text).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new(cli_binary())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// The port of the master that owns `slot` (asked of the first node).
    pub fn owner_of(&self, slot: u16) -> u16 {
        let nodes = self.cli(self.nodes[0].port(), &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let owns = fields[8..].iter().any(|r| {
                let r = r.trim_start_matches('[');
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false,
                }
            });
            if owns {
                let addr = fields[1].split('@').next().unwrap_or_default();
                return addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a node address with a port");
            }
        }
        panic!("no master owns slot {slot}:\n{nodes}");
    }

    /// The node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        self.cli(port, &["CLUSTER", "MYID"]).trim().to_owned()
    }
}

/// A cluster shared by every test of this binary, started on first use; its
/// nodes stop when the test binary exits.
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3))
}
