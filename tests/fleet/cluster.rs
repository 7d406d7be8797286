//! Fleet-wide state through a real Redis Cluster: three `redis-server
//! --cluster-enabled yes` nodes on free local ports, joined with `redis-cli --cluster
//! create`. Eight breakers sync two instances each through
//! `RedisStore::open_cluster`; their keys land on several nodes, and each breaker's
//! transaction stays in one slot (the hash tag), where the old key layout fails with
//! `CROSSSLOT`. Real time, bounded polls.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::instance::{eventually, synced};
use crate::redis_server::RedisServer;
use tower_circuit_breaker::fleet::RedisStore;
use tower_circuit_breaker::State;

/// A three-node cluster; its nodes are killed and its directory removed on drop.
struct Cluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

/// A port whose cluster bus port (+10 000) is free too.
fn cluster_port(taken: &[u16]) -> u16 {
    (20_000..30_000)
        .step_by(7)
        .map(|port| port + (std::process::id() % 7) as u16)
        .find(|&port| {
            !taken.contains(&port)
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        })
        .expect("no free pair of local ports for a cluster node")
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "tcb-fleet-cluster-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ports = Vec::new();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = cluster_port(&ports);
            ports.push(port);
            let (port_arg, config) = (port.to_string(), format!("nodes-{port}.conf"));
            let dir_arg = dir.to_str().unwrap();
            nodes.push(RedisServer::start_with(
                port,
                &[
                    "--port",
                    &port_arg,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &config,
                    "--cluster-node-timeout",
                    "5000",
                    "--dir",
                    dir_arg,
                ],
            ));
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (installed with redis-server) creates the cluster");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Cluster { nodes, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cluster.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the cluster did not settle within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Whether every node reports `cluster_state:ok`.
    fn is_ok(&self) -> bool {
        self.nodes.iter().all(|node| {
            Command::new("redis-cli")
                .args(["-p", &node.port().to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
        })
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// How many keys each node holds.
    fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|node| {
                let out = Command::new("redis-cli")
                    .args(["-p", &node.port().to_string(), "dbsize"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn breakers_sync_through_a_redis_cluster_each_in_one_slot() {
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::open_cluster(&nodes, "cluster-test")
        .unwrap()
        .timeout(Duration::from_millis(500))
        .unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("db-{i}")).collect();
    let pairs: Vec<_> = names
        .iter()
        .map(|name| (synced(&store, name, 0), synced(&store, name, 1)))
        .collect();
    eventually(
        Duration::from_secs(5),
        "every instance reaches the cluster",
        || {
            pairs
                .iter()
                .all(|((_, a), (_, b))| a.is_connected() && b.is_connected())
        },
    )
    .await;
    for ((first, _), _) in &pairs {
        for _ in 0..3 {
            first.try_acquire().unwrap().failure();
        }
    }
    eventually(
        Duration::from_secs(2),
        "every breaker's other instance opens",
        || {
            pairs
                .iter()
                .all(|(_, (second, _))| second.state() == State::Open)
        },
    )
    .await;
    let keys = cluster.keys_per_node();
    println!("keys per node: {keys:?}");
    assert!(
        keys.iter().filter(|&&n| n > 0).count() >= 2,
        "the breakers spread over the nodes: {keys:?}"
    );

    // The layout without a hash tag puts a breaker's keys in different slots: its
    // transaction is refused by the cluster.
    let mut raw = redis::cluster::ClusterClient::new(urls.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let refused = redis::pipe()
        .atomic()
        .set("cluster-test:db-0:state", "open")
        .set("cluster-test:db-0:deadline", 1)
        .query_async::<()>(&mut raw)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), redis::ErrorKind::CrossSlot, "{refused}");
}
