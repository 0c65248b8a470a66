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
