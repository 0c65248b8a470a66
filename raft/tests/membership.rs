//! Adding and removing a node through joint consensus while clients write.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use canon_raft::shard::group_of_shard;
use canon_raft::{Consistency, RaftSettings};
use common::{aliases_in, create, id_of, init_tracing, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_a_node_under_write_load() {
    init_tracing();
    let shards = 2;
    let mut c = Cluster::start(4, shards, RaftSettings::loopback()).await;
    c.bootstrap_with(&[0, 1, 2]).await;
    let g = group_of_shard(0);

    // A client keeps writing through node 1 the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let node = c.node(1).clone();
        let stop = stop.clone();
        let aliases = aliases_in(g, shards, 10_000, "w");
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for (k, alias) in aliases.into_iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match node.propose(g, create(&alias, k as u64)).await {
                    Ok(r) => {
                        assert!(r.is_applied(), "{r:?}");
                        acked.push(alias);
                    }
                    Err(e) => panic!("write failed during membership change: {e}"),
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Node 3 joins every group (learner catch-up, then voter); node 0 leaves.
    let new_id = id_of(3);
    let new_addr = c.addr(3).unwrap().to_string();
    for group in c.groups() {
        c.node(1).add_voter(group, new_id, &new_addr).await.unwrap();
    }
    for group in c.groups() {
        assert!(c.node(1).voters(group).unwrap().contains(&new_id));
        c.node(2).remove_voter(group, id_of(0)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.kill(0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(acked.len() > 10, "only {} writes", acked.len());

    let expected: BTreeSet<_> = [id_of(1), id_of(2), id_of(3)].into();
    for group in c.groups() {
        c.wait_leader(group, Duration::from_secs(3)).await;
        for i in 1..4 {
            assert_eq!(
                c.node(i).voters(group).unwrap(),
                expected,
                "node {i} group {group}"
            );
        }
    }
    // The new member has every acknowledged write.
    let have = c
        .node(3)
        .read(g, Consistency::Linearizable, |s| {
            acked
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(have, acked.len());
    eprintln!("{} writes acknowledged during the change", acked.len());
    c.shutdown().await;
}

/// The join path's hardest moment: a shard's leader is voted out and, at
/// once, re-added as a learner (every member learns the shards it does not
/// vote in). openraft keeps the removed leader leading for a heartbeat
/// after the change applies; a membership change must not reach it then
/// (openraft asserts against a non-member appending a membership and the
/// group's core stops). Afterwards the removed node serves linearizable
/// reads of the shard through its learner replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_voted_out_and_readded_as_learner_keeps_serving() {
    init_tracing();
    let shards = 2;
    let c = Cluster::start(4, shards, RaftSettings::loopback()).await;
    c.bootstrap_with(&[0, 1, 2]).await;
    let g = group_of_shard(0);
    let new_addr = c.addr(3).unwrap().to_string();
    c.node(0).add_voter(g, id_of(3), &new_addr).await.unwrap();

    for round in 0..3 {
        let leader = c.wait_leader(g, Duration::from_secs(5)).await;
        let other = (0..4).find(|i| *i != leader).unwrap();
        let leader_addr = c.addr(leader).unwrap().to_string();
        // As in a join run by the leader itself: it votes itself out, then
        // asks for itself to be re-added as a learner.
        c.node(leader)
            .remove_voter(g, id_of(leader))
            .await
            .unwrap_or_else(|e| panic!("round {round}: remove leader {leader}: {e}"));
        c.node(leader)
            .add_learner(g, id_of(leader), &leader_addr)
            .await
            .unwrap_or_else(|e| panic!("round {round}: re-add {leader} as learner: {e}"));
        let alias = aliases_in(g, shards, round + 1, "readd").pop().unwrap();
        let r = c.node(other).propose(g, create(&alias, round as u64)).await;
        assert!(r.unwrap().is_applied(), "round {round}");
        let seen = c
            .node(leader)
            .read(g, Consistency::Linearizable, |s| {
                s.process_by_alias(&alias).is_some()
            })
            .await
            .unwrap_or_else(|e| panic!("round {round}: read through {leader}: {e}"));
        assert!(
            seen,
            "round {round}: node {leader} misses an acknowledged write"
        );
        // Back to three voters plus the learner, for the next round.
        c.node(other)
            .add_voter(g, id_of(leader), &leader_addr)
            .await
            .unwrap_or_else(|e| panic!("round {round}: make {leader} a voter again: {e}"));
    }
    c.shutdown().await;
}
