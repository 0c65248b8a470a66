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
