//! Leader balancing over real gRPC: leadership spreads after bootstrap and
//! comes back to a restarted node within seconds.

mod common;

use std::time::{Duration, Instant};

use canon_raft::RaftSettings;
use common::{init_tracing, Cluster};

fn balanced(c: &Cluster, nodes: usize) -> bool {
    let counts = c.leader_counts();
    let total: usize = counts.values().sum();
    let min = counts.values().min().copied().unwrap_or(0);
    let max = counts.values().max().copied().unwrap_or(0);
    counts.len() == nodes && total == c.groups().len() && max - min <= 1
}

async fn wait_balanced(c: &Cluster, nodes: usize, within: Duration) -> Duration {
    let started = Instant::now();
    while !balanced(c, nodes) {
        if started.elapsed() >= within {
            for i in 0..nodes {
                if let Some(n) = c.node_opt(i) {
                    for v in n.group_views() {
                        let m = n.metrics(v.group).unwrap().borrow().clone();
                        eprintln!(
                            "node {i} {v:?} state {:?} term {} ack {:?} repl {:?} last {:?}",
                            m.state,
                            m.current_term,
                            m.millis_since_quorum_ack,
                            m.replication,
                            m.last_log_index
                        );
                    }
                }
            }
            panic!("not balanced after {within:?}: {:?}", c.leader_counts());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_spreads_and_returns_to_a_restarted_node() {
    init_tracing();
    let mut c = Cluster::start(3, 5, RaftSettings::loopback()).await;
    c.bootstrap().await;
    eprintln!("after bootstrap: {:?}", c.leader_counts());
    c.enable_balancer(Duration::from_millis(200));
    let took = wait_balanced(&c, 3, Duration::from_secs(10)).await;
    eprintln!("balanced after {took:?}: {:?}", c.leader_counts());

    c.kill(1).await;
    for g in c.groups() {
        c.wait_leader(g, Duration::from_secs(3)).await;
    }
    c.restart(1).await;
    let took = wait_balanced(&c, 3, Duration::from_secs(10)).await;
    eprintln!("rebalanced {took:?} after restart: {:?}", c.leader_counts());
    assert!(c.leader_counts()[&1] >= 1);
    c.shutdown().await;
}

/// With five replicas a candidate needs three votes, so the election trick
/// alone cannot move leadership (the other followers honour the leader's
/// lease): the leader goes quiet for a lease first. Leadership still
/// spreads, and writes made meanwhile all succeed and stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_replicas_spread_leadership_without_losing_writes() {
    init_tracing();
    let shards = 4;
    let c = Cluster::start(5, shards, RaftSettings::loopback()).await;
    c.bootstrap().await;
    eprintln!("after bootstrap: {:?}", c.leader_counts());
    let g = canon_raft::shard::group_of_shard(0);
    assert_eq!(c.node(0).voters(g).unwrap().len(), 5);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let node = c.node(4).clone();
        let stop = stop.clone();
        let aliases = common::aliases_in(g, shards, 10_000, "b");
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for (k, alias) in aliases.into_iter().enumerate() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let r = node.propose(g, common::create(&alias, k as u64)).await;
                assert!(r.unwrap().is_applied());
                acked.push(alias);
            }
            acked
        })
    };
    let mut c = c;
    c.enable_balancer(Duration::from_millis(200));
    let took = wait_balanced(&c, 5, Duration::from_secs(30)).await;
    eprintln!("balanced after {took:?}: {:?}", c.leader_counts());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    let have = c
        .node(1)
        .read(g, canon_raft::Consistency::Linearizable, |s| {
            acked
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(have, acked.len());
    eprintln!("{} writes during the hand-overs", acked.len());
    c.shutdown().await;
}
