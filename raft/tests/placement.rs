//! Re-placing shard replicas when a node joins: the newcomer takes its share
//! of replicas, every shard keeps three, and writes keep working.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use canon_raft::placement::{place, share};
use canon_raft::shard::group_of_shard;
use canon_raft::{Command, Consistency, GroupId, RaftSettings, Request, META_GROUP};
use common::{aliases_in, create, id_of, init_tracing, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_takes_its_share_of_replicas() {
    init_tracing();
    let shards = 4;
    let c = Cluster::start(4, shards, RaftSettings::loopback()).await;
    c.bootstrap_with(&[0, 1, 2]).await;
    // The newcomer learns the meta group, which knows every member (how a
    // node finds the replicas of a shard it does not hold).
    c.node(0)
        .add_learner(META_GROUP, id_of(3), c.addr(3).unwrap())
        .await
        .unwrap();
    for i in 0..4 {
        let set = Command::MemberSet {
            node: id_of(i),
            addr: c.addr(i).unwrap().to_string(),
        };
        let r = c
            .node(1)
            .propose(META_GROUP, Request::new(1, set))
            .await
            .unwrap();
        assert!(r.is_applied());
    }

    let current: BTreeMap<u32, Vec<u64>> = (0..shards).map(|s| (s, vec![1, 2, 3])).collect();
    let nodes: BTreeSet<u64> = (0..4).map(id_of).collect();
    let plan = place(&nodes, shards, 3, &current);
    c.node(0)
        .apply_placement(&plan, &c.members())
        .await
        .unwrap();

    let cap = share(4, shards, 3);
    let mut load: BTreeMap<u64, usize> = BTreeMap::new();
    for shard in 0..shards {
        let g = group_of_shard(shard);
        let leader = c.wait_leader(g, Duration::from_secs(3)).await;
        let voters = c.node(leader).voters(g).unwrap();
        assert_eq!(voters.len(), 3, "shard {shard}: {voters:?}");
        assert_eq!(
            voters,
            plan[&shard].iter().copied().collect::<BTreeSet<_>>()
        );
        for v in voters {
            *load.entry(v).or_default() += 1;
        }
        // Writes work from any node, replica of the shard or not.
        for via in 0..4 {
            let alias = aliases_in(g, shards, 4, "n")[via].clone();
            let r = c
                .node(via)
                .propose(g, create(&alias, 1))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "shard {shard} via {via}: {e}; voters {:?}",
                        c.node(via).voters(g)
                    )
                });
            assert!(r.is_applied(), "shard {shard} via {via}: {r:?}");
        }
        assert_eq!(count_aliases_via_leader(&c, g).await, 4);
    }
    assert!(load.values().all(|l| *l <= cap), "{load:?}");
    assert_eq!(load[&id_of(3)], cap, "{load:?}");
    c.shutdown().await;
}

/// The aliases group `g` holds, read linearizably from whoever leads it
/// now: the leader found before the writes may be the node the placement
/// took the group from, which leads until it steps down and then can serve
/// no read of the group.
async fn count_aliases_via_leader(c: &Cluster, g: GroupId) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let leader = c.wait_leader(g, Duration::from_secs(3)).await;
        match c
            .node(leader)
            .read(g, Consistency::Linearizable, |s| s.aliases.len())
            .await
        {
            Ok(n) => return n,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("group {g}: read via node {leader} failed ({e}); asking again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("group {g}: no linearizable read: {e}"),
        }
    }
}
