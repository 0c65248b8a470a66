//! The audit chain on real nodes: every replica holds the same chain, and
//! it survives a snapshot, a log purge and a restart from disk.

mod common;

use std::time::Duration;

use canon_raft::shard::group_of_shard;
use canon_raft::{Consistency, Principal, RaftSettings};
use common::{aliases_in, create, init_tracing, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_holds_the_same_chain_across_snapshots_and_restarts() {
    init_tracing();
    let settings = RaftSettings {
        snapshot_every: 20,
        keep_behind_snapshot: 0,
        ..RaftSettings::loopback()
    };
    let shards = 1;
    let mut c = Cluster::start(3, shards, settings).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let leader = c.wait_leader(g, Duration::from_secs(2)).await;
    let alice = Principal {
        user: "alice".into(),
        key_id: "k1".into(),
        root: false,
    };
    let aliases = aliases_in(g, shards, 60, "a");
    for (i, a) in aliases.iter().enumerate() {
        let req = create(a, i as u64 + 1).by(alice.clone());
        assert!(c.node(leader).propose(g, req).await.unwrap().is_applied());
    }
    let raft = c.node(leader).raft(g).unwrap();
    raft.trigger().snapshot().await.unwrap();
    // Every node restarts from its data dir (snapshot + log behind it).
    for i in 0..3 {
        c.kill(i).await;
        c.restart(i).await;
    }
    let leader = c.wait_leader(g, Duration::from_secs(5)).await;
    let target = c.applied(leader, g);
    let mut chains = Vec::new();
    for i in 0..3 {
        c.wait_applied(i, g, target, Duration::from_secs(10)).await;
        let chain = c
            .node(i)
            .read(g, Consistency::Stale, |s| s.audit.clone())
            .await
            .unwrap();
        assert_eq!(chain.verify(g), Ok(60), "node {i}");
        chains.push(chain);
    }
    assert_eq!(chains[0], chains[1]);
    assert_eq!(chains[1], chains[2]);
    let first = &chains[0].records[0].entry;
    assert_eq!(
        first.principal.as_ref().map(|p| p.user.as_str()),
        Some("alice")
    );
    assert_eq!(first.action, "process.run");
    c.shutdown().await;
}
